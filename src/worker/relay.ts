/**
 * The worker → node direction of a slot after the preamble: the VM's bytes wrapped in relay frames, then the
 * VM's exit status. Framing is what makes the status unforgeable: everything the VM writes travels as the
 * payload of DATA frames whose length the worker sets, so no byte sequence a VM writes can end its DATA or look
 * like an EXIT frame. The node → worker direction needs no framing (the node alone writes it) and stays raw.
 *
 *   frame:  type u8 | payload length u32 BE | payload
 *   DATA (0): payload = bytes the VM wrote, as they came (at most MAX_RELAY_PAYLOAD per frame)
 *   EXIT (1): payload = exit code i16 BE (-1: none) | signal length u8 | signal (ASCII, e.g. SIGKILL) |
 *             stderr length u16 BE | the last line the VM wrote to stderr (UTF-8, at most MAX_EXIT_STDERR bytes)
 *
 * EXIT is the last frame: the worker sends it once the VM's connection closed and its process was reaped, then
 * ends the connection. A slot that ends without EXIT is a worker that went away (killed, network gone); the node
 * then knows only that the slot closed. An unknown type, an oversized frame, or bytes after EXIT make the node
 * drop the slot (a broken or hostile worker), never parse further.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { VmExit } from '../host/launcher.js';

export const RELAY_DATA = 0;
export const RELAY_EXIT = 1;
const FRAME_HEAD = 5;
/** The most one DATA frame carries (a socket read is at most 64 KiB; the worker splits anything longer). */
export const MAX_RELAY_PAYLOAD = 1 << 20;
export const MAX_EXIT_STDERR = 1024;
const MAX_SIGNAL_NAME = 32;

export interface RelayExit extends VmExit {
  /** The last non-empty line the VM wrote to stderr ('' if none). */
  stderr: string;
}

/**
 * DATA frames for one chunk the VM wrote, each head and payload in one buffer: one write, so one TLS record,
 * per chunk (a separate 5-byte write would cost a record and often a packet of its own).
 */
export function encodeData(chunk: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < chunk.length; at += MAX_RELAY_PAYLOAD) {
    const part = chunk.subarray(at, at + MAX_RELAY_PAYLOAD);
    const frame = Buffer.allocUnsafe(FRAME_HEAD + part.length);
    frame.writeUInt8(RELAY_DATA, 0);
    frame.writeUInt32BE(part.length, 1);
    part.copy(frame, FRAME_HEAD);
    out.push(frame);
  }
  return out;
}

/** The last non-empty line of a stderr tail, cut to MAX_EXIT_STDERR bytes on a character boundary. */
export function lastStderrLine(tail: string): string {
  const line = tail.trim().split('\n').pop()?.trim() ?? '';
  let bytes = Buffer.from(line, 'utf8');
  if (bytes.length <= MAX_EXIT_STDERR) return line;
  bytes = bytes.subarray(0, MAX_EXIT_STDERR);
  return bytes.toString('utf8').replace(/\uFFFD+$/, '');
}

