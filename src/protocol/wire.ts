/**
 * Encoding of the protocol's field types (see the "Types" table in docs/protocol.md). Requests and responses
 * are sequences of these fields as declared in protocol/methods.json; src/protocol/messages.ts walks the
 * declarations, so no method has hand-written byte code.
 */
import { HostlinkError } from '../errors.js';

export interface WireTypes {
  u8: number;
  u32: number;
  u64: bigint;
  bytes32: Uint8Array;
  bytes: Uint8Array;
  string: string;
  bytes_list: Uint8Array[];
  maybe_bytes_list: (Uint8Array | null)[];
}
export type WireType = keyof WireTypes;

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Appends fields to a growing buffer. */
export class WireWriter {
  private buf: Buffer;
  private len = 0;

  constructor(initial = 64) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(v: number): this {
    this.reserve(1);
    this.buf[this.len++] = v;
    return this;
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new HostlinkError('internal', `u32 out of range: ${v}`);
    this.reserve(4);
    this.buf.writeUInt32LE(v, this.len);
    this.len += 4;
    return this;
  }

  u64(v: bigint): this {
    this.reserve(8);
    this.buf.writeBigUInt64LE(v, this.len);
    this.len += 8;
    return this;
  }

  raw(bytes: Uint8Array): this {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
    return this;
  }

  bytes(bytes: Uint8Array): this {
    return this.u32(bytes.length).raw(bytes);
  }

  field<T extends WireType>(type: T, value: WireTypes[T]): this {
    switch (type) {
      case 'u8':
        return this.u8(value as number);
      case 'u32':
        return this.u32(value as number);
      case 'u64':
        return this.u64(value as bigint);
      case 'bytes32': {
        const b = value as Uint8Array;
        if (b.length !== 32) throw new HostlinkError('internal', `bytes32 field has ${b.length} bytes`);
        return this.raw(b);
      }
      case 'bytes':
        return this.bytes(value as Uint8Array);
      case 'string':
        return this.bytes(utf8.encode(value as string));
      case 'bytes_list': {
        const list = value as Uint8Array[];
        this.u32(list.length);
        for (const b of list) this.bytes(b);
        return this;
      }
      case 'maybe_bytes_list': {
        const list = value as (Uint8Array | null)[];
        this.u32(list.length);
        for (const b of list) {
          if (b === null) this.u8(0);
          else this.u8(1).bytes(b);
        }
        return this;
      }
      default:
        throw new HostlinkError('internal', `unknown wire type ${String(type)}`);
    }
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** Reads fields from a complete body, refusing truncation; the caller checks `done()` for trailing bytes. */
export class WireReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array, private readonly what: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  private need(n: number, field: string): void {
    if (this.remaining < n) {
      throw new HostlinkError('protocol', `${this.what}: truncated ${field} at byte ${this.pos} (need ${n}, have ${this.remaining})`);
    }
  }

  u8(field = 'u8'): number {
    this.need(1, field);
    return this.bytes[this.pos++]!;
  }

  u32(field = 'u32'): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64(field = 'u64'): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  raw(n: number, field = 'bytes'): Uint8Array {
    this.need(n, field);
    // A plain Uint8Array view (not a Buffer subarray), whatever the caller handed in.
    const out = new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + this.pos, n);
    this.pos += n;
    return out;
  }

  /** A list's count, refused above its bound. */
  private items(field: string, maxItems: number): number {
    const n = this.u32(field);
    if (n > maxItems) throw new HostlinkError('protocol', `${this.what}: ${field} has ${n} items; at most ${maxItems}`);
    return n;
  }

  bytesField(field = 'bytes'): Uint8Array {
    return this.raw(this.u32(field), field);
  }

  /** `maxItems` bounds a list field: a larger count is refused before any item is read or allocated. */
  field<T extends WireType>(type: T, field: string, maxItems = Infinity): WireTypes[T] {
    switch (type) {
      case 'u8':
        return this.u8(field) as WireTypes[T];
      case 'u32':
        return this.u32(field) as WireTypes[T];
      case 'u64':
        return this.u64(field) as WireTypes[T];
      case 'bytes32':
        return this.raw(32, field) as WireTypes[T];
      case 'bytes':
        return this.bytesField(field) as WireTypes[T];
      case 'string': {
        const at = this.pos;
        const b = this.bytesField(field);
        try {
          return strictUtf8.decode(b) as WireTypes[T];
        } catch {
          throw new HostlinkError('protocol', `${this.what}: ${field} at byte ${at} is not valid UTF-8`);
        }
      }
      case 'bytes_list': {
        const n = this.items(field, maxItems);
        // Each element needs at least its 4-byte length: bound n before allocating.
        if (n > this.remaining / 4) throw new HostlinkError('protocol', `${this.what}: ${field} claims ${n} elements, more than the body holds`);
        const out: Uint8Array[] = [];
        for (let i = 0; i < n; i++) out.push(this.bytesField(field));
        return out as WireTypes[T];
      }
      case 'maybe_bytes_list': {
        const n = this.items(field, maxItems);
        if (n > this.remaining) throw new HostlinkError('protocol', `${this.what}: ${field} claims ${n} elements, more than the body holds`);
        const out: (Uint8Array | null)[] = [];
        for (let i = 0; i < n; i++) {
          const present = this.u8(field);
          if (present === 0) out.push(null);
          else if (present === 1) out.push(this.bytesField(field));
          else throw new HostlinkError('protocol', `${this.what}: ${field} presence byte ${present} is not 0 or 1`);
        }
        return out as WireTypes[T];
      }
      default:
        throw new HostlinkError('internal', `unknown wire type ${String(type)}`);
    }
  }

  /** Throws when bytes are left over: every accepted body has exactly one encoding. */
  done(): void {
    if (this.remaining !== 0) {
      throw new HostlinkError('protocol', `${this.what}: ${this.remaining} trailing bytes at byte ${this.pos}`);
    }
  }
}
