/**
 * Little-endian byte writer and a strict reader for the CRDT records and the delta format: every read is
 * bounds-checked, booleans must be 0 or 1, and the caller checks that nothing is left over. Any violation
 * throws CrdtFormatError, which the host functions report as DeserializationError.
 */

/** Bytes that do not follow docs/crdt.md (an artifact, or a collection record in storage). */
export class CrdtFormatError extends Error {
  override readonly name = 'CrdtFormatError';
}

/** A domain error of a collection function: answered as -1 with the message in a register, not a trap. */
export class CrdtDomainError extends Error {
  override readonly name = 'CrdtDomainError';
}

export const U64_MAX = (1n << 64n) - 1n;

export class ByteWriter {
  private chunks: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array): this {
    this.chunks.push(b);
    this.size += b.length;
    return this;
  }

  u8(v: number): this {
    return this.push(Uint8Array.of(v));
  }

  u32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    return this.push(b);
  }

  u64(v: bigint): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    return this.push(b);
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  /** Raw bytes, no length (fixed-size fields such as ids). */
  raw(b: Uint8Array): this {
    return this.push(b);
  }

  /** u32 length, then the bytes. */
  bytes(b: Uint8Array): this {
    return this.u32(b.length).push(b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
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

/** Byte-order comparison (Buffer.compare without copying). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(
    Buffer.from(a.buffer, a.byteOffset, a.byteLength),
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

export function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && compareBytes(a, b) === 0;
}

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
