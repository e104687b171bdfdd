/**
 * Bounds-checked access to a guest's linear memory. Every pointer and length from the guest is an i64
 * (BigInt); anything that does not fit inside the memory's current size traps with InvalidMemoryAccess,
 * including `ptr + len` overflow. The view is re-taken on every access because memory.grow detaches it.
 */
import { GuestError, type GuestErrorName } from '../errors.js';

/** A buffer descriptor: 16 bytes {ptr u64, len u64} in guest memory. */
export interface Descriptor {
  ptr: number;
  len: number;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A size limit checked against a descriptor's length before any data is read. */
export interface LimitCheck {
  max: number;
  error: GuestErrorName;
  /** The limit's name in messages (snake_case, as in the message's `limits`). */
  name: string;
}

export class GuestMemory {
  constructor(
    private readonly memory: WebAssembly.Memory,
    /** Name of the host function being served, for error messages. */
    private readonly currentFn: () => string,
  ) {}

  fail(kind: GuestErrorName, detail: string): never {
    throw new GuestError(kind, this.currentFn(), detail);
  }

  get size(): number {
    return this.memory.buffer.byteLength;
  }

  /** Checks [ptr, ptr+len) lies in memory; returns ptr as a number. */
  check(ptr: bigint, len: bigint, what = 'buffer'): number {
    const size = BigInt(this.memory.buffer.byteLength);
    if (ptr < 0n || len < 0n || ptr + len > size) {
      this.fail('InvalidMemoryAccess', `${what} [${ptr}, +${len}) is outside guest memory of ${size} bytes`);
    }
    return Number(ptr);
  }

  /** A copy of guest bytes (the guest may change or grow memory after the call returns). */
  read(ptr: bigint, len: bigint, what?: string): Uint8Array {
    const p = this.check(ptr, len, what);
    return new Uint8Array(this.memory.buffer, p, Number(len)).slice();
  }

  write(ptr: bigint, bytes: Uint8Array, what?: string): void {
    const p = this.check(ptr, BigInt(bytes.length), what);
    new Uint8Array(this.memory.buffer).set(bytes, p);
  }

  u32(ptr: bigint): number {
    const p = this.check(ptr, 4n, 'u32');
    return new DataView(this.memory.buffer).getUint32(p, true);
  }

  u64(ptr: bigint): bigint {
    const p = this.check(ptr, 8n, 'u64');
    return new DataView(this.memory.buffer).getBigUint64(p, true);
  }

  /** Reads a 16-byte descriptor; the described region must lie in memory too. */
  descriptor(ptr: bigint, what = 'buffer'): Descriptor {
    const p = this.check(ptr, 16n, `${what} descriptor`);
    const view = new DataView(this.memory.buffer);
    const dataPtr = view.getBigUint64(p, true);
    const len = view.getBigUint64(p + 8, true);
    return { ptr: this.check(dataPtr, len, what), len: Number(len) };
  }

  /**
   * The bytes a descriptor points to. When `limit` is given, the length is checked against it before any
   * data is read (as the seed requires), trapping with `limit.error`.
   */
  buffer(ptr: bigint, what = 'buffer', limit?: LimitCheck): Uint8Array {
    const p = this.check(ptr, 16n, `${what} descriptor`);
    const view = new DataView(this.memory.buffer);
    const dataPtr = view.getBigUint64(p, true);
    const len = view.getBigUint64(p + 8, true);
    if (limit && len > BigInt(limit.max)) this.fail(limit.error, `${what} of ${len} bytes exceeds ${limit.name} ${limit.max}`);
    return this.read(dataPtr, len, what);
  }

  /** A mutable destination: the descriptor's region, for the host to write into. */
  destination(ptr: bigint, what = 'buffer'): Descriptor {
    return this.descriptor(ptr, what);
  }

  writeAt(d: Descriptor, bytes: Uint8Array): void {
    new Uint8Array(this.memory.buffer).set(bytes, d.ptr);
  }

  /** Strict UTF-8 decode of guest bytes; invalid sequences trap with BadUTF8. */
  utf8(bytes: Uint8Array, what: string): string {
    try {
      return strictUtf8.decode(bytes);
    } catch {
      this.fail('BadUTF8', `${what} is not valid UTF-8`);
    }
  }
}
