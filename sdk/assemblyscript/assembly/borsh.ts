// Minimal Borsh (little-endian, u32 length prefixes): enough for context_members,
// proposal actions and the counted lists the collections return.
import { utf8 } from "./buffers";

export class BorshWriter {
  private buf: Uint8Array = new Uint8Array(64);
  private len: i32 = 0;

  private reserve(n: i32): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length << 1;
    while (cap < this.len + n) cap <<= 1;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(v: u8): BorshWriter {
    this.reserve(1);
    this.buf[this.len++] = v;
    return this;
  }

  u32(v: u32): BorshWriter {
    this.reserve(4);
    store<u32>(this.buf.dataStart + <usize>this.len, v);
    this.len += 4;
    return this;
  }

  u64(v: u64): BorshWriter {
    this.reserve(8);
    store<u64>(this.buf.dataStart + <usize>this.len, v);
    this.len += 8;
    return this;
  }

  /** u128 given as its low and high 64-bit halves. */
  u128(lo: u64, hi: u64 = 0): BorshWriter {
    return this.u64(lo).u64(hi);
  }

  /** Raw bytes with no length prefix ([u8; N]). */
  fixed(bytes: Uint8Array): BorshWriter {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
    return this;
  }

  /** Vec<u8> / Box<[u8]>: u32 length then the bytes. */
  bytes(bytes: Uint8Array): BorshWriter {
    return this.u32(<u32>bytes.length).fixed(bytes);
  }

  string(s: string): BorshWriter {
    return this.bytes(utf8(s));
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export class BorshReader {
  private at: i32 = 0;
  constructor(private data: Uint8Array) {}

  private need(n: i32): void {
    if (n < 0 || n > this.data.length - this.at) throw new Error("borsh: unexpected end of data");
  }

  get remaining(): i32 {
    return this.data.length - this.at;
  }

  u8(): u8 {
    this.need(1);
    return this.data[this.at++];
  }

  u32(): u32 {
    this.need(4);
    const v = load<u32>(this.data.dataStart + <usize>this.at);
    this.at += 4;
    return v;
  }

  u64(): u64 {
    this.need(8);
    const v = load<u64>(this.data.dataStart + <usize>this.at);
    this.at += 8;
    return v;
  }

  fixed(n: i32): Uint8Array {
    this.need(n);
    const v = this.data.slice(this.at, this.at + n);
    this.at += n;
    return v;
  }

  bytes(): Uint8Array {
    return this.fixed(<i32>this.u32());
  }

  string(): string {
    const b = this.bytes();
    return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.byteLength, false);
  }
}
