/**
 * SHA-256 for the state tree (docs/state.md): natively through the optional addon native/hostlink_state.c
 * when it is built, else in plain JavaScript; both give the same digests (test/state/sha256-record.test.ts
 * runs whole trees through each and compares the roots). HOSTLINK_STATE_HASH=js forces the JavaScript path.
 *
 * The native path exists because the per-call cost dominates at 65 bytes: hashChain() hashes a whole
 * leaf-to-root path in one call, and leafRecord() both hashes of a leaf (key and value) in another.
 *
 * The JavaScript SHA-256 of one 65-byte record:
 *
 * Why not node:crypto: every tree update hashes ~log2(n) records of exactly 65 bytes, and for inputs that short
 * the cost of a crypto.hash call (argument checks, a native transition, a fresh Buffer) is larger than the
 * compression itself. A 65-byte message is always two 64-byte blocks, and the second block holds only the last
 * input byte, the 0x80 pad and the fixed length (520 bits), so its message schedule is one of 256 tables
 * computed once here. The digest is the standard SHA-256 (FIPS 180-4): test/state/sha256-record.test.ts checks
 * it against node:crypto for every value of the last byte and for random records.
 */
import { addonStatus, nativeArtifact, type AddonStatus } from '../../native-addon.js';
import * as crypto from 'node:crypto';
import { HEAP_TYPED_ARRAY_MAX } from '../../latin1.js';

const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
  0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
  0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
  0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
  0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
  0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = Int32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

export const RECORD_HASH_INPUT_BYTES = 65;

/** Expands w[0..15] into the full 64-word message schedule at w[base..base+63]. */
function expand(w: Int32Array, base: number): void {
  for (let t = base + 16; t < base + 64; t++) {
    const x = w[t - 15]!;
    const y = w[t - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) | 0;
  }
}

// Second-block schedules, one per value of the record's last byte: [byte, 0x80, 0 ..., u64be(520)], with the
// round constants already added (w[t] + K[t] is all the second block's rounds use).
const SECOND_KW = new Int32Array(256 * 64);
{
  const w = new Int32Array(64);
  for (let b = 0; b < 256; b++) {
    w.fill(0);
    w[0] = (b << 24) | 0x800000;
    w[15] = RECORD_HASH_INPUT_BYTES * 8;
    expand(w, 0);
    for (let t = 0; t < 64; t++) SECOND_KW[b * 64 + t] = (w[t]! + K[t]!) | 0;
  }
}

// Scratch, reused across calls (the function is synchronous and not re-entrant): the first block's message
// schedule, then its words with the round constants added, and the working state.
const W = new Int32Array(64);
const KW = new Int32Array(64);
const STATE = new Int32Array(8);

