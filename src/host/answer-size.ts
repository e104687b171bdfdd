/**
 * What an answer to a read will weigh, learnt before the value is read: the host answers `unaffordable` with that
 * length instead of reading, copying and sending a value the call's gas cannot pay for (round_trip per_byte).
 */
import { MAX_FRAME_BYTES } from '../protocol/generated.js';
import { encodeStatus } from '../protocol/messages.js';
import type { SessionContext } from './session-types.js';
import { ROUND_TRIP_GAS } from '../vm/host-functions.generated.js';

/** A response's status byte, and a length prefix (of a byte string or a list) in the wire format. */
export const STATUS_BYTES = 1;
export const LENGTH_BYTES = 4;

/** One value's bytes in a list of optional values (storage_read_many): a presence byte, then length and bytes. */
export const itemBytes = (length: number | undefined): number => 1 + (length === undefined ? 0 : LENGTH_BYTES + length);

/** round_trip per_key in per_byte units: what each key an answer lists adds to its `unaffordable` length. */
const KEY_BYTES = Math.ceil(ROUND_TRIP_GAS.perKey / ROUND_TRIP_GAS.perByte);

/**
 * A list of keys of `keyBytes` each (context_members) costs its bytes and round_trip per_key for each key, which
 * the host reads to list it. `countUpTo(n)` counts them, stopping at `n`: the count itself costs the host per
 * key, so it goes no further than one past what the gas pays for, nor one past `most`, the keys one answer frame
 * holds. Returns the count (`most + 1`: more than one answer lists), or the `unaffordable` answer (with the cost
 * of one key more than the gas pays for: the VM runs out of gas charging it).
 */
export function countKeysAffordable(session: SessionContext, keyBytes: number, most: number, countUpTo: (n: number) => number): number | Uint8Array {
  const each = LENGTH_BYTES + keyBytes + KEY_BYTES;
  const paid = Math.max(0, Math.floor((session.answerBytesLeft() - STATUS_BYTES - LENGTH_BYTES) / each));
  const within = Math.min(paid, most);
  const count = countUpTo(within + 1);
  if (count <= within) return count;
  return within === paid ? encodeStatus('unaffordable', { bytes: STATUS_BYTES + LENGTH_BYTES + count * each }) : most + 1;
}

/**
 * The `unaffordable` answer to a read of one value whose length `lengthOf` tells without copying it (undefined:
 * absent), or undefined when the gas pays for it. The length is asked only when the gas could fall short.
 */
export function unaffordableRead(session: SessionContext, lengthOf: () => number | undefined): Uint8Array | undefined {
  const left = session.answerBytesLeft();
  if (left >= MAX_FRAME_BYTES) return undefined;
  const length = lengthOf();
  const size = length === undefined ? STATUS_BYTES : STATUS_BYTES + LENGTH_BYTES + length;
  return size > left ? encodeStatus('unaffordable', { bytes: size }) : undefined;
}
