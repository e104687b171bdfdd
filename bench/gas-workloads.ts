/**
 * Endless loops that each stress one cost dimension of the gas model, one per host-function class (a cheap
 * call, bytes copied in and out, cold and warm storage keys, host round trips, signatures, CRDT collections).
 * Plain WebAssembly, the unit, is measured on the metering bench's compiled contracts instead (bench/gas.ts):
 * a hand-written endless loop whose results are never used is partly removed by TurboFan and would flatter
 * the unit. Each loop only ends by `out_of_gas`, so the wall time of a call at a given gas limit is the price of that much gas for that
 * workload. Shared by the gas benchmark (bench/gas.ts), the calibration helper (bench/calibrate-gas.ts) and the
 * test that every class ends by gas, not by the deadline (test/vm/gas-time.test.ts). The engine loops do the same
 * for the instructions whose cost is a call into the engine's runtime.
 */
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';

export interface GasWorkload {
  /** Short name printed by the bench and the test. */
  name: string;
  /** What the loop prices: 'wasm' for plain WebAssembly, 'host' for host functions, 'engine' for instructions
   * that call into the engine's runtime (memory.grow, bulk memory and table operations, long br_tables). */
  kind: 'wasm' | 'host' | 'engine';
  /** Host functions the loop calls (for the calibration helper). */
  functions: readonly string[];
  /** The module text (wabt syntax); the method is `run`. */
  wat: string;
}

// Memory layout shared by the host loops (all descriptors are {ptr u64, len u64}).
const COUNTER = 0; // an i64 counter: also the 8-byte key of the distinct-key loops
const KEY_DESC = 16; // {0, 8}: the counter as a key
const VALUE_DESC = 32; // {DATA, valueLen}
const SIG_DESC = 48; // {SIG, 64}
const PK_DESC = 64; // {PK, 32}
const MSG_DESC = 80; // {DATA, msgLen}
const DEST_DESC = 96; // {DATA, destLen}
const ID_DESC = 112; // {ID, 32}: a public key, or a collection id read back from a register
const FIXED_KEY_DESC = 128; // {FIXED_KEY, 8}: a key that never changes
const RETURN_AT = 144; // ValueReturn {u64 tag = 0, {DATA, valueLen}}
const SIG = 256;
const PK = 320;
const ID = 352;
const FIXED_KEY = 384;
const DATA = 4096;

/** Bytes moved per call by the byte-heavy loops: large enough that the per-byte cost dominates. */
export const BULK_BYTES = 16 * 1024;

const hexEsc = (bytes: Uint8Array): string => [...bytes].map((b) => '\\' + b.toString(16).padStart(2, '0')).join('');
const u64 = (n: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
};
const desc = (ptr: number, len: number): Uint8Array => Uint8Array.from([...u64(ptr), ...u64(len)]);

/** A fixed Ed25519 key pair and a real signature over the first `msgLen` bytes of the data region. */
function signature(msgLen: number): { pk: Uint8Array; sig: Uint8Array } {
  // PKCS#8 DER of the Ed25519 private key with seed 0x01 x 32 (a fixed key: the workload is reproducible).
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.alloc(32, 1)]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const sig = sign(null, Buffer.alloc(msgLen, 0x61), key);
  return { pk: Uint8Array.from(spki.subarray(spki.length - 32)), sig: Uint8Array.from(sig) };
}

interface HostLoop {
  name: string;
  functions: readonly string[];
  imports: readonly string[];
  /** Instructions run once before the loop. */
  setup?: string;
  /** One iteration (must leave the stack empty). */
  body: string;
  valueLen?: number;
  msgLen?: number;
  destLen?: number;
}

