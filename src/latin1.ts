/**
 * Bytes as a latin1 string, one character per byte: a Map key compared by value that sorts like the bytes.
 *
 * Why not always `Buffer.from(b.buffer, ...)`: V8 keeps a typed array of at most 64 bytes inside its heap, and
 * the first read of its `.buffer` moves the bytes out into a buffer of their own (a malloc, a copy and an
 * ArrayBuffer with its external-memory bookkeeping). Keys are mostly that short and fresh on every call, so a
 * short array is read element by element instead.
 */

/** Typed arrays up to this many bytes may live in V8's heap (its typed_array_max_size_in_heap default). */
export const HEAP_TYPED_ARRAY_MAX = 64;

export function latin1(bytes: Uint8Array): string {
  if (bytes.length <= HEAP_TYPED_ARRAY_MAX) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}
