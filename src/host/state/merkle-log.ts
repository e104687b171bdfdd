/**
 * The value stored under a context's bare id in the 'merkle' table: the context's state root and, while the
 * tree's pages have not been written back since the last checkpoint, the checkpoint's root and the keys that
 * changed since (docs/state.md, "Write-back of tree pages"):
 *
 *   root                                   32 bytes       the pages hold exactly the tree of this root
 *   root ‖ checkpointRoot ‖ kh_1 … kh_n    64 + 32n bytes  (1 <= n) the pages hold the tree of checkpointRoot
 *                                                         (none when it is 32 zero bytes); kh_i = sha256(key)
 *                                                         of each key whose entry may differ from it
 *
 * Every commit that changes a context's root writes this value anyway, so logging a changed key costs no
 * extra database write; the value is bounded (the log limit below) so it stays inside one LMDB leaf page.
 */
import { HostlinkError } from '../../errors.js';

export const ROOT_BYTES = 32;
const HEADER_BYTES = 2 * ROOT_BYTES;

/**
 * Keys a context may log before its pages are written back (a checkpoint). 48 keys keep the stored value at
 * 1,600 bytes, below LMDB's ~2,000-byte limit for a value kept in its leaf page (a larger one would take an
 * overflow page of its own on every commit).
 */
export const DEFAULT_STATE_LOG_KEYS = 48;
let logLimit = DEFAULT_STATE_LOG_KEYS;

/**
 * Sets how many changed keys a context logs before its tree pages are written back (0: write them in every
 * commit). Returns the previous limit.
 */
export function setStateLogLimit(keys: number): number {
  if (!Number.isSafeInteger(keys) || keys < 0 || keys > DEFAULT_STATE_LOG_KEYS) {
    throw new HostlinkError('usage', `state log limit ${keys}: must be a whole number of keys from 0 to ${DEFAULT_STATE_LOG_KEYS}`);
  }
  const previous = logLimit;
  logLimit = keys;
  return previous;
}

export function stateLogLimit(): number {
  return logLimit;
}

const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Throws a store error unless `value` has one of the two stored forms. */
export function checkStoredRootValue(value: Uint8Array, contextId: Uint8Array): void {
  const n = value.length;
  if (n === ROOT_BYTES || (n > HEADER_BYTES && (n - HEADER_BYTES) % ROOT_BYTES === 0)) return;
  throw new HostlinkError('store', `corrupt state root record of context ${hexOf(contextId)} (${n} bytes)`);
}

/** The state root (a view). */
export const rootOf = (value: Uint8Array): Uint8Array => value.subarray(0, ROOT_BYTES);

/** The root of the tree the stored pages hold (a view). */
export const checkpointRootOf = (value: Uint8Array): Uint8Array => (value.length === ROOT_BYTES ? value : value.subarray(ROOT_BYTES, HEADER_BYTES));

/** How many keys are logged. */
export const loggedKeyCount = (value: Uint8Array): number => (value.length === ROOT_BYTES ? 0 : (value.length - HEADER_BYTES) / ROOT_BYTES);

/** Logged key hash i (a view). */
export const loggedKeyAt = (value: Uint8Array, i: number): Uint8Array => value.subarray(HEADER_BYTES + i * ROOT_BYTES, HEADER_BYTES + (i + 1) * ROOT_BYTES);

/** Whether the log in `value` holds `kh`. */
function logged(value: Uint8Array, kh: Uint8Array): boolean {
  for (let o = HEADER_BYTES; o < value.length; o += ROOT_BYTES) {
    if (value[o] !== kh[0] || value[o + 1] !== kh[1] || value[o + 2] !== kh[2]) continue;
    let k = 3;
    while (k < ROOT_BYTES && value[o + k] === kh[k]) k++;
    if (k === ROOT_BYTES) return true;
  }
  return false;
}

/**
 * The value to store after an update to `root` that changed the keys `khs`, given the value stored before
 * (undefined: the context had no entries), or undefined when the log would exceed the limit: then the pages
 * must be written back and the value is the bare root.
 */
export function nextStoredValue(before: Uint8Array | undefined, root: Uint8Array, khs: readonly Uint8Array[]): Uint8Array | undefined {
  const n = before === undefined ? 0 : loggedKeyCount(before);
  let added = 0;
  for (let i = 0; i < khs.length; i++) if (before === undefined || !logged(before, khs[i]!)) added++;
  if (n + added > logLimit) return undefined;
  // (Keys repeated within khs were merged by the caller.)
  const value = new Uint8Array(HEADER_BYTES + (n + added) * ROOT_BYTES);
  value.set(root, 0);
  if (before !== undefined) {
    value.set(checkpointRootOf(before), ROOT_BYTES);
    value.set(before.subarray(HEADER_BYTES), HEADER_BYTES);
  }
  let o = HEADER_BYTES + n * ROOT_BYTES;
  for (const kh of khs) {
    if (before !== undefined && logged(before, kh)) continue;
    value.set(kh, o);
    o += ROOT_BYTES;
  }
  return value;
}
