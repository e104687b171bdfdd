/**
 * The blob descriptors of one execution. Descriptors are numbered from 1 and never reused within the
 * execution; write and read descriptors share the counter and the max_blob_handles budget of open ones.
 * A write descriptor buffers what the guest wrote until a full protocol frame (BLOB_FRAME_BYTES) is ready, so
 * small writes cost no round trip and a large one is streamed frame by frame.
 */
import { BLOB_FRAME_BYTES } from '../protocol/node-limits.js';

export interface WriteHandle {
  kind: 'write';
  pending: Uint8Array[];
  pendingBytes: number;
}

export interface ReadHandle {
  kind: 'read';
  blobId: Uint8Array;
  /** Next byte to read. */
  offset: bigint;
}

export type BlobHandle = WriteHandle | ReadHandle;

export class BlobHandles {
  private next = 1n;
  private readonly open = new Map<bigint, BlobHandle>();

  get openCount(): number {
    return this.open.size;
  }

  add(handle: BlobHandle): bigint {
    const fd = this.next++;
    this.open.set(fd, handle);
    return fd;
  }

  get(fd: bigint): BlobHandle | undefined {
    return this.open.get(fd);
  }

  remove(fd: bigint): void {
    this.open.delete(fd);
  }
}

/** Appends to a write handle's buffer and returns every full frame now ready to send, in order. */
export function takeFullFrames(h: WriteHandle, data: Uint8Array): Uint8Array[] {
  if (data.length > 0) {
    h.pending.push(data);
    h.pendingBytes += data.length;
  }
  const frames: Uint8Array[] = [];
  while (h.pendingBytes >= BLOB_FRAME_BYTES) frames.push(take(h, BLOB_FRAME_BYTES));
  return frames;
}

/** Everything still buffered (less than one frame). */
export function takeRest(h: WriteHandle): Uint8Array {
  return take(h, h.pendingBytes);
}

function take(h: WriteHandle, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let at = 0;
  while (at < n) {
    const head = h.pending[0]!;
    const k = Math.min(head.length, n - at);
    out.set(head.subarray(0, k), at);
    at += k;
    if (k === head.length) h.pending.shift();
    else h.pending[0] = head.subarray(k);
  }
  h.pendingBytes -= n;
  return out;
}
