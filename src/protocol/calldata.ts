/**
 * GenVM calldata: the self-describing binary value format used for method arguments, return values and
 * error data (docs/calldata.md). Every value starts with a ULEB128 header h; type = h & 7, payload = h >> 3.
 *
 * The decoder is strict: it accepts only the canonical encoding, so `encode(decode(x))` is byte-identical
 * to x for every accepted x. Hashes and signatures over calldata therefore never depend on who encoded it.
 */
import { HostlinkError } from '../errors.js';

/** A 20-byte account address (calldata atom 3). Immutable: the constructor copies its argument. */
export class Address {
  static readonly BYTES = 20;
  readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array) || bytes.length !== Address.BYTES) {
      throw new HostlinkError('usage', `an address is exactly ${Address.BYTES} bytes, got ${describe(bytes)}`);
    }
    this.bytes = Uint8Array.from(bytes);
  }

  /** Parses 40 hex digits, with or without a 0x prefix. */
  static fromHex(hex: string): Address {
    const digits = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex;
    if (!/^[0-9a-fA-F]{40}$/.test(digits)) {
      throw new HostlinkError('usage', `invalid address '${hex}': expected 40 hex digits`);
    }
    return new Address(Buffer.from(digits, 'hex'));
  }

  /** Lower-case hex with a 0x prefix. */
  toHex(): string {
    return '0x' + Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length).toString('hex');
  }

  toString(): string {
    return this.toHex();
  }

  equals(other: Address): boolean {
    return bytesEqual(this.bytes, other.bytes);
  }
}

/** A decoded calldata value. Integers are always bigint and maps always Map (insertion order = key order). */
export type CalldataValue = null | boolean | bigint | string | Uint8Array | Address | CalldataValue[] | CalldataMap;
export type CalldataMap = Map<string, CalldataValue>;

/**
 * What `encodeCalldata` accepts: a CalldataValue, or for convenience a safe-integer `number` and a plain
 * object (prototype Object.prototype or null) in place of a Map. Anything else is rejected, `undefined` included.
 */
export type CalldataInput =
  | CalldataValue
  | number
  | readonly CalldataInput[]
  | ReadonlyMap<string, CalldataInput>
  | { readonly [key: string]: CalldataInput };

/**
 * Deepest container nesting either side accepts. Ours, not GenVM's: it keeps the recursive encoder and decoder
 * far from the JS stack limit, turns a cycle into an error, and is far above any real contract's data.
 */
export const MAX_CALLDATA_DEPTH = 1024;

/** Largest length of bytes, strings, keys, arrays and maps (GenVM rejects lengths over 32 bits). */
const MAX_LENGTH = 0xffff_ffff;

// Value types (h & 7).
const T_ATOM = 0;
const T_UINT = 1;
const T_NINT = 2;
const T_BYTES = 3;
const T_STRING = 4;
const T_ARRAY = 5;
const T_MAP = 6;
// Atoms (h >> 3 when the type is T_ATOM).
const ATOM_NULL = 0;
const ATOM_FALSE = 1;
const ATOM_TRUE = 2;
const ATOM_ADDRESS = 3;

/** Headers below 2^53 fit a JS number; payloads below 2^50 keep `payload * 8 + type` under 2^53. */
const NUMBER_PAYLOAD_LIMIT = 2 ** 50;
const BIG_NUMBER_PAYLOAD_LIMIT = 2n ** 50n;

// ---------------------------------------------------------------------------------------------------------
// Encoding: one pass into a growing buffer. The buffer is reused between calls (encode runs per execution).

/**
 * Byte strings at least this long skip a streaming writer's buffer: they go to its sink as they are (a result
 * of 60 MiB was copied three times to be hashed). Small ones are batched, so the sink sees few calls.
 */
const STREAMED_BYTES = 64 * 1024;

class Writer {
  buf: Buffer;
  pos = 0;

