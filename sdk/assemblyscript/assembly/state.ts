// State management: root state document, CRDT deltas and the explicit commit.
// A call that uses the collections ends with flushDelta() (JS-SDK path) or commit() (own Merkle tree),
// never both: commit may be called at most once per call.
import { commit as hostCommit, persist_root_state, read_root_state, apply_storage_delta, flush_delta } from "./env";
import { bytesDescriptor, toBytes } from "./buffers";
import { DATA_REGISTER, readRegister } from "./registers";

/** Records the call's 32-byte state root and artifact (a Borsh StorageDelta). A second call traps. */
export function commit(rootHash: Uint8Array, artifact: Uint8Array): void {
  hostCommit(bytesDescriptor(rootHash), bytesDescriptor(artifact));
}

/**
 * Stores the root state document. The host derives monotonic timestamps:
 * createdAt 0 means "now"; the stored updatedAt is after both createdAt and the given updatedAt.
 */
export function persistRootState<T>(doc: T, createdAt: u64 = 0, updatedAt: u64 = 0): void {
  persist_root_state(bytesDescriptor(toBytes<T>(doc)), createdAt, updatedAt);
}

/** The root state document, or null when none was persisted. */
export function readRootState(): Uint8Array | null {
  if (read_root_state(DATA_REGISTER) <= 0) return null;
  return readRegister(DATA_REGISTER);
}

/** Merges an artifact produced by another node's execution (Borsh StorageDelta). */
export function applyStorageDelta(delta: Uint8Array): void {
  apply_storage_delta(bytesDescriptor(delta));
}

/** Emits the pending collection changes as this call's artifact; false when there was nothing to emit. */
export function flushDelta(): bool {
  return flush_delta() == 1;
}