/** The 64 rounds of one block over `state`, in place; `kw[off + t]` is the block's w[t] + K[t]. */
function compress(state: Int32Array, kw: Int32Array, off: number): void {
  // The working state lives in locals during the rounds (no array traffic between rounds).
  let a = state[0]!, b = state[1]!, c = state[2]!, d = state[3]!, e = state[4]!, f = state[5]!, g = state[6]!, h = state[7]!;
  for (let t = 0; t < 64; t++) {
    const t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + kw[off + t]!) | 0;
    const t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/** SHA-256 of `rec[0..65)` written to `out[at..at+32)`. `rec` must be exactly 65 bytes. */
export function sha256RecordInto(rec: Uint8Array, out: Uint8Array, at: number): void {
  if (rec.length !== RECORD_HASH_INPUT_BYTES) throw new RangeError(`sha256RecordInto: record of ${rec.length} bytes (must be 65)`);
  for (let i = 0; i < 16; i++) {
    const p = 4 * i;
    W[i] = (rec[p]! << 24) | (rec[p + 1]! << 16) | (rec[p + 2]! << 8) | rec[p + 3]!;
  }
  expand(W, 0);
  for (let t = 0; t < 64; t++) KW[t] = (W[t]! + K[t]!) | 0;
  STATE.set(IV);
  compress(STATE, KW, 0);
  compress(STATE, SECOND_KW, rec[64]! * 64);
  for (let i = 0; i < 8; i++) {
    const v = STATE[i]!;
    out[at + 4 * i] = v >>> 24;
    out[at + 4 * i + 1] = v >>> 16;
    out[at + 4 * i + 2] = v >>> 8;
    out[at + 4 * i + 3] = v;
  }
}

/** SHA-256 of a 65-byte record, as a fresh 32-byte array. */
export function sha256Record(rec: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  sha256RecordInto(rec, out, 0);
  return out;
}

// ---- the native addon, and the operations the tree uses (native or JavaScript) ----

/** The addon's exports (native/hostlink_state.c). Arguments are checked there; bad ones throw. */
interface StateHashAddon {
  leafRecord(key: Uint8Array, value: Uint8Array, rec: Uint8Array): void;
  hashChain(recs: Uint8Array, count: number, slots: Uint8Array, out: Uint8Array): void;
  sha256Into(data: Uint8Array, out: Uint8Array, at: number): void;
}

export const STATE_HASH_ADDON_PATH = nativeArtifact('hostlink_state.node');

function loadAddon(): AddonStatus<StateHashAddon> {
  return addonStatus<StateHashAddon>(STATE_HASH_ADDON_PATH, 'state hash');
}

// The addon in use, or undefined for the JavaScript path.
let native: StateHashAddon | undefined = process.env['HOSTLINK_STATE_HASH'] === 'js' ? undefined : loadAddon().addon;

/** Which SHA-256 the state tree uses now, and why not the native one when it is not. */
export function stateHashImplementation(): { impl: 'native' | 'js'; reason?: string } {
  if (native !== undefined) return { impl: 'native' };
  if (process.env['HOSTLINK_STATE_HASH'] === 'js') return { impl: 'js', reason: 'HOSTLINK_STATE_HASH=js' };
  return { impl: 'js', reason: loadAddon().reason ?? 'switched off' };
}

/**
 * Switches the state tree's SHA-256 between the addon and JavaScript (for tests comparing the two; both give
 * the same digests). Returns whether the requested one is now in use (false: 'native' asked, addon missing).
 */
export function useStateHash(impl: 'native' | 'js'): boolean {
  native = impl === 'js' ? undefined : loadAddon().addon;
  return impl === 'js' || native !== undefined;
}

const oneShot = typeof crypto.hash === 'function' ? crypto.hash : undefined;
function sha256Js(data: Uint8Array, out: Uint8Array, at: number): void {
  const digest = oneShot !== undefined ? oneShot('sha256', data, 'buffer') : crypto.createHash('sha256').update(data).digest();
  out.set(digest, at);
}

// N-API hands native code a typed array's bytes by first moving an array that lives in V8's heap (one of at most
// 64 bytes) out into a buffer of its own: a malloc, a copy and a new ArrayBuffer, for every fresh array. On the
// host that was about a dozen per call (keys, values, 32-byte hash outputs), each later swept by the collector.
// Short arrays go to the addon through fixed staging memory outside the heap instead (two lanes: an input and
// another input or the output); longer ones are outside the heap already.
const STAGING_LANES = 2;
const staging = new Uint8Array(new ArrayBuffer(STAGING_LANES * HEAP_TYPED_ARRAY_MAX));
// views[lane][n]: staging lane `lane`'s first n bytes, made on first use (a view is a heap object, not a malloc).
const views: (Uint8Array | undefined)[][] = Array.from({ length: STAGING_LANES }, () => new Array<Uint8Array | undefined>(HEAP_TYPED_ARRAY_MAX + 1).fill(undefined));

function stagedView(lane: number, n: number): Uint8Array {
  const at = lane * HEAP_TYPED_ARRAY_MAX;
  return (views[lane]![n] ??= staging.subarray(at, at + n));
}

/** `a` when it is outside V8's heap for certain, else a copy of it in staging lane `lane`. */
function outsideHeap(a: Uint8Array, lane: number): Uint8Array {
  if (a.length > HEAP_TYPED_ARRAY_MAX) return a;
  const view = stagedView(lane, a.length);
  view.set(a);
  return view;
}

/**
 * Where the addon writes a 32-byte digest meant for `out`: `out` itself when it is outside the heap for certain
 * (or too short to hold a digest: the addon then throws its RangeError), else staging lane 1, copied by the caller.
 */
function digestTarget(out: Uint8Array): Uint8Array {
  return out.length > HEAP_TYPED_ARRAY_MAX || out.length < 32 ? out : stagedView(1, 32);
}

/** out[at..at+32) = sha256(data). */
export function sha256Into(data: Uint8Array, out: Uint8Array, at: number): void {
  if (native === undefined) {
    sha256Js(data, out, at);
    return;
  }
  const target = digestTarget(out);
  native.sha256Into(outsideHeap(data, 0), target, target === out ? at : 0);
  if (target !== out) out.set(target, at);
}

/** rec[0..65) = the leaf record 0x00 ‖ sha256(key) ‖ sha256(value). `rec` is exactly 65 bytes. */
export function leafRecordInto(key: Uint8Array, value: Uint8Array, rec: Uint8Array): void {
  if (native !== undefined) {
    // (rec, at 65 bytes, is outside the heap; a shorter one gets the addon's RangeError.)
    native.leafRecord(outsideHeap(key, 0), outsideHeap(value, 1), rec);
    return;
  }
  if (rec.length !== RECORD_HASH_INPUT_BYTES) throw new RangeError(`leafRecordInto: record of ${rec.length} bytes (must be 65)`);
  const kh = new Uint8Array(32); // key or value may overlap rec
  sha256Js(key, kh, 0);
  sha256Js(value, rec, 33);
  rec.set(kh, 1);
  rec[0] = 0;
}

/**
 * Hashes a leaf-to-root chain of records in one call: `recs` holds `count` 65-byte records back to back; for
 * i = 1..count-1 the hash of record i-1 is written into record i at byte slots[i] (1: its left child, 33: its
 * right child) before record i is hashed; the hash of the last record goes to out[0..32).
 */
export function hashChain(recs: Uint8Array, count: number, slots: Uint8Array, out: Uint8Array): void {
  if (native !== undefined) {
    const target = digestTarget(out);
    native.hashChain(recs, count, outsideHeap(slots, 0), target);
    if (target !== out) out.set(target);
    return;
  }
  if (!(count >= 1 && count * RECORD_HASH_INPUT_BYTES <= recs.length && slots.length >= count && out.length >= 32)) {
    throw new RangeError('hashChain: count, records, slots or output out of range');
  }
  for (let i = 1; i < count; i++) if (slots[i] !== 1 && slots[i] !== 33) throw new RangeError('hashChain: a slot is neither 1 nor 33');
  for (let i = 0; i < count; i++) {
    const rec = recs.subarray(i * RECORD_HASH_INPUT_BYTES, (i + 1) * RECORD_HASH_INPUT_BYTES);
    if (i + 1 < count) sha256RecordInto(rec, recs, (i + 1) * RECORD_HASH_INPUT_BYTES + slots[i + 1]!);
    else sha256RecordInto(rec, out, 0);
  }
}

const ONE_SLOT = new Uint8Array(1);
/** out[at..at+32) = the hash of one 65-byte record, by whichever SHA-256 is in use. */
export function hashRecordInto(rec: Uint8Array, out: Uint8Array, at: number): void {
  if (native !== undefined && at === 0) hashChain(rec, 1, ONE_SLOT, out);
  else sha256RecordInto(rec, out, at);
}