  /** With a sink, the encoding is handed out in order (flush) instead of collected; see streamCalldata. */
  sink: ((chunk: Uint8Array) => void) | undefined = undefined;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Hands what is buffered to the sink. */
  flush(): void {
    if (this.pos > 0) this.sink?.(this.buf.subarray(0, this.pos));
    this.pos = 0;
  }

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** ULEB128 of a non-negative safe integer. */
  uleb(x: number): void {
    this.ensure(8);
    const buf = this.buf;
    let p = this.pos;
    while (x > 0x7fff_ffff) {
      const low = x % 128;
      buf[p++] = low | 0x80;
      x = (x - low) / 128;
    }
    while (x > 0x7f) {
      buf[p++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    buf[p++] = x;
    this.pos = p;
  }

  /**
   * ULEB128 of a large bigint in linear time: regroup the hex digits (4 bits) into 7-bit groups, least
   * significant first. Repeated `>> 7n` would be quadratic in the size of the integer.
   */
  ulebBig(x: bigint): void {
    const hex = x.toString(16);
    this.ensure(Math.ceil((hex.length * 4) / 7) + 1);
    const buf = this.buf;
    let p = this.pos;
    let acc = 0;
    let bits = 0;
    for (let i = hex.length - 1; i >= 0; i--) {
      const c = hex.charCodeAt(i);
      acc |= (c <= 57 ? c - 48 : c - 87) << bits; // '0'-'9', 'a'-'f'
      bits += 4;
      if (bits >= 7) {
        buf[p++] = (acc & 0x7f) | 0x80;
        acc >>>= 7;
        bits -= 7;
      }
    }
    // toString(16) has no leading zero digit, so when the leftover bits are zero the last full group holds
    // the top bit and is the final byte.
    if (acc !== 0 || p === this.pos) buf[p++] = acc;
    else buf[p - 1] = buf[p - 1]! & 0x7f;
    this.pos = p;
  }

  header(payload: number, type: number): void {
    if (payload < NUMBER_PAYLOAD_LIMIT) this.uleb(payload * 8 + type);
    else this.ulebBig((BigInt(payload) << 3n) | BigInt(type));
  }

  raw(bytes: Uint8Array): void {
    if (this.sink !== undefined && bytes.length >= STREAMED_BYTES) {
      this.flush();
      this.sink(bytes);
      return;
    }
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }
}

const SCRATCH_BYTES = 16 * 1024;
/** A scratch buffer that grew past this is dropped rather than kept alive between calls. */
const MAX_RETAINED_BYTES = 1024 * 1024;
let scratch: Writer | null = null;

/**
 * Encodes a value canonically. Map and object keys are written in ascending order of their UTF-8 bytes.
 * Throws HostlinkError('usage') for a value calldata cannot represent: a non-integer or unsafe `number`,
 * `undefined`, a string with a lone surrogate, a class instance other than Uint8Array/Address/Map, a cycle.
 */
export function encodeCalldata(value: CalldataInput): Uint8Array {
  return encodeCalldataAfter(null, value);
}

/**
 * `prefix` (one byte, e.g. a result code) followed by the encoding of `value`, built in one buffer: the same as
 * concatenating the two, one copy of a large value fewer.
 */
export function encodeCalldataAfter(prefix: number | null, value: CalldataInput): Uint8Array {
  // Take the scratch writer; a re-entrant call (an object getter that encodes) finds none and makes its own.
  const w = scratch ?? new Writer(SCRATCH_BYTES);
  scratch = null;
  w.pos = 0;
  try {
    if (prefix !== null) w.byte(prefix);
    writeValue(w, value, 0);
    const out = new Uint8Array(w.pos);
    out.set(w.buf.subarray(0, w.pos));
    return out;
  } finally {
    if (w.buf.length <= MAX_RETAINED_BYTES) scratch = w;
  }
}

/**
 * The canonical encoding of `value`, handed to `sink` piece by piece in order instead of built whole (what
 * encodeCalldata returns, concatenated): for hashing a large value without copying it. Each piece is valid only
 * during the sink call (the writer's buffer is reused), so the sink must consume it at once, as Hash.update does.
 */
export function streamCalldata(value: CalldataInput, sink: (chunk: Uint8Array) => void): void {
  // The scratch writer as in encodeCalldataAfter: an execution hash per call must not allocate a buffer each time.
  const w = scratch ?? new Writer(SCRATCH_BYTES);
  scratch = null;
  w.pos = 0;
  w.sink = sink;
  try {
    writeValue(w, value, 0);
    w.flush();
  } finally {
    w.sink = undefined;
    if (w.buf.length <= MAX_RETAINED_BYTES) scratch = w;
  }
}

function writeValue(w: Writer, v: unknown, depth: number): void {
  switch (typeof v) {
    case 'boolean':
      w.byte(((v ? ATOM_TRUE : ATOM_FALSE) << 3) | T_ATOM);
      return;
    case 'bigint':
      writeBigInt(w, v);
      return;
    case 'number':
      if (!Number.isSafeInteger(v)) {
        throw new HostlinkError('usage', `calldata integers given as number must be safe integers, got ${v}; use a bigint`);
      }
      if (v >= 0) w.header(v, T_UINT);
      else w.header(-v - 1, T_NINT);
      return;
    case 'string':
      writeString(w, v, true);
      return;
    case 'object':
      break;
    default:
      throw new HostlinkError('usage', `calldata cannot represent ${describe(v)}`);
  }
  if (v === null) {
    w.byte((ATOM_NULL << 3) | T_ATOM);
    return;
  }
  if (v instanceof Uint8Array) {
    if (v.length > MAX_LENGTH) throw new HostlinkError('usage', `calldata bytes of ${v.length} bytes exceed 2^32-1`);
    w.header(v.length, T_BYTES);
    w.raw(v);
    return;
  }
  if (v instanceof Address) {
    w.byte((ATOM_ADDRESS << 3) | T_ATOM);
    w.raw(v.bytes);
    return;
  }
  if (depth >= MAX_CALLDATA_DEPTH) {
    throw new HostlinkError('usage', `calldata nests deeper than ${MAX_CALLDATA_DEPTH} containers (is there a cycle?)`);
  }
  if (Array.isArray(v)) {
    w.header(v.length, T_ARRAY);
    for (let i = 0; i < v.length; i++) writeValue(w, v[i], depth + 1);
    return;
  }
  if (v instanceof Map) {
    const keys: string[] = [];
    for (const k of v.keys()) {
      if (typeof k !== 'string') throw new HostlinkError('usage', `calldata map keys must be strings, got ${describe(k)}`);
      keys.push(k);
    }
    if (keys.length > 1) keys.sort(compareUtf8);
    w.header(keys.length, T_MAP);
    for (const k of keys) {
      writeString(w, k, false);
      writeValue(w, v.get(k), depth + 1);
    }
    return;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) {
    const obj = v as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length > 1) keys.sort(compareUtf8);
    w.header(keys.length, T_MAP);
    for (const k of keys) {
      writeString(w, k, false);
      writeValue(w, obj[k], depth + 1);
    }
    return;
  }
  throw new HostlinkError('usage', `calldata cannot represent ${describe(v)}`);
}

function writeBigInt(w: Writer, v: bigint): void {
  const negative = v < 0n;
  // Negative integers store abs(x) - 1, so -1 is payload 0 and there is no negative zero.
  const payload = negative ? -v - 1n : v;
  const type = negative ? T_NINT : T_UINT;
  if (payload < BIG_NUMBER_PAYLOAD_LIMIT) w.uleb(Number(payload) * 8 + type);
  else w.ulebBig((payload << 3n) | BigInt(type));
}

/** Short strings are measured and copied in JS; longer ones go through Buffer's native UTF-8 code. */
const SHORT_STRING = 64;
const stringIsWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

/** A string value (tagged: header with type 4) or a map key (untagged: plain ULEB byte length). */
function writeString(w: Writer, s: string, tagged: boolean): void {
  let byteLength: number;
  if (s.length <= SHORT_STRING || stringIsWellFormed === undefined) {
    byteLength = utf8Length(s);
  } else {
    if (!stringIsWellFormed.call(s)) throw loneSurrogate();
    byteLength = Buffer.byteLength(s, 'utf8');
  }
  if (byteLength > MAX_LENGTH) throw new HostlinkError('usage', `calldata string of ${byteLength} bytes exceeds 2^32-1`);
  if (tagged) w.header(byteLength, T_STRING);
  else w.uleb(byteLength);
  w.ensure(byteLength);
  if (byteLength === s.length && byteLength <= SHORT_STRING) {
    const buf = w.buf;
    let p = w.pos;
    for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i);
  } else {
    w.buf.write(s, w.pos, byteLength, 'utf8');
  }
  w.pos += byteLength;
}