const IMPORT_TYPES: Record<string, string> = {
  register_len: '(param i64) (result i64)',
  read_register: '(param i64 i64) (result i32)',
  context_id: '(param i64)',
  input: '(param i64)',
  value_return: '(param i64)',
  storage_read: '(param i64 i64) (result i32)',
  storage_write: '(param i64 i64 i64) (result i32)',
  storage_remove: '(param i64 i64) (result i32)',
  private_storage_read: '(param i64 i64) (result i32)',
  private_storage_write: '(param i64 i64) (result i32)',
  context_is_member: '(param i64) (result i32)',
  context_resolve_alias: '(param i64 i64) (result i32)',
  random_bytes: '(param i64)',
  time_now: '(param i64)',
  ed25519_verify: '(param i64 i64 i64) (result i32)',
  js_crdt_map_new: '(param i64) (result i32)',
  js_crdt_map_insert: '(param i64 i64 i64 i64) (result i32)',
  js_crdt_map_get: '(param i64 i64 i64) (result i32)',
  js_crdt_counter_new: '(param i64) (result i32)',
  js_crdt_counter_increment: '(param i64) (result i32)',
};

const NEXT_KEY = `(i64.store (i32.const ${COUNTER}) (i64.add (i64.load (i32.const ${COUNTER})) (i64.const 1)))`;
/** Creates a collection into register 1 and copies its 32-byte id to ID. */
const newCollection = (fn: string): string =>
  `(drop (call $${fn} (i64.const 1))) (drop (call $read_register (i64.const 1) (i64.const ${ID_DESC})))`;

const HOST_LOOPS: readonly HostLoop[] = [
  { name: 'register_len', functions: ['register_len'], imports: ['register_len'], body: '(drop (call $register_len (i64.const 7)))' },
  { name: 'context_id', functions: ['context_id'], imports: ['context_id'], body: '(call $context_id (i64.const 1))' },
  {
    name: 'read_register 16 KiB',
    functions: ['read_register'],
    imports: ['read_register', 'random_bytes', 'storage_write'],
    setup: `(call $random_bytes (i64.const ${DEST_DESC})) (drop (call $storage_write (i64.const ${FIXED_KEY_DESC}) (i64.const ${VALUE_DESC}) (i64.const 2)))
            (drop (call $storage_write (i64.const ${FIXED_KEY_DESC}) (i64.const ${VALUE_DESC}) (i64.const 2)))`,
    body: `(drop (call $read_register (i64.const 2) (i64.const ${DEST_DESC})))`,
    valueLen: BULK_BYTES,
    destLen: BULK_BYTES,
  },
  { name: 'time_now', functions: ['time_now'], imports: ['time_now'], body: `(call $time_now (i64.const ${DEST_DESC}))`, destLen: 8 },
  {
    name: 'random_bytes 16 KiB',
    functions: ['random_bytes'],
    imports: ['random_bytes'],
    body: `(call $random_bytes (i64.const ${DEST_DESC}))`,
    destLen: BULK_BYTES,
  },
  {
    name: 'value_return 16 KiB',
    functions: ['value_return'],
    imports: ['value_return'],
    body: `(call $value_return (i64.const ${RETURN_AT}))`,
    valueLen: BULK_BYTES,
  },
  {
    name: 'storage_read warm key',
    functions: ['storage_read'],
    imports: ['storage_read'],
    body: `(drop (call $storage_read (i64.const ${FIXED_KEY_DESC}) (i64.const 1)))`,
  },
  {
    name: 'storage_read distinct keys',
    functions: ['storage_read'],
    imports: ['storage_read'],
    body: `(drop (call $storage_read (i64.const ${KEY_DESC}) (i64.const 1))) ${NEXT_KEY}`,
  },
  {
    name: 'storage_write 16 KiB same key',
    functions: ['storage_write'],
    imports: ['storage_write'],
    body: `(drop (call $storage_write (i64.const ${FIXED_KEY_DESC}) (i64.const ${VALUE_DESC}) (i64.const 1)))`,
    valueLen: BULK_BYTES,
  },
  {
    name: 'storage_write distinct keys',
    functions: ['storage_write'],
    imports: ['storage_write'],
    body: `(drop (call $storage_write (i64.const ${KEY_DESC}) (i64.const ${VALUE_DESC}) (i64.const 1))) ${NEXT_KEY}`,
    valueLen: 8,
  },
  {
    name: 'storage_remove distinct keys',
    functions: ['storage_remove'],
    imports: ['storage_remove'],
    body: `(drop (call $storage_remove (i64.const ${KEY_DESC}) (i64.const 1))) ${NEXT_KEY}`,
  },
  {
    name: 'private_storage_read distinct keys',
    functions: ['private_storage_read'],
    imports: ['private_storage_read'],
    body: `(drop (call $private_storage_read (i64.const ${KEY_DESC}) (i64.const 1))) ${NEXT_KEY}`,
  },
  {
    name: 'context_is_member',
    functions: ['context_is_member'],
    imports: ['context_is_member'],
    body: `(drop (call $context_is_member (i64.const ${ID_DESC})))`,
  },
  {
    name: 'ed25519_verify 64 B',
    functions: ['ed25519_verify'],
    imports: ['ed25519_verify'],
    body: `(drop (call $ed25519_verify (i64.const ${SIG_DESC}) (i64.const ${PK_DESC}) (i64.const ${MSG_DESC})))`,
    msgLen: 64,
  },
  {
    name: 'ed25519_verify 16 KiB',
    functions: ['ed25519_verify'],
    imports: ['ed25519_verify'],
    body: `(drop (call $ed25519_verify (i64.const ${SIG_DESC}) (i64.const ${PK_DESC}) (i64.const ${MSG_DESC})))`,
    msgLen: BULK_BYTES,
  },
  {
    name: 'crdt map insert distinct keys',
    functions: ['js_crdt_map_insert'],
    imports: ['js_crdt_map_new', 'js_crdt_map_insert', 'read_register'],
    setup: newCollection('js_crdt_map_new'),
    body: `(drop (call $js_crdt_map_insert (i64.const ${ID_DESC}) (i64.const ${KEY_DESC}) (i64.const ${VALUE_DESC}) (i64.const 3))) ${NEXT_KEY}`,
    valueLen: 8,
  },
  {
    name: 'crdt map get same key',
    functions: ['js_crdt_map_get'],
    imports: ['js_crdt_map_new', 'js_crdt_map_get', 'read_register'],
    setup: newCollection('js_crdt_map_new'),
    body: `(drop (call $js_crdt_map_get (i64.const ${ID_DESC}) (i64.const ${FIXED_KEY_DESC}) (i64.const 3)))`,
  },
  {
    name: 'crdt counter increment',
    functions: ['js_crdt_counter_increment'],
    imports: ['js_crdt_counter_new', 'js_crdt_counter_increment', 'read_register'],
    setup: newCollection('js_crdt_counter_new'),
    body: `(drop (call $js_crdt_counter_increment (i64.const ${ID_DESC})))`,
  },
];

