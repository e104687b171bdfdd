/**
 * The CRDT side of one execution: its Collections (over the execution's storage overlay) and whether the
 * call's artifact is already fixed (commit, or a flush that emitted). Kept in a WeakMap keyed by the
 * Execution, so it is created on first use and dies with the execution: pending actions cannot leak into
 * another call. Also the helpers the host-function families share: id reading and the -1 convention.
 */
import { callSeed } from '../../protocol/call-ids.js';
import type { Execution } from '../execution.js';
import { CrdtDomainError, CrdtFormatError } from './bytes.js';
import { Collections } from './collections.js';

export interface CrdtSession {
  readonly collections: Collections;
  /** commit was called. */
  committed: boolean;
  /** flush_delta emitted an artifact. */
  emitted: boolean;
}

const sessions = new WeakMap<Execution, CrdtSession>();

export function sessionOf(ex: Execution): CrdtSession {
  let s = sessions.get(ex);
  if (s === undefined) {
    const collections = new Collections({
      store: {
        read: (k) => ex.storage.read(k),
        // Records written are charged per byte (index records grow with the collection).
        write: (k, v) => {
          ex.chargeBytes(k.length + v.length);
          return ex.storage.write(k, v);
        },
        remove: (k) => ex.storage.remove(k),
        prefetch: (keys) => ex.storage.prefetch(keys),
      },
      contextId: ex.message.contextId,
      executorId: ex.message.executorId,
      datetimeNanos: ex.message.datetimeNanos,
      seed: callSeed(ex.message),
    });
    s = { collections, committed: false, emitted: false };
    sessions.set(ex, s);
  }
  return s;
}

const utf8 = new TextEncoder();

/**
 * Runs a collection function: a CrdtDomainError becomes -1 with its message in `errorRegister`, a
 * CrdtFormatError (a corrupt record or artifact) traps with DeserializationError, guest errors pass through.
 */
export function crdtCall(ex: Execution, errorRegister: bigint, body: (c: Collections) => number): number {
  const { collections } = sessionOf(ex);
  try {
    return body(collections);
  } catch (e) {
    if (e instanceof CrdtDomainError) {
      ex.setRegister(errorRegister, utf8.encode(e.message));
      return -1;
    }
    throw asGuestError(ex, e);
  }
}

/** Runs a state function that has no -1 convention: only CrdtFormatError is mapped (to DeserializationError). */
export function guarded<T>(ex: Execution, body: (c: Collections) => T): T {
  const { collections } = sessionOf(ex);
  try {
    return body(collections);
  } catch (e) {
    throw asGuestError(ex, e);
  }
}

/** Maps a CrdtFormatError to DeserializationError; anything else unchanged. */
export function asGuestError(ex: Execution, e: unknown): unknown {
  if (e instanceof CrdtFormatError) ex.fail('DeserializationError', e.message);
  return e;
}

/** Register of functions without a register parameter (the reference writes their errors to register 0). */
export const ERROR_REGISTER = 0n;

export function readId(ex: Execution, ptr: bigint, what = 'collection id'): Uint8Array {
  return ex.readBuffer(ptr, what);
}

/** 1 with the value in the register, or 0 with the register emptied (as the reference's js_* functions do). */
export function answerValue(ex: Execution, registerId: bigint, value: Uint8Array | null): number {
  ex.setRegister(registerId, value ?? new Uint8Array(0));
  return value === null ? 0 : 1;
}

export function u64le(n: bigint | number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

/** The listing registers: u32 count, then per item each part as (u32 len, bytes). */
export function encodeListing(items: Uint8Array[][]): Uint8Array {
  let size = 4;
  for (const parts of items) for (const p of parts) size += 4 + p.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, items.length, true);
  let at = 4;
  for (const parts of items) {
    for (const p of parts) {
      view.setUint32(at, p.length, true);
      out.set(p, at + 4);
      at += 4 + p.length;
    }
  }
  return out;
}
