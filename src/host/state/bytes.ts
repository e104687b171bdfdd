/** Byte-array helpers shared by the stores and the Merkle tree. */

/** A plain Uint8Array view of the same bytes (Buffer subclasses compare unequal in deepStrictEqual). */
export function plain(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Short-lived byte views carved from shared 64 KiB chunks. A typed array over 64 bytes is allocated outside V8's
 * heap (a malloc and external-memory accounting each, ~1.5 us here), which costs more than hashing or encoding a
 * tree record; views of a chunk cost a heap object. A chunk is never reused: it is dropped once full and freed
 * once nothing refers to it, so a view stays valid as long as its holder keeps it.
 */
export class ScratchChunks {
  private chunk: Uint8Array;
  private used = 0;

  constructor(private readonly chunkBytes = 64 * 1024) {
    this.chunk = new Uint8Array(chunkBytes);
  }

  /** A fresh zero-filled view of `n` bytes (n <= the chunk size). */
  take(n: number): Uint8Array {
    if (this.used + n > this.chunkBytes) {
      this.chunk = new Uint8Array(this.chunkBytes);
      this.used = 0;
    }
    const view = this.chunk.subarray(this.used, this.used + n);
    this.used += n;
    return view;
  }
}