/** The module of a host loop: endless, or `iterations` rounds then a normal return (for the calibration). */
function hostModule(loop: HostLoop, iterations?: number): string {
  const valueLen = loop.valueLen ?? 8;
  const msgLen = loop.msgLen ?? 64;
  const destLen = loop.destLen ?? 64;
  const { pk, sig } = signature(msgLen);
  const data = (at: number, bytes: Uint8Array): string => `(data (i32.const ${at}) "${hexEsc(bytes)}")`;
  const imports = loop.imports.map((n) => `(import "env" "${n}" (func $${n} ${IMPORT_TYPES[n]}))`).join('\n  ');
  return `(module
  ${imports}
  (memory (export "memory") 2)
  ${data(KEY_DESC, desc(COUNTER, 8))}
  ${data(RETURN_AT, Uint8Array.from([...u64(0), ...desc(DATA, valueLen)]))}
  ${data(VALUE_DESC, desc(DATA, valueLen))}
  ${data(SIG_DESC, desc(SIG, 64))}
  ${data(PK_DESC, desc(PK, 32))}
  ${data(MSG_DESC, desc(DATA, msgLen))}
  ${data(DEST_DESC, desc(DATA, destLen))}
  ${data(ID_DESC, desc(ID, 32))}
  ${data(FIXED_KEY_DESC, desc(FIXED_KEY, 8))}
  ${data(SIG, sig)}
  ${data(PK, pk)}
  ${data(ID, pk)}
  ${data(FIXED_KEY, Uint8Array.from(Buffer.from('fixedkey')))}
  ${data(DATA, new Uint8Array(Math.max(valueLen, msgLen)).fill(0x61))}
  (func (export "run") (local $n i32)
    (local.set $n (i32.const ${iterations ?? 0}))
    ${loop.setup ?? ''}
    (loop $l
      ${loop.body}
      ${iterations === undefined ? '(br $l)' : '(br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))'})))`;
}