/** UTF-8 byte length; throws on a lone surrogate, which UTF-8 cannot carry (it would be replaced by U+FFFD). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if ((c & 0xfc00) === 0xd800) {
      if ((s.charCodeAt(i + 1) & 0xfc00) !== 0xdc00) throw loneSurrogate();
      i++;
      n += 4;
    } else if ((c & 0xfc00) === 0xdc00) throw loneSurrogate();
    else n += 3;
  }
  return n;
}

function loneSurrogate(): HostlinkError {
  return new HostlinkError('usage', 'calldata strings must be valid Unicode: found a lone surrogate');
}

/**
 * Orders strings by their UTF-8 bytes (= by code point) without encoding them. UTF-16 code-unit order
 * differs only between surrogates (code points >= U+10000) and U+E000..U+FFFF; remap so surrogates sort last.
 */
function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

// ---------------------------------------------------------------------------------------------------------
// Decoding

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Bounds for decoding bytes from a peer that may be hostile (a VM's effects): how much the decoder may build,
 * checked as it goes, so a frame of millions of tiny values or one enormous integer is refused before it costs
 * seconds of the event loop. Every value counts one, and every map key one more.
 */
export interface DecodeLimits {
  /** Values the input may hold in all (containers and their items, map keys included). */
  maxValues: number;
  /** Bytes of one integer's ULEB128 header (10 bytes hold any 64-bit integer). */
  maxIntegerBytes: number;
}

const UNBOUNDED: DecodeLimits = { maxValues: Infinity, maxIntegerBytes: Infinity };

class Reader {
  pos = 0;
  /** Values still allowed (DecodeLimits.maxValues). */
  valuesLeft: number;
  constructor(readonly bytes: Uint8Array, readonly limits: DecodeLimits) {
    this.valuesLeft = limits.maxValues;
  }
  /** Counts one more value; refuses the input past the limit. */
  count(at: number): void {
    if (--this.valuesLeft < 0) throw reject(at, 'too many values', `more than ${this.limits.maxValues} values`);
  }
}

/**
 * Decodes exactly one canonical value spanning all of `bytes`. Throws HostlinkError('protocol') naming the
 * broken rule and the byte offset: truncated input, non-minimal ULEB128, length over 32 bits, unknown atom,
 * reserved type 7, invalid UTF-8, map keys not strictly ascending (unsorted or duplicate), nesting deeper than
 * MAX_CALLDATA_DEPTH, trailing bytes. Byte strings and addresses are copied out of `bytes`.
 */
export function decodeCalldata(bytes: Uint8Array, limits: DecodeLimits = UNBOUNDED): CalldataValue {
  // TextDecoder refuses views of shared memory (a worker channel might hand us one): decode a private copy.
  if (bytes.buffer instanceof SharedArrayBuffer) bytes = Uint8Array.from(bytes);
  const r = new Reader(bytes, limits);
  const value = readValue(r, 0);
  if (r.pos !== bytes.length) {
    throw reject(r.pos, 'trailing bytes', `${bytes.length - r.pos} byte(s) after the value`);
  }
  return value;
}

function reject(offset: number, rule: string, detail: string): HostlinkError {
  return new HostlinkError('protocol', `calldata: ${rule} at byte ${offset}: ${detail}`);
}

function readValue(r: Reader, depth: number): CalldataValue {
  const start = r.pos;
  r.count(start);
  const h = readUleb(r);
  if (typeof h === 'bigint') {
    // Only integers can have a header of 2^49 or more; everything else is rejected by its own rule.
    const type = Number(h & 7n);
    const payload = h >> 3n;
    if (type === T_UINT) return payload;
    if (type === T_NINT) return -payload - 1n;
    return readTyped(r, start, type, Infinity, depth);
  }
  const type = h % 8;
  const payload = (h - type) / 8;
  if (type === T_UINT) return BigInt(payload);
  if (type === T_NINT) return -BigInt(payload) - 1n;
  return readTyped(r, start, type, payload, depth);
}

/** Everything but integers. `payload` is Infinity when the header did not fit a number. */
function readTyped(r: Reader, start: number, type: number, payload: number, depth: number): CalldataValue {
  const bytes = r.bytes;
  if (type === T_ATOM) {
    switch (payload) {
      case ATOM_NULL:
        return null;
      case ATOM_FALSE:
        return false;
      case ATOM_TRUE:
        return true;
      case ATOM_ADDRESS: {
        need(r, Address.BYTES, start, 'address');
        const a = new Address(bytes.subarray(r.pos, r.pos + Address.BYTES));
        r.pos += Address.BYTES;
        return a;
      }
      default:
        throw reject(start, 'unknown atom', `atom ${payload === Infinity ? '>= 2^46' : payload} (known: 0 null, 1 false, 2 true, 3 address)`);
    }
  }
  if (type === 7) throw reject(start, 'reserved type 7', 'type 7 is reserved');
  if (payload > MAX_LENGTH) {
    throw reject(start, 'length over 32 bits', `${payload === Infinity ? 'a length >= 2^46' : payload} exceeds 2^32-1`);
  }
  switch (type) {
    case T_BYTES: {
      need(r, payload, start, 'bytes');
      const out = new Uint8Array(payload);
      out.set(bytes.subarray(r.pos, r.pos + payload));
      r.pos += payload;
      return out;
    }
    case T_STRING:
      need(r, payload, start, 'string');
      return readUtf8(r, payload);
    case T_ARRAY: {
      checkDepth(start, depth);
      // Every item takes at least one byte: refuse an impossible count before allocating anything.
      need(r, payload, start, `array of ${payload} items`);
      const out: CalldataValue[] = [];
      for (let i = 0; i < payload; i++) out.push(readValue(r, depth + 1));
      return out;
    }
    default: {
      // T_MAP: every entry takes at least two bytes (key length, value).
      checkDepth(start, depth);
      need(r, payload * 2, start, `map of ${payload} entries`);
      const out: CalldataMap = new Map();
      let prevStart = -1;
      let prevLength = 0;
      for (let i = 0; i < payload; i++) {
        const keyAt = r.pos;
        const len = readUleb(r, false);
        if (typeof len === 'bigint' || len > MAX_LENGTH) {
          throw reject(keyAt, 'length over 32 bits', `map key length ${len} exceeds 2^32-1`);
        }
        need(r, len, keyAt, 'map key');
        if (prevStart >= 0) {
          const c = compareRanges(bytes, prevStart, prevLength, r.pos, len);
          if (c === 0) throw reject(keyAt, 'map keys not strictly ascending', 'duplicate key');
          if (c > 0) throw reject(keyAt, 'map keys not strictly ascending', 'key sorts before the previous key');
        }
        prevStart = r.pos;
        prevLength = len;
        r.count(keyAt);
        const key = readUtf8(r, len);
        out.set(key, readValue(r, depth + 1));
      }
      return out;
    }
  }
}

function checkDepth(start: number, depth: number): void {
  if (depth >= MAX_CALLDATA_DEPTH) {
    throw reject(start, 'nesting too deep', `more than ${MAX_CALLDATA_DEPTH} nested containers`);
  }
}

function need(r: Reader, n: number, start: number, what: string): void {
  const left = r.bytes.length - r.pos;
  if (n > left) throw reject(start, 'truncated input', `${what} needs ${n} more byte(s), ${left} left`);
}

/**
 * ULEB128 as a number when it has at most 7 bytes (< 2^49), else as a bigint. Rejects a final group of
 * zero after the first byte: that is a non-minimal ("padded") encoding of a shorter value.
 */
function readUleb(r: Reader, valueHeader = true): number | bigint {
  const bytes = r.bytes;
  const start = r.pos;
  const end = bytes.length;
  let value = 0;
  let scale = 1;
  for (let i = start; i < end && i - start < 7; i++) {
    const b = bytes[i]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      if (b === 0 && i > start) throw reject(start, 'non-minimal ULEB128', 'the most significant group is zero');
      r.pos = i + 1;
      return value;
    }
    scale *= 128;
  }
  return readLongUleb(r, valueHeader);
}

