/**
 * Framing: every message on the wire is `u32 little-endian length` followed by that many bytes of body.
 * A length above the receiver's maximum is a protocol error, detected before anything is allocated.
 */
import { HostlinkError } from '../errors.js';
import { MAX_FRAME_BYTES } from './generated.js';

export const FRAME_HEADER_BYTES = 4;

/** Prefixes a body with its u32 LE length. */
export function encodeFrame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  out.writeUInt32LE(body.length, 0);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}

/** Several frames in one buffer, in order: what one write hands the kernel. */
export function encodeFrames(bodies: readonly Uint8Array[]): Buffer {
  if (bodies.length === 1) return encodeFrame(bodies[0]!);
  let total = 0;
  for (const b of bodies) total += FRAME_HEADER_BYTES + b.length;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const b of bodies) {
    out.writeUInt32LE(b.length, at);
    out.set(b, at + FRAME_HEADER_BYTES);
    at += FRAME_HEADER_BYTES + b.length;
  }
  return out;
}

export function frameTooLarge(length: number, max: number): HostlinkError {
  return new HostlinkError('protocol', `frame of ${length} bytes exceeds the maximum of ${max} bytes`);
}

/**
 * Incremental decoder for a byte stream: push chunks as they arrive, get complete frame bodies back.
 * Used by the host, whose sockets deliver data in arbitrary pieces.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes: number = MAX_FRAME_BYTES) {}

  /** Bytes received but not yet part of a complete frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Adds a chunk; returns every frame body it completes. Throws HostlinkError('protocol') on an oversized length. */
  push(chunk: Uint8Array): Buffer[] {
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.buffered += chunk.byteLength;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffered < FRAME_HEADER_BYTES) break;
      const head = this.peek(FRAME_HEADER_BYTES);
      const length = head.readUInt32LE(0);
      if (length > this.maxFrameBytes) throw frameTooLarge(length, this.maxFrameBytes);
      if (this.buffered < FRAME_HEADER_BYTES + length) break;
      const all = this.take(FRAME_HEADER_BYTES + length);
      frames.push(all.subarray(FRAME_HEADER_BYTES));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  private take(n: number): Buffer {
    const joined = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const taken = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return taken;
  }
}