export function encodeExit(exit: RelayExit): Buffer {
  const signal = Buffer.from((exit.signal ?? '').slice(0, MAX_SIGNAL_NAME), 'ascii');
  const stderr = Buffer.from(lastStderrLine(exit.stderr), 'utf8');
  const payload = Buffer.alloc(2 + 1 + signal.length + 2 + stderr.length);
  const code = exit.exitCode;
  payload.writeInt16BE(code === null || !Number.isInteger(code) || code < 0 || code > 0x7fff ? -1 : code, 0);
  payload.writeUInt8(signal.length, 2);
  signal.copy(payload, 3);
  payload.writeUInt16BE(stderr.length, 3 + signal.length);
  stderr.copy(payload, 5 + signal.length);
  const head = Buffer.alloc(FRAME_HEAD);
  head.writeUInt8(RELAY_EXIT, 0);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

function decodeExit(p: Buffer): RelayExit | string {
  if (p.length < 3) return 'short EXIT frame';
  const code = p.readInt16BE(0);
  const sl = p.readUInt8(2);
  if (sl > MAX_SIGNAL_NAME || p.length < 3 + sl + 2) return 'malformed EXIT frame';
  const signal = p.subarray(3, 3 + sl).toString('ascii');
  if (sl > 0 && !/^SIG[A-Z0-9]+$/.test(signal)) return 'malformed signal name in EXIT frame';
  const el = p.readUInt16BE(3 + sl);
  if (el > MAX_EXIT_STDERR || p.length !== 5 + sl + el) return 'malformed EXIT frame';
  return { exitCode: code < 0 ? null : code, signal: sl > 0 ? signal : null, stderr: p.subarray(5 + sl).toString('utf8') };
}

/**
 * The node's end of a slot: a Duplex that reads the VM's bytes out of DATA frames and writes raw to the worker.
 * It stands where the executor expects the VM's socket (proveConnection, serveSession), so it offers the few
 * socket methods they use. `exit` resolves when the slot's connection is gone: with the EXIT frame's status, or
 * null when the worker never sent one.
 */
const EMPTY = Buffer.alloc(0);

export class RelayStream extends Duplex {
  readonly exit: Promise<RelayExit | null>;
  /** Why the node dropped the slot, when the worker broke the framing. */
  broken: string | undefined;
  /** A frame's head, or an EXIT frame, still arriving. */
  private held: Buffer = EMPTY;
  /** Bytes of the current DATA frame's payload still to come. */
  private dataLeft = 0;
  private trailer: RelayExit | null = null;

  constructor(private readonly socket: Socket) {
    super({ allowHalfOpen: false });
    this.exit = new Promise((resolve) => socket.once('close', () => resolve(this.trailer)));
    socket.on('data', (chunk: Buffer) => this.takeBytes(chunk));
    socket.once('end', () => this.push(null));
    socket.once('close', () => {
      // Whatever DATA came is handed on before the stream closes (a paused reader still gets it).
      if (this.readableEnded || this.destroyed) this.destroy();
      else {
        this.push(null);
        this.once('end', () => this.destroy());
        // A reader that never drains must not keep the slot half-alive.
        setTimeout(() => this.destroy(), 1000).unref();
      }
    });
    socket.on('error', () => undefined);
  }

  private takeBytes(chunk: Buffer): void {
    let rest = chunk;
    while (rest.length > 0 && this.broken === undefined) {
      if (this.trailer !== null) return this.fail('bytes after the EXIT frame');
      // A DATA frame's payload is handed on as it arrives, never gathered: gathered, a 1 MiB frame sent a byte
      // per TLS record was copied whole at every byte (368 KB took 68 GB of copying and stalled the node's
      // event loop for 3.8 s).
      if (this.dataLeft > 0) {
        const part = rest.length <= this.dataLeft ? rest : rest.subarray(0, this.dataLeft);
        rest = rest.subarray(part.length);
        this.dataLeft -= part.length;
        if (!this.push(part)) this.socket.pause();
        continue;
      }
      // Only a frame's head and a whole EXIT frame (at most ~1 KiB) are held.
      this.held = this.held.length === 0 ? rest : Buffer.concat([this.held, rest]);
      rest = EMPTY;
      if (this.held.length < FRAME_HEAD) return;
      const type = this.held[0]!;
      const length = this.held.readUInt32BE(1);
      if (type !== RELAY_DATA && type !== RELAY_EXIT) return this.fail(`unknown relay frame type ${type}`);
      if (length > (type === RELAY_DATA ? MAX_RELAY_PAYLOAD : 3 + MAX_SIGNAL_NAME + 2 + MAX_EXIT_STDERR)) return this.fail('oversized relay frame');
      if (type === RELAY_DATA) {
        // A worker frames the chunks its VM's socket gives, never empty: a stream of empty frames would keep the
        // node reading (and its event loop busy) without ever filling the buffer that pauses the socket.
        if (length === 0) return this.fail('an empty DATA frame');
        this.dataLeft = length;
        rest = this.held.subarray(FRAME_HEAD);
        this.held = EMPTY;
        continue;
      }
      if (this.held.length < FRAME_HEAD + length) return;
      const exit = decodeExit(this.held.subarray(FRAME_HEAD, FRAME_HEAD + length));
      rest = this.held.subarray(FRAME_HEAD + length);
      this.held = EMPTY;
      if (typeof exit === 'string') return this.fail(exit);
      this.trailer = exit;
    }
  }

  private fail(why: string): void {
    this.broken = `the worker broke the slot framing (${why})`;
    this.trailer = null;
    this.socket.destroy();
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.socket.destroyed) return done();
    // Backpressure from the TLS socket, without waiting for each write to reach the kernel.
    if (this.socket.write(chunk)) done();
    else this.socket.once('drain', () => done());
  }

  override _final(done: (error?: Error | null) => void): void {
    this.socket.end(() => done());
  }

  override _destroy(error: Error | null, done: (error: Error | null) => void): void {
    this.socket.destroy();
    done(error);
  }

  /** The executor's socket calls; the TLS socket under it already has no-delay set. */
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  /** This stream where the executor expects the VM's socket (it uses only what a Duplex and setNoDelay give). */
  asSocket(): Socket {
    return this as unknown as Socket;
  }
}
