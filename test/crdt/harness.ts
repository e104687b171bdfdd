/**
 * Drives host functions directly, as the reference system's unit tests do: a real Execution over an
 * in-memory committed state and a WebAssembly.Memory the test writes descriptors into. `commit()` applies
 * the execution's storage delta to the state, as the host does after a successful call.
 */
import assert from 'node:assert/strict';
import { GuestError, type GuestErrorName } from '../../src/errors.js';
import { buildMessage, parseMessage, type MessageInit } from '../../src/protocol/message.js';
import { Execution } from '../../src/vm/execution.js';
import type { HostFunctionName } from '../../src/vm/host-functions.generated.js';
import { IMPLEMENTATIONS } from '../../src/vm/imports/index.js';
import type { StorageSource } from '../../src/vm/storage-overlay.js';
import { id32 } from '../helpers.js';

const latin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

/** Committed storage of one context (one replica). */
export class MemoryState implements StorageSource {
  readonly entries = new Map<string, Uint8Array>();

  readMany(keys: Uint8Array[]): (Uint8Array | null)[] {
    return keys.map((k) => this.entries.get(latin1(k)) ?? null);
  }

  apply(writes: [Uint8Array, Uint8Array | null][]): void {
    for (const [k, v] of writes) {
      if (v === null) this.entries.delete(latin1(k));
      else this.entries.set(latin1(k), v);
    }
  }

  /** Every entry as hex, sorted: equal snapshots mean byte-identical state. */
  snapshot(): string[] {
    return [...this.entries.entries()]
      .map(([k, v]) => `${Buffer.from(k, 'latin1').toString('hex')}=${Buffer.from(v).toString('hex')}`)
      .sort();
  }
}

const freeMeter = { charge: (): void => undefined, gasUsed: (): bigint => 0n };

type AnyFn = (ex: Execution, ...args: (bigint | number)[]) => bigint | number | void;

/** One execution with a guest memory to pass buffers through. */
export class GuestRun {
  readonly ex: Execution;
  readonly memory = new WebAssembly.Memory({ initial: 4 });
  private top = 16;

  constructor(
    readonly state: MemoryState,
    init: Partial<MessageInit> = {},
  ) {
    const msg = parseMessage(
      buildMessage({ codeHash: id32('code'), method: 'test', contextId: id32('context'), executorId: id32('alice'), ...init }),
    );
    this.ex = new Execution(msg, state, freeMeter);
    this.ex.attachMemory(this.memory);
  }

  private alloc(n: number): number {
    const at = this.top;
    this.top += (n + 7) & ~7;
    assert.ok(this.top < this.memory.buffer.byteLength, 'test guest memory exhausted');
    return at;
  }

  /** Copies bytes into guest memory and returns the address of a descriptor over them. */
  buf(bytes: Uint8Array | string): bigint {
    const b = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
    const data = this.alloc(b.length);
    new Uint8Array(this.memory.buffer).set(b, data);
    return this.descriptor(BigInt(data), BigInt(b.length));
  }

  /** A descriptor with any pointer and length (for out-of-bounds tests). */
  descriptor(ptr: bigint, len: bigint): bigint {
    const d = this.alloc(16);
    const view = new DataView(this.memory.buffer);
    view.setBigUint64(d, ptr, true);
    view.setBigUint64(d + 8, len, true);
    return BigInt(d);
  }

  /** A descriptor whose data (2 bytes: under every size limit) runs past the end of memory. */
  outOfBounds(): bigint {
    return this.descriptor(BigInt(this.memory.buffer.byteLength - 1), 2n);
  }

  /** Calls a host function the way the import wrapper does. */
  call(name: HostFunctionName, ...args: (bigint | number)[]): number | bigint | void {
    const impl = IMPLEMENTATIONS[name] as AnyFn | undefined;
    assert.ok(impl, `${name} is implemented`);
    this.ex.enter(name);
    return impl(this.ex, ...args);
  }

  /** Calls and expects a trap of the given kind. */
  traps(kind: GuestErrorName, name: HostFunctionName, ...args: (bigint | number)[]): GuestError {
    let caught: unknown;
    try {
      this.call(name, ...args);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof GuestError, `${name} should trap with ${kind}, got ${String(caught)}`);
    assert.equal(caught.kind, kind, caught.message);
    assert.equal(caught.fn, name);
    return caught;
  }

  reg(id = 0n): Uint8Array | undefined {
    return this.ex.registers.get(id);
  }

  text(id = 0n): string | undefined {
    const r = this.reg(id);
    return r === undefined ? undefined : Buffer.from(r).toString('utf8');
  }

  /** Applies the execution's writes to the state (the host's part after a successful call). */
  commit(): void {
    this.state.apply(this.ex.storage.delta());
  }
}

export const u64 = (b: Uint8Array | undefined): bigint => {
  assert.ok(b !== undefined && b.length === 8, 'an 8-byte register');
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
};

/** Parses a listing register: u32 count, then `parts` length-prefixed fields per item. */
export function listing(b: Uint8Array | undefined, parts: number): string[][] {
  assert.ok(b !== undefined);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = view.getUint32(0, true);
  let at = 4;
  const out: string[][] = [];
  for (let i = 0; i < n; i++) {
    const item: string[] = [];
    for (let p = 0; p < parts; p++) {
      const len = view.getUint32(at, true);
      item.push(Buffer.from(b.subarray(at + 4, at + 4 + len)).toString('utf8'));
      at += 4 + len;
    }
    out.push(item);
  }
  assert.equal(at, b.length, 'no bytes after the listing');
  return out;
}
