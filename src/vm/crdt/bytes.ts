/**
 * Little-endian byte writer and a strict reader for the CRDT records and the delta format: every read is
 * bounds-checked, booleans must be 0 or 1, and the caller checks that nothing is left over. Any violation
 * throws CrdtFormatError, which the host functions report as DeserializationError.
 */

/**
 * Bytes that do not follow docs/crdt.md (an artifact, or a collection record in storage). Internal control
 * flow (src/errors.ts, INTERNAL_ERROR_CLASSES): host functions report it as DeserializationError.
 */
export class CrdtFormatError extends Error {
  override readonly name = 'CrdtFormatError';
}

/**
 * A domain error of a collection function: answered as -1 with the message in a register, not a trap.
 * Internal control flow (src/errors.ts, INTERNAL_ERROR_CLASSES).
 */
export class CrdtDomainError extends Error {
  override readonly name = 'CrdtDomainError';
}

export const U64_MAX = (1n << 64n) - 1n;

export class ByteWriter {
  // One growing buffer: records are written field by field, and small allocations dominated the cost.
  private buf = new Uint8Array(64);
  private view = new DataView(this.buf.buffer);
  private size = 0;

  private room(n: number): number {
    if (this.size + n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.size + n));
      bigger.set(this.buf.subarray(0, this.size));
      this.buf = bigger;
      this.view = new DataView(bigger.buffer);
    }
    const at = this.size;
    this.size += n;
    return at;
  }

  u8(v: number): this {
    const at = this.room(1); // before reading this.buf: room() may replace it
    this.buf[at] = v;
    return this;
  }

  u32(v: number): this {
    const at = this.room(4);
    this.view.setUint32(at, v, true);
    return this;
  }

  u64(v: bigint): this {
    const at = this.room(8);
    this.view.setBigUint64(at, v, true);
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  /** Raw bytes, no length (fixed-size fields such as ids). */
  raw(b: Uint8Array): this {
    const at = this.room(b.length);
    this.buf.set(b, at);
    return this;
  }

  /** u32 length, then the bytes. */
  bytes(b: Uint8Array): this {
    return this.u32(b.length).raw(b);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.size);
  }
}

export class ByteReader {
  private at = 0;
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    /** Names the thing being decoded in error messages. */
    private readonly what: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(why: string): never {
    throw new CrdtFormatError(`${this.what}: ${why} at byte ${this.at}`);
  }

  private need(n: number, field: string): number {
    if (n > this.buf.length - this.at) this.fail(`${field} needs ${n} bytes, ${this.buf.length - this.at} left`);
    const start = this.at;
    this.at += n;
    return start;
  }

  get remaining(): number {
    return this.buf.length - this.at;
  }

  u8(field: string): number {
    return this.view.getUint8(this.need(1, field));
  }

  u32(field: string): number {
    return this.view.getUint32(this.need(4, field), true);
  }

  u64(field: string): bigint {
    return this.view.getBigUint64(this.need(8, field), true);
  }

  bool(field: string): boolean {
    const b = this.u8(field);
    if (b > 1) this.fail(`${field} must be 0 or 1, got ${b}`);
    return b === 1;
  }

  fixed(n: number, field: string): Uint8Array {
    const start = this.need(n, field);
    return this.buf.slice(start, start + n);
  }

  bytes(field: string): Uint8Array {
    const n = this.u32(`${field} length`);
    return this.fixed(n, field);
  }

  /** Everything left (a trailing variable-length field without a length prefix). */
  rest(): Uint8Array {
    return this.fixed(this.remaining, 'rest');
  }

  end(): void {
    if (this.at !== this.buf.length) this.fail(`${this.buf.length - this.at} trailing bytes`);
  }
}

/** Byte-order comparison (a plain loop: keys are short, and wrapping them in Buffers cost more). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

export function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && compareBytes(a, b) === 0;
}

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
