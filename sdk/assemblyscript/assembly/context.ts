// Identity of the call, plus the context mutations and membership queries (queued mutations are
// applied by the host only after the call succeeds).
import {
  context_id, executor_id, context_create, context_delete, context_add_member, context_remove_member,
  context_is_member, context_members, context_resolve_alias,
} from "./env";
import { bytesDescriptor, toBytes, utf8 } from "./buffers";
import { DATA_REGISTER, readRegister } from "./registers";
import { BorshReader } from "./borsh";

/** The current context's 32-byte id. */
export function contextId(): Uint8Array {
  context_id(DATA_REGISTER);
  return readRegister(DATA_REGISTER);
}

/** The executor's 32-byte public key. */
export function executorId(): Uint8Array {
  executor_id(DATA_REGISTER);
  return readRegister(DATA_REGISTER);
}

/**
 * Queues creation of a context running application `applicationId` (32 bytes) under `protocol`,
 * initialised with `initArgs`; `alias` "" means none (an alias already in use traps).
 */
export function createContext<A>(protocol: string, applicationId: Uint8Array, initArgs: A, alias: string = ""): void {
  const aliasPtr: u64 = alias.length == 0 ? 0 : <u64>bytesDescriptor(utf8(alias));
  context_create(bytesDescriptor(utf8(protocol)), bytesDescriptor(applicationId), bytesDescriptor(toBytes<A>(initArgs)), aliasPtr);
}

/** Queues deletion of a context (32-byte id). */
export function deleteContext(id: Uint8Array): void {
  context_delete(bytesDescriptor(id));
}

/** Queues adding a member (32-byte public key) to the current context. */
export function addMember(publicKey: Uint8Array): void {
  context_add_member(bytesDescriptor(publicKey));
}

/** Queues removing a member (32-byte public key) from the current context. */
export function removeMember(publicKey: Uint8Array): void {
  context_remove_member(bytesDescriptor(publicKey));
}

/** Whether a public key is a member of the current context. */
export function isMember(publicKey: Uint8Array): bool {
  return context_is_member(bytesDescriptor(publicKey)) == 1;
}

/** The current context's members (the host answers Borsh Vec<[u8;32]>). */
export function members(): Array<Uint8Array> {
  context_members(DATA_REGISTER);
  const r = new BorshReader(readRegister(DATA_REGISTER));
  const n = r.u32();
  const out = new Array<Uint8Array>();
  for (let i: u32 = 0; i < n; i++) out.push(r.fixed(32));
  return out;
}

/** The 32-byte id of the context with this alias, or null. */
export function resolveAlias(alias: string): Uint8Array | null {
  if (context_resolve_alias(bytesDescriptor(utf8(alias)), DATA_REGISTER) == 0) return null;
  return readRegister(DATA_REGISTER);
}
