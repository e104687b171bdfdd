/**
 * Probe contracts for the node-side host functions: tiny WebAssembly modules written in WAT whose methods call
 * one host function with exactly the descriptors a test wants (out of bounds, wrong length, invalid UTF-8),
 * which an SDK contract never produces. Helper functions return a value to the host:
 *   (call $ret_i64 X)   8 bytes, little-endian
 *   (call $ret_reg R)   the contents of register R
 *   (call $ret_mem P L) L bytes of memory at P
 */
import assert from 'node:assert/strict';
import type { Outcome } from '../../src/host/host.js';
import { HOST_FUNCTIONS, type HostFunctionName } from '../../src/vm/host-functions.generated.js';
import { wat } from '../instrument/helpers.js';

const PAGE = 65536;
const HELPERS = ['value_return', 'register_len', 'read_register'];

export class Probe {
  private readonly segments: { at: number; bytes: Uint8Array }[] = [];
  private next = 1024; // 0..1023: the helpers' scratch descriptors
  private readonly methods: string[] = [];

  constructor(private readonly scratchBytes = 64 * 1024) {}

  /** Reserves memory for bytes (zeroed memory needs no data segment: modules have a data size limit). */
  private place(bytes: Uint8Array): number {
    const at = this.next;
    if (bytes.some((b) => b !== 0)) this.segments.push({ at, bytes });
    this.next = (at + bytes.length + 15) & ~15;
    return at;
  }

  /** A descriptor {ptr, len} with any values (e.g. out of bounds); returns the descriptor's address. */
  desc(ptr: number | bigint, len: number | bigint): number {
    const d = new Uint8Array(16);
    const v = new DataView(d.buffer);
    v.setBigUint64(0, BigInt(ptr), true);
    v.setBigUint64(8, BigInt(len), true);
    return this.place(d);
  }

  /** Places bytes (a string as UTF-8) and returns the address of a descriptor over them. */
  buf(content: Uint8Array | string): number {
    const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
    const at = this.place(bytes.length ? bytes : new Uint8Array(1));
    return this.desc(at, bytes.length);
  }

  /**
   * Places each part, then their descriptors back to back (a struct of descriptors, such as an xcall's
   * {context_id, function, params}); returns the address of the first descriptor. An empty part is an empty buffer.
   */
  descriptors(...parts: (Uint8Array | string)[]): number {
    const placed = parts.map((c) => {
      const bytes = typeof c === 'string' ? new TextEncoder().encode(c) : c;
      return [this.place(bytes.length ? bytes : new Uint8Array(1)), bytes.length] as const;
    });
    const [first, ...rest] = placed.map(([at, len]) => this.desc(at, len));
    void rest;
    return first!;
  }

  /** A zeroed region of n bytes: its address and a descriptor over it. */
  out(n: number): { at: number; desc: number } {
    const at = this.place(new Uint8Array(n));
    return { at, desc: this.desc(at, n) };
  }

  method(name: string, body: string): this {
    this.methods.push(`(func (export "${name}") ${body})`);
    return this;
  }

  async build(): Promise<Uint8Array> {
    const scratch = this.next;
    const pages = Math.ceil((scratch + this.scratchBytes) / PAGE);
    const used = new Set<string>(HELPERS);
    for (const m of this.methods) for (const [, name] of m.matchAll(/\$([a-z0-9_]+)/g)) if (name! in HOST_FUNCTIONS) used.add(name!);
    const imports = [...used].map((name) => {
      const f = HOST_FUNCTIONS[name as HostFunctionName];
      const params = f.params.length ? ` (param ${f.params.join(' ')})` : '';
      const result = f.result ? ` (result ${f.result})` : '';
      return `(import "env" "${name}" (func $${name}${params}${result}))`;
    });
    const data = this.segments.map(
      ({ at, bytes }) => `(data (i32.const ${at}) "${[...bytes].map((b) => '\\' + b.toString(16).padStart(2, '0')).join('')}")`,
    );
    const text = `(module
  ${imports.join('\n  ')}
  (memory (export "memory") ${pages})
  ${data.join('\n  ')}
  (func $ret_mem (param $p i64) (param $l i64)
    (i64.store (i32.const 0) (i64.const 0))
    (i64.store (i32.const 8) (local.get $p))
    (i64.store (i32.const 16) (local.get $l))
    (call $value_return (i64.const 0)))
  (func $ret_i64 (param $v i64)
    (i64.store (i32.const 64) (local.get $v))
    (call $ret_mem (i64.const 64) (i64.const 8)))
  (func $ret_reg (param $r i64) (local $len i64)
    (local.set $len (call $register_len (local.get $r)))
    (i64.store (i32.const 32) (i64.const ${scratch}))
    (i64.store (i32.const 40) (local.get $len))
    (drop (call $read_register (local.get $r) (i64.const 32)))
    (call $ret_mem (i64.const ${scratch}) (local.get $len)))
  ${this.methods.join('\n  ')})`;
    return wat(text);
  }
}

/** The bytes a call returned (asserting it returned). */
export function returned(o: Outcome): Uint8Array {
  assert.equal(o.result.code, 'return', JSON.stringify(o.result));
  const v = (o.result as { value: unknown }).value;
  assert.ok(v instanceof Uint8Array, `expected bytes, got ${String(v)}`);
  return v;
}

/** The u64 a probe returned with $ret_i64. */
export function returnedU64(o: Outcome): bigint {
  const b = returned(o);
  assert.equal(b.length, 8);
  return Buffer.from(b).readBigUInt64LE(0);
}

/** The message of a vm_error, asserting the named error in the named host function. */
export function assertVmError(o: Outcome, error: string, fn: string): string {
  assert.equal(o.result.code, 'vm_error', JSON.stringify(o.result));
  const message = (o.result as { message: string }).message;
  assert.ok(message.startsWith(`${error} (${fn})`), `expected ${error} (${fn}), got: ${message}`);
  return message;
}

/** WAT for "call f with these i64 arguments". */
export const call = (fn: string, ...args: (number | bigint | string)[]): string =>
  `(call $${fn} ${args.map((a) => (typeof a === 'string' ? a : `(i64.const ${a})`)).join(' ')})`;
