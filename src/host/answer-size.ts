/**
 * What an answer to a read will weigh, learnt before the value is read: the host answers `unaffordable` with that
 * length instead of reading, copying and sending a value the call's gas cannot pay for (round_trip per_byte).
 */
import { MAX_FRAME_BYTES } from '../protocol/generated.js';
import { encodeStatus } from '../protocol/messages.js';
import type { SessionContext } from './session-types.js';

/** A response's status byte, and a length prefix (of a byte string or a list) in the wire format. */
export const STATUS_BYTES = 1;
export const LENGTH_BYTES = 4;

/** One value's bytes in a list of optional values (storage_read_many): a presence byte, then length and bytes. */
export const itemBytes = (length: number | undefined): number => 1 + (length === undefined ? 0 : LENGTH_BYTES + length);

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