/** The rare long ULEB (big integers): find its end, then build the bigint from hex in linear time. */
function readLongUleb(r: Reader, valueHeader: boolean): bigint {
  const bytes = r.bytes;
  const start = r.pos;
  let last = start;
  while (last < bytes.length && bytes[last]! >= 0x80) last++;
  if (last >= bytes.length) throw reject(start, 'truncated input', 'ULEB128 runs past the end');
  if (bytes[last] === 0) throw reject(start, 'non-minimal ULEB128', 'the most significant group is zero');
  // Only an integer may need more than 7 bytes (any length this long is over 32 bits): refuse before building
  // a bigint of the whole run. In a value's header the low 3 bits of the first byte are the type.
  const type = valueHeader ? bytes[start]! & 7 : -1;
  if (type === T_ATOM) throw reject(start, 'unknown atom', 'atom >= 2^46 (known: 0 null, 1 false, 2 true, 3 address)');
  if (type === 7) throw reject(start, 'reserved type 7', 'type 7 is reserved');
  if (type !== T_UINT && type !== T_NINT) {
    throw reject(start, 'length over 32 bits', `a ${last + 1 - start}-byte header for a length exceeds 2^32-1`);
  }
  if (last + 1 - start > r.limits.maxIntegerBytes) {
    throw reject(start, 'integer too large', `${last + 1 - start}-byte ULEB128; at most ${r.limits.maxIntegerBytes} here`);
  }
  const digits: string[] = [];
  let acc = 0;
  let bits = 0;
  for (let i = start; i <= last; i++) {
    acc |= (bytes[i]! & 0x7f) << bits;
    bits += 7;
    while (bits >= 4) {
      digits.push(HEX[acc & 0xf]!);
      acc >>>= 4;
      bits -= 4;
    }
  }
  if (bits > 0) digits.push(HEX[acc]!);
  r.pos = last + 1;
  try {
    return BigInt('0x' + digits.reverse().join(''));
  } catch {
    throw reject(start, 'integer too large', `${last + 1 - start}-byte ULEB128 exceeds this runtime's BigInt limit`);
  }
}
const HEX = '0123456789abcdef';

