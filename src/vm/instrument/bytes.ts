import { ModuleRejected } from './rejected.js';

/** Cursor over a WebAssembly binary. Every decoding failure is a `malformed` rejection at the byte offset. */
export class ByteReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    pos = 0,
    readonly end = buf.length,
  ) {
    this.pos = pos;
  }

  fail(what: string, at = this.pos): never {
    throw new ModuleRejected('malformed', what, undefined, at);
  }

  eof(): boolean {
    return this.pos >= this.end;
  }

  u8(): number {
    if (this.pos >= this.end) this.fail('unexpected end');
    return this.buf[this.pos++]!;
  }

  /** Unsigned LEB128 up to 32 bits (at most 5 bytes, unused high bits zero). */
  u32(): number {
    const buf = this.buf;
    let result = 0;
    let shift = 0;
    const start = this.pos;
    for (;;) {
      if (this.pos >= this.end) this.fail('unexpected end in integer', start);
      const b = buf[this.pos++]!;
      if (shift === 28 && (b & 0xf0) !== 0) this.fail('integer too large', start);
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
      if (shift > 28) this.fail('integer representation too long', start);
    }
  }

  /** Signed LEB128 up to 33 bits (block types). Returns a JS number. */
  s33(): number {
    const start = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.end) this.fail('unexpected end in integer', start);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) {
        if (b & 0x40) result -= mul;
        if (result < -0x100000000 || result > 0xffffffff) this.fail('integer too large', start);
        return result;
      }
    }
    return this.fail('integer representation too long', start);
  }

  /** Skips a signed LEB128 of at most `maxBytes` bytes (i32.const: 5, i64.const: 10). */
  skipLeb(maxBytes: number): void {
    const start = this.pos;
    for (let i = 0; i < maxBytes; i++) {
      if (this.pos >= this.end) this.fail('unexpected end in integer', start);
      if ((this.buf[this.pos++]! & 0x80) === 0) return;
    }
    this.fail('integer representation too long', start);
  }

  skip(n: number): void {
    if (n > this.end - this.pos) this.fail('unexpected end');
    this.pos += n;
  }

  bytes(n: number): Uint8Array {
    const start = this.pos;
    this.skip(n);
    return this.buf.subarray(start, start + n);
  }

  name(): string {
    const len = this.u32();
    const start = this.pos;
    const b = this.bytes(len);
    try {
      return UTF8.decode(b);
    } catch {
      return this.fail('name is not valid UTF-8', start);
    }
  }
}

// ignoreBOM: a name may begin with U+FEFF, and the default decoder would silently drop it (renaming an export).
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const UTF8_ENCODER = new TextEncoder();

/** Growable output buffer with LEB128 helpers. */
export class ByteWriter {
  buf: Uint8Array;
  length = 0;
  constructor(capacity = 1024) {
    this.buf = new Uint8Array(capacity);
  }

  private grow(need: number): void {
    let cap = this.buf.length * 2;
    while (cap < this.length + need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(b: number): void {
    if (this.length >= this.buf.length) this.grow(1);
    this.buf[this.length++] = b;
  }

  u32(v: number): void {
    if (this.length + 5 > this.buf.length) this.grow(5);
    v >>>= 0;
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v !== 0) b |= 0x80;
      this.buf[this.length++] = b;
    } while (v !== 0);
  }

  /** Signed LEB128 of a safe integer (i32.const, i64.const with |v| < 2^53, block type indices). */
  sleb(v: number): void {
    if (this.length + 10 > this.buf.length) this.grow(10);
    for (;;) {
      const b = v & 0x7f;
      v = Math.floor(v / 128);
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
        this.buf[this.length++] = b;
        return;
      }
      this.buf[this.length++] = b | 0x80;
    }
  }

  /**
   * An opcode byte and its unsigned LEB128 immediate, with one capacity check: the instrumenter's commonest
   * output (a fresh VM runs it in V8's interpreter, where each call costs more than the bytes it writes).
   */
  opU32(op: number, v: number): void {
    if (this.length + 6 > this.buf.length) this.grow(6);
    const buf = this.buf;
    let o = this.length;
    buf[o++] = op;
    v >>>= 0;
    while (v >= 0x80) {
      buf[o++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[o++] = v;
    this.length = o;
  }

  /** Room for `n` more bytes; returns the buffer to write them into from `length` on (then set `length`). */
  reserve(n: number): Uint8Array {
    if (this.length + n > this.buf.length) this.grow(n);
    return this.buf;
  }

  bytes(b: Uint8Array): void {
    if (this.length + b.length > this.buf.length) this.grow(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /** Copies src[start, end): a plain loop for the short runs the rewriter copies most often. */
  copy(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (this.length + n > this.buf.length) this.grow(n);
    if (n < 16) {
      const buf = this.buf;
      let o = this.length;
      for (let i = start; i < end; i++) buf[o++] = src[i]!;
    } else {
      this.buf.set(src.subarray(start, end), this.length);
    }
    this.length += n;
  }

  name(s: string): void {
    const b = UTF8_ENCODER.encode(s);
    this.u32(b.length);
    this.bytes(b);
  }

  /** Writes `body` preceded by its length (section and function bodies). */
  sized(body: ByteWriter | Uint8Array): void {
    const b = body instanceof ByteWriter ? body.view() : body;
    this.u32(b.length);
    this.bytes(b);
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  /** A copy the caller may keep. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
