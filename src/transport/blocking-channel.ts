/**
 * Framing over a blocking byte stream, shared by the native and the pure-JS channels so both behave the
 * same way on every edge: EOF mid-frame, oversized lengths, stray bytes, errno mapping, poisoning.
 */
import { HostlinkError } from '../errors.js';
import { FRAME_HEADER_BYTES, frameTooLarge } from '../protocol/frame.js';
import { type HostChannel, type HostChannelKind, channelUnusableError, hostClosedError } from './channel.js';

/** A connected socket that blocks in read/write. Errors are Node-style: an Error with an errno `code`. */
export interface BlockingStream {
  /** Writes every byte of bytes[offset, offset+length) or throws. */
  write(bytes: Uint8Array, offset: number, length: number): void;
  /** Reads into buf[offset, offset+length); blocks until at least `min` bytes arrived; fewer only at EOF. */
  read(buf: Uint8Array, offset: number, length: number, min: number): number;
  close(): void;
}

/** Requests and responses up to this size go through one reusable buffer: one write and usually one read. */
const SCRATCH_BYTES = 64 * 1024;
const MAX_U32 = 0xffff_ffff;

/** errno codes that mean the peer is gone rather than that we misused the socket. */
const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ENOTCONN', 'ECONNABORTED', 'ESHUTDOWN', 'EHOSTUNREACH', 'ENETUNREACH']);

export class BlockingFrameChannel implements HostChannel {
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private closed = false;
  private failure: Error | undefined;
  /** Bytes of the next response already read (a pair's second answer arriving with the first), at scratch[0..). */
  private carried = 0;

  constructor(
    readonly kind: HostChannelKind,
    private readonly stream: BlockingStream,
    private readonly maxFrameBytes: number,
    /** What a timeout error should say (the stream enforces it); undefined when the stream has none. */
    private readonly timeoutMs?: number,
  ) {}

  request(body: Uint8Array): Uint8Array {
    return this.exchange(() => {
      this.send(body);
      return this.receive(false);
    });
  }

  requestPair(first: Uint8Array, second: Uint8Array, checkFirst?: (response: Uint8Array) => void): [Uint8Array, Uint8Array] {
    return this.exchange(() => {
      this.sendPair(first, second);
      const answer = this.receive(true);
      checkFirst?.(answer);
      return [answer, this.receive(false)];
    });
  }

  /** Runs one exchange; any failure closes the channel for good (the two sides may disagree on the stream). */
  private exchange<T>(run: () => T): T {
    if (this.closed) throw channelUnusableError(this.failure);
    try {
      return run();
    } catch (err) {
      const e = this.translate(err);
      this.failure = e;
      this.close();
      throw e;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.close();
  }

  private send(body: Uint8Array): void {
    if (body.length > MAX_U32) throw new HostlinkError('usage', `request of ${body.length} bytes does not fit a frame`);
    const s = this.scratch;
    if (FRAME_HEADER_BYTES + body.length <= s.length) {
      // One write, so a small request is one TCP segment (TCP_NODELAY is set).
      s.writeUInt32LE(body.length, 0);
      s.set(body, FRAME_HEADER_BYTES);
      this.stream.write(s, 0, FRAME_HEADER_BYTES + body.length); // offsets, not subarray(): ~0.1 us per call
    } else {
      s.writeUInt32LE(body.length, 0);
      this.stream.write(s, 0, FRAME_HEADER_BYTES);
      this.stream.write(body, 0, body.length);
    }
  }

  /** Both frames in one write when they fit the scratch buffer: one segment, one wake-up of the host. */
  private sendPair(first: Uint8Array, second: Uint8Array): void {
    const s = this.scratch;
    const end = 2 * FRAME_HEADER_BYTES + first.length + second.length;
    if (end > s.length) {
      this.send(first);
      this.send(second);
      return;
    }
    s.writeUInt32LE(first.length, 0);
    s.set(first, FRAME_HEADER_BYTES);
    const at = FRAME_HEADER_BYTES + first.length;
    s.writeUInt32LE(second.length, at);
    s.set(second, at + FRAME_HEADER_BYTES);
    this.stream.write(s, 0, end);
  }

  /**
   * Reads one response frame. `another`: a second response follows (a pair), so bytes read beyond this frame
   * are its start, kept at the front of the scratch buffer for the next call; otherwise they are an error.
   */
  private receive(another: boolean): Buffer {
    const s = this.scratch;
    let got = this.carried;
    this.carried = 0;
    if (got < FRAME_HEADER_BYTES) {
      got += this.stream.read(s, got, s.length - got, FRAME_HEADER_BYTES - got);
      if (got === 0) throw hostClosedError();
      if (got < FRAME_HEADER_BYTES) throw hostClosedError(`in the middle of a frame header: got ${got} of 4 bytes`);
    }
    const length = s.readUInt32LE(0);
    // Checked before allocating: a corrupt or hostile length must not make us allocate gigabytes.
    if (length > this.maxFrameBytes) throw frameTooLarge(length, this.maxFrameBytes);
    const total = FRAME_HEADER_BYTES + length;
    if (got > total && !another) {
      // The host answers exactly one frame per request; more means the two sides disagree on the stream.
      throw new HostlinkError('protocol', `the host sent ${got - total} bytes beyond the ${length}-byte response frame`);
    }
    const out = Buffer.allocUnsafe(length);
    if (total <= s.length) {
      if (got < total) got += this.readRest(s, got, total - got, length);
      s.copy(out, 0, FRAME_HEADER_BYTES, total);
      if (got > total) {
        s.copyWithin(0, total, got);
        this.carried = got - total;
      }
    } else {
      // Larger than the scratch buffer: `got` <= its size < total, so nothing beyond this frame was read.
      s.copy(out, 0, FRAME_HEADER_BYTES, got);
      const have = got - FRAME_HEADER_BYTES;
      this.readRest(out, have, length - have, length);
    }
    return out;
  }

  private readRest(buf: Uint8Array, offset: number, n: number, frameLength: number): number {
    const got = this.stream.read(buf, offset, n, n);
    if (got < n) {
      const have = frameLength - (n - got);
      throw hostClosedError(`in the middle of a frame: got ${have} of ${frameLength} body bytes`);
    }
    return got;
  }

  private translate(err: unknown): HostlinkError {
    if (err instanceof HostlinkError) return err;
    const code = (err as { code?: unknown } | null)?.code;
    const message = err instanceof Error ? err.message : String(err);
    if (code === 'ETIMEDOUT') {
      return new HostlinkError('timeout', `the host did not answer within ${this.timeoutMs ?? '?'} ms`, { cause: err });
    }
    if (typeof code === 'string' && PEER_GONE.has(code)) return hostClosedError(code, err);
    return new HostlinkError('channel_closed', `I/O error on the host connection: ${message}`, { cause: err });
  }
}

/** Turns a connect failure into the message an operator needs. */
export function connectError(where: string, err: unknown): HostlinkError {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const hint =
    code === 'ENOENT' ? ' (no socket at that path: is the host running?)'
    : code === 'ECONNREFUSED' ? ' (nothing is listening there: is the host running?)'
    : '';
  return new HostlinkError('channel_closed', `could not connect to host at ${where}: ${message}${hint}`, { cause: err });
}