function readUtf8(r: Reader, len: number): string {
  const bytes = r.bytes;
  const start = r.pos;
  // Short ASCII (typical map keys) is cheaper to build in JS than to hand to TextDecoder.
  if (len <= 32) {
    let s = '';
    let i = start;
    for (; i < start + len; i++) {
      const b = bytes[i]!;
      if (b >= 0x80) break;
      s += String.fromCharCode(b);
    }
    if (i === start + len) {
      r.pos = i;
      return s;
    }
  }
  try {
    const s = utf8Decoder.decode(bytes.subarray(start, start + len));
    r.pos = start + len;
    return s;
  } catch {
    throw reject(start, 'invalid UTF-8', `${len}-byte string is not valid UTF-8`);
  }
}

function compareRanges(bytes: Uint8Array, a: number, aLen: number, b: number, bLen: number): number {
  const n = Math.min(aLen, bLen);
  for (let i = 0; i < n; i++) {
    const d = bytes[a + i]! - bytes[b + i]!;
    if (d !== 0) return d;
  }
  return aLen - bLen;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers for tools and tests

/**
 * A JSON-friendly rendering for CLIs and logs; lossy, for display only (there is no inverse):
 * integers become numbers when safe, else decimal strings; byte strings become `{"$bytes": "<lower hex>"}`;
 * addresses `{"$address": "0x<40 hex>"}`; maps plain objects (null prototype) with their keys in order.
 */
export function calldataToJson(v: CalldataInput): unknown {
  switch (typeof v) {
    case 'bigint':
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    case 'number':
    case 'string':
    case 'boolean':
      return v;
  }
  if (v === null) return null;
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.length).toString('hex') };
  if (v instanceof Address) return { $address: v.toHex() };
  if (Array.isArray(v)) return v.map((x: CalldataInput) => calldataToJson(x));
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [k, x] of entriesOf(v as CalldataMapInput)) out[k] = calldataToJson(x);
  return out;
}