/** One endless loop per host-function class. */
export function gasWorkloads(): GasWorkload[] {
  return HOST_LOOPS.map((l) => ({ name: l.name, kind: 'host' as const, functions: l.functions, wat: hostModule(l) }));
}

/**
 * Instructions that call into the engine's runtime, each at its dearest: with nothing to grow, fill or copy (the
 * base cost alone), a table copy of every element, a br_table of 60,000 targets. Their costs in
 * src/vm/instrument/gas.ts were measured with these loops.
 */
const ENGINE_LOOPS: readonly { name: string; body: string }[] = [
  { name: 'memory.grow 0', body: '(drop (memory.grow (i32.const 0)))' },
  { name: 'memory.fill 0 bytes', body: '(memory.fill (i32.const 0) (i32.const 0) (i32.const 0))' },
  { name: 'memory.copy 0 bytes', body: '(memory.copy (i32.const 0) (i32.const 0) (i32.const 0))' },
  { name: 'memory.init 0 bytes', body: '(memory.init $d (i32.const 0) (i32.const 0) (i32.const 0))' },
  { name: 'table.copy 0 elements', body: '(table.copy (i32.const 0) (i32.const 0) (i32.const 0))' },
  { name: 'table.copy 65535 elements', body: '(table.copy (i32.const 0) (i32.const 1) (i32.const 65535))' },
  { name: 'table.init 0 elements', body: '(table.init $e (i32.const 0) (i32.const 0) (i32.const 0))' },
  { name: 'data.drop, elem.drop', body: '(data.drop $d) (elem.drop $e)' },
  { name: 'br_table 60000 targets', body: `(block (br_table 0 ${'0 '.repeat(60_000)}(local.get $n)))` },
];

export function engineWorkloads(): GasWorkload[] {
  return ENGINE_LOOPS.map((l) => ({
    name: l.name,
    kind: 'engine' as const,
    functions: [],
    wat: `(module
  (memory (export "memory") 1)
  (table 65536 funcref)
  (elem (i32.const 0) $nop)
  (elem $e func $nop $nop)
  (data $d "abcd")
  (func $nop)
  (func (export "run") (local $n i32)
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      ${l.body}
      (br $l))))`,
  }));
}

/** The host loops again, each running exactly `iterations` rounds and returning (calibration: ns per call). */
export function countedHostWorkloads(iterations: number): GasWorkload[] {
  return HOST_LOOPS.map((l) => ({ name: l.name, kind: 'host' as const, functions: l.functions, wat: hostModule(l, iterations) }));
}

interface Wabt {
  parseWat(name: string, text: string, features?: Record<string, boolean>): {
    toBinary(o: Record<string, unknown>): { buffer: Uint8Array };
    destroy(): void;
  };
}
let wabtPromise: Promise<Wabt> | undefined;

/** The workload's module as WebAssembly bytes (wabt, a development dependency). */
export async function workloadBytes(w: GasWorkload): Promise<Uint8Array> {
  wabtPromise ??= import('wabt').then((m) => (m.default as unknown as () => Promise<Wabt>)());
  const parsed = (await wabtPromise).parseWat(`${w.name}.wat`, w.wat, { mutable_globals: true });
  try {
    return new Uint8Array(parsed.toBinary({}).buffer);
  } finally {
    parsed.destroy();
  }
}
