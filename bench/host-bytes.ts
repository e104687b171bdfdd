/**
 * The host's side of what a call hands it: CPU of the host process (every thread: the event loop decoding,
 * hashing and applying, lmdb's writer committing) per byte of a returned value and per byte written, measured as
 * the difference between a call handing over 16 MiB and one handing over nothing (alternated, medians), then
 * divided by the gas those bytes are charged (the host function's per_byte plus handed_to_host). Printed in
 * section 7 beside the loops, in ns per gas: gas must price the host's time as well as the VM's.
 */
import { createHash } from 'node:crypto';
import type { Host } from '../src/host/host.js';
import { HANDED_TO_HOST_GAS, HOST_FUNCTIONS } from '../src/vm/host-functions.generated.js';
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
  (func (export "ret_none") (call $ret (i64.const 0)))
  (func (export "ret_all") (call $ret (i64.const ${BYTES})))
  (func (export "write_none") (call $write (i32.const 0)))
  (func (export "write_all") (call $write (i32.const ${BYTES / VALUE}))))`;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Host CPU per byte handed over, for results and for writes: `rounds` alternated pairs each. */
export async function benchHostBytes(host: Host, rounds: number): Promise<HostBytesRow[]> {
  const codeHash = await host.deploy(await workloadBytes({ name: 'host-bytes', kind: 'host', functions: [], wat: MODULE }));
  let n = 0;
  const cpuOf = async (method: string): Promise<number> => {
    // A context per call: each write lands in a small tree, as the first write of a context does.
    const contextId = Uint8Array.from(createHash('sha256').update(`host-bytes-${n++}`).digest());
    const before = process.cpuUsage();
    const o = await host.call({ codeHash, method, contextId, gasLimit: 1n << 40n });
    const used = process.cpuUsage(before);
    if (o.result.code !== 'return') throw new Error(`host bytes: ${method} ended ${o.result.code} ${'message' in o.result ? o.result.message : ''}`);
    return (used.user + used.system) * 1000; // ns
  };
  const rows: HostBytesRow[] = [];
  const pairs: [string, string, string, number][] = [
    ['host: result bytes (decode, hash)', 'ret_none', 'ret_all', HOST_FUNCTIONS.value_return.gas.perByte],
    ['host: written bytes (apply, commit)', 'write_none', 'write_all', HOST_FUNCTIONS.storage_write.gas.perByte],
  ];
  for (const [name, none, all, fnPerByte] of pairs) {
    await cpuOf(none);
    await cpuOf(all); // warm-up: the first large call grows buffers and heaps once
    const without: number[] = [];
    const withBytes: number[] = [];
    for (let r = 0; r < rounds; r++) {
      without.push(await cpuOf(none));
      withBytes.push(await cpuOf(all));
    }
    const nsPerByte = Math.max(0, median(withBytes) - median(without)) / BYTES;
    const gasPerByte = fnPerByte + HANDED_TO_HOST_GAS.perByte;
    rows.push({ name, nsPerByte, gasPerByte, nsPerGas: nsPerByte / gasPerByte });
  }
  return rows;
}
