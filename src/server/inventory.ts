/**
 * What a data directory holds, for `hostlink serve` and the studio: the deployed codes and the contexts that
 * have state or were created by contracts. Read straight from the store; every list is capped.
 */
import { hex, showBytes } from '../cli/common.js';
import type { Host } from '../host/host.js';
import { listState, stateRoot } from '../host/state/merkle.js';
import { listCodeSizes } from '../host/state/code-store.js';

export const MAX_LISTED = 1000;
/** Table entries read at most while looking for contexts (tree pages share the table with the roots). */
export const MAX_SCANNED = 200_000;

export interface CodeEntry {
  code_hash: string;
  bytes: number;
}

/**
 * The deployed codes and their sizes, from the code table's keys and the lengths recorded at deploy
 * (code-store.ts): reading every module whole to measure it held the event loop ~5 ms per 10 MiB module.
 */
export function listCodes(host: Host, limit = MAX_LISTED): CodeEntry[] {
  return listCodeSizes(host.store, limit).map((c) => ({ code_hash: hex(c.hash), bytes: c.bytes }));
}

export interface ContextEntry {
  context: string;
  root: string;
  /** The deployed code a contract-created context runs (context_create), when there is one. */
  application?: string;
}

/**
 * Contexts with a state root (the 'merkle' table keeps each root under the bare 32-byte context id; longer
 * keys are tree pages) and contexts created by contracts.
 */
export function listContexts(host: Host, limit = MAX_LISTED): ContextEntry[] {
  const found = new Map<string, ContextEntry>();
  let scanned = 0;
  for (const [key, value] of host.store.range('merkle', new Uint8Array(0))) {
    if (found.size >= limit || ++scanned > MAX_SCANNED) break;
    if (key.length === 32) found.set(hex(key), { context: hex(key), root: hex(value.subarray(0, 32)) }); // the root, then any log
  }
  for (const c of host.node.contexts()) {
    if (found.size >= limit) break;
    const id = hex(c.id);
    const entry = found.get(id) ?? { context: id, root: hex(stateRoot(host.store, c.id)) };
    entry.application = hex(c.applicationId);
    found.set(id, entry);
  }
  return [...found.values()];
}

/** Stored bytes (keys and values) one state answer reads at most: it stops after the entry that passes this. */
export const MAX_STATE_READ_BYTES = 16 * 1024 * 1024;
/** Bytes of a value a state answer shows; longer ones are cut and carry their length. */
export const MAX_SHOWN_VALUE_BYTES = 4096;

export interface StateEntry {
  key: string;
  value: string;
  /** When the value was cut: its whole length in bytes. */
  bytes?: number;
  truncated?: true;
}

export interface StateListing {
  root: Uint8Array;
  entries: StateEntry[];
  /** False when the context holds more than one answer lists (MAX_LISTED entries or MAX_STATE_READ_BYTES). */
  complete: boolean;
}

/**
 * A context's entries for the API, bounded like every list here: at most `limit` entries and about
 * MAX_STATE_READ_BYTES of stored bytes read, values cut to MAX_SHOWN_VALUE_BYTES, read one entry at a time.
 * Listing a whole context (Host.state) held the event loop for 4.6 s and 3 GiB for 400 MB of state, and six
 * clients that did not read their answers held 6.8 GiB. Entries are sorted by key within the answer; when it is
 * not complete, they are the first ones in storage order (by key hash), not the first keys.
 */
export function listStateBounded(host: Host, contextId: Uint8Array, limit = MAX_LISTED): StateListing {
  const entries: [Uint8Array, StateEntry][] = [];
  let read = 0;
  let complete = true;
  for (const [key, value] of listState(host.store, contextId)) {
    if (entries.length >= limit || read >= MAX_STATE_READ_BYTES) {
      complete = false;
      break;
    }
    read += key.length + value.length;
    const shown: StateEntry =
      value.length <= MAX_SHOWN_VALUE_BYTES
        ? { key: showBytes(key), value: showBytes(value) }
        : { key: showBytes(key), value: showBytes(value.subarray(0, MAX_SHOWN_VALUE_BYTES)), bytes: value.length, truncated: true };
    entries.push([Uint8Array.from(key), shown]);
  }
  entries.sort(([a], [b]) => Buffer.compare(a, b));
  return { root: stateRoot(host.store, contextId), entries: entries.map(([, e]) => e), complete };
}
