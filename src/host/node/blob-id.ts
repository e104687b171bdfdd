/**
 * Blob ids, as the reference defines them: the content is cut into 1 MiB chunks, each chunk is hashed with
 * SHA-256, and the id is SHA-256 of the chunk hashes concatenated. The id is therefore not the content hash,
 * and the empty blob's id is SHA-256 of nothing (e3b0c442...b855). Equal content has equal ids however it
 * was written, because the chunking depends only on the content.
 */
import { createHash, type Hash } from 'node:crypto';

export const BLOB_CHUNK_BYTES = 1024 * 1024;

/** Computes a blob id incrementally, from pieces of any size. */
export class BlobHasher {
  private chunk: Hash = createHash('sha256');
  private inChunk = 0;
  private readonly chunkIds: Buffer[] = [];
  size = 0n;

  update(bytes: Uint8Array): void {
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(BLOB_CHUNK_BYTES - this.inChunk, bytes.length - at);
      this.chunk.update(bytes.subarray(at, at + n));
      this.inChunk += n;
      at += n;
      if (this.inChunk === BLOB_CHUNK_BYTES) this.endChunk();
    }
    this.size += BigInt(bytes.length);
  }

  private endChunk(): void {
    this.chunkIds.push(this.chunk.digest());
    this.chunk = createHash('sha256');
    this.inChunk = 0;
  }

  /** The blob id; the hasher cannot be used afterwards. */
  digest(): Uint8Array {
    if (this.inChunk > 0) this.endChunk();
    const h = createHash('sha256');
    for (const id of this.chunkIds) h.update(id);
    return Uint8Array.from(h.digest());
  }
}

export function blobIdOf(content: Uint8Array): Uint8Array {
  const h = new BlobHasher();
  h.update(content);
  return h.digest();
}
