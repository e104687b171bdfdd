/**
 * The host's side of the bytes a call moves: CPU of the host process (every thread: the event loop decoding,
 * hashing and applying, lmdb's writer committing) per byte of a returned value, written, read and streamed into a
 * blob, measured as the difference between a call moving 16 MiB and one moving nothing (alternated, medians), then
 * divided by the gas those bytes are charged (the host function's per_byte, plus handed_to_host or the round
 * trip's per_byte). Printed in section 7 beside the loops, in ns per gas: gas must price the host's time as well as
 * the VM's.
 */
import { createHash } from 'node:crypto';
import type { Host } from '../src/host/host.js';
import { HANDED_TO_HOST_GAS, HOST_FUNCTIONS, ROUND_TRIP_GAS } from '../src/vm/host-functions.generated.js';
import { workloadBytes } from './gas-workloads.js';

const MiB = 1024 * 1024;
const BYTES = 16 * MiB;
const VALUE = 8 * MiB; // two values of 8 MiB: under max_storage_value_size, 16 MiB in all
const DATA = 65536; // the data region starts at the second page

export interface HostBytesRow {
  name: string;
  nsPerByte: number;
  gasPerByte: number;
  nsPerGas: number;
}

/** Stores an i64 at a constant address. */
const store = (at: number, value: number | string): string => `(i64.store (i32.const ${at}) (i64.const ${value}))`;

const MODULE = `(module
  (import "env" "value_return" (func $value_return (param i64)))
  (import "env" "storage_write" (func $storage_write (param i64 i64 i64) (result i32)))
  (import "env" "storage_read" (func $storage_read (param i64 i64) (result i32)))
  (import "env" "blob_create" (func $blob_create (result i64)))
  (import "env" "blob_write" (func $blob_write (param i64 i64) (result i64)))
  (import "env" "blob_close" (func $blob_close (param i64 i64) (result i32)))
  (memory (export "memory") ${Math.ceil((DATA + BYTES) / 65536) + 1})
  ;; 0: ValueReturn {tag, ptr, len}; 32: key descriptors; 64: value descriptors; 128: the keys.
  (func $ret (param $len i64) ${store(0, 0)} ${store(8, DATA)} (i64.store (i32.const 16) (local.get $len)) (call $value_return (i64.const 0)))
  (func $write (param $n i32) (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      ;; key i: one byte at 128 + i; value i: VALUE bytes at DATA + i * VALUE
      (i32.store8 (i32.add (i32.const 128) (local.get $i)) (i32.add (i32.const 65) (local.get $i)))
      (i64.store (i32.const 32) (i64.extend_i32_u (i32.add (i32.const 128) (local.get $i))))
      ${store(40, 1)}
      (i64.store (i32.const 64) (i64.add (i64.const ${DATA}) (i64.mul (i64.extend_i32_u (local.get $i)) (i64.const ${VALUE}))))
      ${store(72, VALUE)}
      (drop (call $storage_write (i64.const 32) (i64.const 64) (i64.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $ret (i64.const 0)))
  ;; key i's descriptor at 32, value i's at 64 (as $write sets them), for a read or a blob frame
  (func $descs (param $i i32)
    (i32.store8 (i32.add (i32.const 128) (local.get $i)) (i32.add (i32.const 65) (local.get $i)))
    (i64.store (i32.const 32) (i64.extend_i32_u (i32.add (i32.const 128) (local.get $i))))
    ${store(40, 1)}
    (i64.store (i32.const 64) (i64.add (i64.const ${DATA}) (i64.mul (i64.extend_i32_u (local.get $i)) (i64.const ${VALUE}))))
    ${store(72, VALUE)})
  (func $read (param $n i32) (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (call $descs (local.get $i))
      (drop (call $storage_read (i64.const 32) (i64.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $ret (i64.const 0)))
  (func $blob (param $n i32) (local $i i32) (local $fd i64)
    (local.set $fd (call $blob_create))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (call $descs (local.get $i))
      (drop (call $blob_write (local.get $fd) (i64.const 64)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    ;; the blob's id lands at 96..127: {ptr 96... } descriptor at 80
    ${store(80, 96)} ${store(88, 32)}
    (drop (call $blob_close (local.get $fd) (i64.const 80)))
    (call $ret (i64.const 0)))
  (func (export "read_none") (call $read (i32.const 0)))
  (func (export "read_all") (call $read (i32.const ${BYTES / VALUE})))
  (func (export "blob_none") (call $blob (i32.const 0)))
  (func (export "blob_all") (call $blob (i32.const ${BYTES / VALUE})))
  (func (export "ret_none") (call $ret (i64.const 0)))
  (func (export "ret_all") (call $ret (i64.const ${BYTES})))
  (func (export "write_none") (call $write (i32.const 0)))
  (func (export "write_all") (call $write (i32.const ${BYTES / VALUE}))))`;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Host CPU per byte handed over, for results and for writes: `rounds` alternated pairs each. */
export async function benchHostBytes(host: Host, rounds: number): Promise<HostBytesRow[]> {
  const codeHash = await host.deploy(await workloadBytes({ name: 'host-bytes', kind: 'host', functions: [], wat: MODULE }));
  let n = 0;
  const stored = Uint8Array.from(createHash('sha256').update('host-bytes-stored').digest());
  const cpuOf = async (method: string): Promise<number> => {
    // Reads read the values written once below; writes get a context per call: each lands in a small tree, as
    // the first write of a context does.
    const contextId = method.startsWith('read') ? stored : Uint8Array.from(createHash('sha256').update(`host-bytes-${n++}`).digest());
    const before = process.cpuUsage();
    const o = await host.call({ codeHash, method, contextId, gasLimit: 1n << 40n });
    const used = process.cpuUsage(before);
    if (o.result.code !== 'return') throw new Error(`host bytes: ${method} ended ${o.result.code} ${'message' in o.result ? o.result.message : ''}`);
    return (used.user + used.system) * 1000; // ns
  };
  await host.call({ codeHash, method: 'write_all', contextId: stored, gasLimit: 1n << 40n });
  const rows: HostBytesRow[] = [];
  // Gas per byte each way: the function's per_byte, and handed_to_host for what the call hands over at its end,
  // or the round trip's per_byte for what crosses in a request or an answer during the call.
  const handed = HANDED_TO_HOST_GAS.perByte;
  const trip = ROUND_TRIP_GAS.perByte;
  const pairs: [string, string, string, number][] = [
    ['host: result bytes (decode, hash)', 'ret_none', 'ret_all', HOST_FUNCTIONS.value_return.gas.perByte + handed],
    ['host: written bytes (apply, commit)', 'write_none', 'write_all', HOST_FUNCTIONS.storage_write.gas.perByte + handed],
    ['host: read bytes (lookup, answer)', 'read_none', 'read_all', HOST_FUNCTIONS.storage_read.gas.perByte + trip],
    ['host: blob bytes (stage, hash)', 'blob_none', 'blob_all', HOST_FUNCTIONS.blob_write.gas.perByte + trip],
  ];
  for (const [name, none, all, gasPerByte] of pairs) {
    await cpuOf(none);
    await cpuOf(all); // warm-up: the first large call grows buffers and heaps once
    const without: number[] = [];
    const withBytes: number[] = [];
    for (let r = 0; r < rounds; r++) {
      without.push(await cpuOf(none));
      withBytes.push(await cpuOf(all));
    }
    const nsPerByte = Math.max(0, median(withBytes) - median(without)) / BYTES;
    rows.push({ name, nsPerByte, gasPerByte, nsPerGas: nsPerByte / gasPerByte });
  }
  return rows;
}