/**
 * True when both values have the same canonical encoding: integers compare by value (number or bigint),
 * maps (Map or plain object) by their key sets regardless of insertion order, bytes and addresses by content
 * (a byte string never equals an address).
 */
export function calldataEquals(a: CalldataInput, b: CalldataInput): boolean {
  if (a === b) return true;
  if ((typeof a === 'bigint' || typeof a === 'number') && (typeof b === 'bigint' || typeof b === 'number')) {
    if (typeof a === 'number' && !Number.isSafeInteger(a)) return false;
    if (typeof b === 'number' && !Number.isSafeInteger(b)) return false;
    return BigInt(a) === BigInt(b);
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && bytesEqual(a, b);
  }
  if (a instanceof Address || b instanceof Address) {
    return a instanceof Address && b instanceof Address && a.equals(b);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!calldataEquals(a[i] as CalldataInput, b[i] as CalldataInput)) return false;
    return true;
  }
  if (!isMapInput(a) || !isMapInput(b)) return false;
  const ma = toMap(a);
  const mb = toMap(b);
  if (ma.size !== mb.size) return false;
  for (const [k, x] of ma) {
    if (!mb.has(k) || !calldataEquals(x, mb.get(k)!)) return false;
  }
  return true;
}

type CalldataMapInput = ReadonlyMap<string, CalldataInput> | { readonly [key: string]: CalldataInput };

function isMapInput(v: object): v is CalldataMapInput {
  if (v instanceof Map) return true;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function entriesOf(m: CalldataMapInput): Iterable<[string, CalldataInput]> {
  return m instanceof Map ? (m as ReadonlyMap<string, CalldataInput>).entries() : Object.entries(m);
}

function toMap(m: CalldataMapInput): ReadonlyMap<string, CalldataInput> {
  return m instanceof Map ? (m as ReadonlyMap<string, CalldataInput>) : new Map(Object.entries(m));
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') {
    const ctor = (v as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof ctor === 'string' ? `a ${ctor}` : 'an object';
  }
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v === 'string' ? 'a string' : String(typeof v);
}
