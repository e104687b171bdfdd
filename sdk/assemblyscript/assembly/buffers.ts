// Buffer descriptors: the host reads every byte range through a 16-byte {ptr u64, len u64}
// descriptor (little-endian, no alignment required), so the SDK builds them here.

/** Size in bytes of a buffer descriptor. */
export const DESCRIPTOR_SIZE: usize = 16;

/** Allocates a 16-byte descriptor pointing at `len` bytes at `ptr` and returns its address. */
export function descriptor(ptr: usize, len: usize): usize {
  // The stub runtime never frees; a call is short-lived and its instance is discarded afterwards.
  const d = heap.alloc(DESCRIPTOR_SIZE);
  store<u64>(d, <u64>ptr);
  store<u64>(d, <u64>len, 8);
  return d;
}

/** Descriptor over the bytes of a Uint8Array (read-only or writable: the host sees the same memory). */
export function bytesDescriptor(bytes: Uint8Array): usize {
  return descriptor(bytes.dataStart, <usize>bytes.byteLength);
}

/** Descriptor over the UTF-8 encoding of a string. */
export function stringDescriptor(s: string): usize {
  return bytesDescriptor(utf8(s));
}

/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s, false));
}

/** Decodes UTF-8 bytes into a string. */
export function fromUtf8(bytes: Uint8Array): string {
  return String.UTF8.decodeUnsafe(bytes.dataStart, <usize>bytes.byteLength, false);
}

/** Bytes of a `string` (UTF-8), `Uint8Array` (as is) or `ArrayBuffer` (as is); anything else is a compile error. */
// @ts-ignore: decorator
@inline
export function toBytes<T>(value: T): Uint8Array {
  if (isString<T>()) {
    return utf8(changetype<string>(value));
  } else if (value instanceof Uint8Array) {
    return changetype<Uint8Array>(value);
  } else if (value instanceof ArrayBuffer) {
    return Uint8Array.wrap(changetype<ArrayBuffer>(value));
  } else {
    ERROR("expected string, Uint8Array or ArrayBuffer");
    return new Uint8Array(0);
  }
}

/** Descriptor over `toBytes(value)`. */
// @ts-ignore: decorator
@inline
export function valueDescriptor<T>(value: T): usize {
  return bytesDescriptor(toBytes<T>(value));
}

/** Concatenates byte arrays. */
export function concatBytes(parts: Array<Uint8Array>): Uint8Array {
  let total = 0;
  for (let i = 0; i < parts.length; i++) total += parts[i].length;
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    out.set(parts[i], at);
    at += parts[i].length;
  }
  return out;
}

/** Byte-wise equality. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): bool {
  if (a.length != b.length) return false;
  return memory.compare(a.dataStart, b.dataStart, <usize>a.length) == 0;
}

/** Lower-case hex of some bytes (ids in JSON outputs). */
export function toHex(bytes: Uint8Array): string {
  const digits = "0123456789abcdef";
  const parts = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    parts[i] = digits.charAt(b >> 4) + digits.charAt(b & 15);
  }
  return parts.join("");
}

function hexNibble(c: i32): i32 {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses hex (either case); null when the text is not an even-length hex string. */
export function fromHex(s: string): Uint8Array | null {
  if (s.length & 1) return null;
  const out = new Uint8Array(s.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const hi = hexNibble(s.charCodeAt(2 * i));
    const lo = hexNibble(s.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return null;
    out[i] = <u8>((hi << 4) | lo);
  }
  return out;
}
