/**
 * Hybrid logical clock. Times are NTP64 (seconds since the Unix epoch << 32 | fraction), as in the reference
 * system. The physical part comes from the message's datetime (never the machine's clock) with the low 16
 * bits cleared for the logical counter; the logical part comes from the context's clock record, the highest
 * time of every action the replica has issued or merged (see merge.ts). So a new time is greater than every
 * time the execution can observe, and an execution replays to the same times.
 *
 * The node id of a stamp is the executor id: ordering compares the time, then the executor's first 16 bytes
 * read as a little-endian u128 (the id shown in the 24-byte LWW timestamp), then its last 16 bytes.
 */
import { compareBytes, U64_MAX } from './bytes.js';

const NANOS_PER_SECOND = 1_000_000_000n;
const COUNTER_MASK = 0xffffn;

/** NTP64 time of a Unix timestamp in nanoseconds (clamped to the representable range). */
export function ntp64FromUnixNanos(nanos: bigint): bigint {
  if (nanos <= 0n) return 0n;
  const seconds = nanos / NANOS_PER_SECOND;
  if (seconds > 0xffff_ffffn) return U64_MAX;
  const fraction = ((nanos % NANOS_PER_SECOND) << 32n) / NANOS_PER_SECOND;
  return (seconds << 32n) | fraction;
}

/** The physical part of the clock for a message time: NTP64 with the 16 counter bits cleared. */
export function physicalTime(datetimeNanos: bigint): bigint {
  return ntp64FromUnixNanos(datetimeNanos) & ~COUNTER_MASK;
}

/** The next time after `clock` (the highest time seen), at least `physical`; saturates at u64::MAX. */
export function nextTime(physical: bigint, clock: bigint): bigint {
  const logical = clock >= U64_MAX ? U64_MAX : clock + 1n;
  return physical > logical ? physical : logical;
}

/** Node order of two executor ids: u128 LE of bytes 0..15, then bytes 16..31. */
export function compareNodes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 15; i >= 0; i--) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return compareBytes(a.subarray(16), b.subarray(16));
}

/** Stamp order: time first, then node. */
export function compareStamps(timeA: bigint, nodeA: Uint8Array, timeB: bigint, nodeB: Uint8Array): number {
  if (timeA !== timeB) return timeA < timeB ? -1 : 1;
  return compareNodes(nodeA, nodeB);
}

/** The 24-byte timestamp of js_crdt_lww_timestamp: u64 time LE, then the u128 node id LE (executor bytes 0..15). */
export function lwwTimestampBytes(time: bigint, executor: Uint8Array): Uint8Array {
  const out = new Uint8Array(24);
  new DataView(out.buffer).setBigUint64(0, time, true);
  out.set(executor.subarray(0, 16), 8);
  return out;
}
