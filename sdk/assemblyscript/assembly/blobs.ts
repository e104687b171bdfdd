// Blobs as streams. A blob id is SHA-256 over the SHA-256 of each 1 MiB chunk, not the content hash.
import { blob_create, blob_write, blob_close, blob_open, blob_read, blob_announce_to_context } from "./env";
import { bytesDescriptor, descriptor, toBytes, concatBytes } from "./buffers";

/** Largest piece the SDK hands to one blob_write. */
const MAX_WRITE: usize = 1 << 20;

/** Writes a new blob: `BlobWriter.create().write(a).write(b).close()` returns its 32-byte id. */
export class BlobWriter {
  private closed: bool = false;
  private written: u64 = 0;
  private constructor(public readonly fd: u64) {}

  static create(): BlobWriter {
    return new BlobWriter(blob_create());
  }

  /** Bytes written so far. */
  get size(): u64 {
    return this.written;
  }

  /** Appends data (string as UTF-8, or bytes). Keeps writing until the host has accepted all of it. */
  write<T>(data: T): BlobWriter {
    if (this.closed) throw new Error("BlobWriter: write after close");
    const bytes = toBytes<T>(data);
    let at: usize = 0;
    const len = <usize>bytes.byteLength;
    while (at < len) {
      // One blob_write takes at most max_blob_chunk_size (10 MiB by default): pass at most 1 MiB at a time.
      const piece = min(len - at, MAX_WRITE);
      const n = <usize>blob_write(this.fd, descriptor(bytes.dataStart + at, piece));
      // A host that accepts nothing would otherwise make this loop forever.
      if (n == 0 || n > piece) throw new Error("BlobWriter: host accepted " + n.toString() + " bytes");
      at += n;
    }
    this.written += <u64>len;
    return this;
  }

  /** Stores the blob and returns its 32-byte id. */
  close(): Uint8Array {
    if (this.closed) throw new Error("BlobWriter: closed twice");
    this.closed = true;
    const id = new Uint8Array(32);
    if (blob_close(this.fd, bytesDescriptor(id)) != 1) throw new Error("BlobWriter: blob_close failed");
    return id;
  }
}

/** Reads an existing blob: `BlobReader.open(id)` then `read(buf)` until it returns 0. */
export class BlobReader {
  private constructor(public readonly fd: u64, public readonly id: Uint8Array) {}

  /** Opens a blob by id (the host does not check that it exists: a missing blob reads as empty). */
  static open(id: Uint8Array): BlobReader {
    return new BlobReader(blob_open(bytesDescriptor(id)), id);
  }

  /** Fills up to `buf.length` bytes; returns how many were read, 0 at the end. */
  read(buf: Uint8Array): i32 {
    return <i32>blob_read(this.fd, bytesDescriptor(buf));
  }

  /** Reads the rest of the blob in chunks of `chunkSize` bytes. */
  readAll(chunkSize: i32 = 65536): Uint8Array {
    const parts = new Array<Uint8Array>();
    while (true) {
      const buf = new Uint8Array(chunkSize);
      const n = this.read(buf);
      if (n <= 0) break;
      parts.push(n == chunkSize ? buf : buf.slice(0, n));
    }
    return concatBytes(parts);
  }

  /** Releases the descriptor; returns the blob id it was opened with. */
  close(): Uint8Array {
    const id = new Uint8Array(32);
    blob_close(this.fd, bytesDescriptor(id));
    return id;
  }
}

/** Announces a blob to a context (both 32-byte ids); false when the blob does not exist. */
export function announceBlob(blobId: Uint8Array, contextId: Uint8Array): bool {
  return blob_announce_to_context(bytesDescriptor(blobId), bytesDescriptor(contextId)) == 1;
}
