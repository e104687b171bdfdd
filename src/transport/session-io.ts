/**
 * How a host session reads and writes its VM's socket: through the addon native/hostlink_socket.c ('polled', the
 * default where it is built) or through libuv's stream handle ('libuv': socket-reads.ts and socket-writes.ts).
 *
 * Why the addon: a host call is a few dozen bytes each way, and on the stream handle each read and each write also
 * costs a libuv stream request with its JavaScript objects and callbacks. Polling the descriptor with `uv_poll` on
 * the same event loop and reading and writing it with one `recv` and one `send` measured about 15% less of the
 * host's CPU per request and a shorter round trip (docs/performance.md, "The host's socket, polled"). Everything
 * the session guarantees is unchanged: one request at a time, the frame limit, the pause while an answer waits
 * or the VM does not read (a write the kernel cannot take whole waits, holding its bytes, until the socket drains).
 *
 * The addon works on its own duplicate of the descriptor, which only `close()` closes, after its watcher has
 * stopped: the connection ends when both it and the net.Socket (its owner's to destroy) are closed. The net.Socket's
 * own reading is stopped before the duplicate is watched. HOSTLINK_SOCKET_IO=libuv turns the addon off.
 */
import type { Socket } from 'node:net';
import { addonStatus, nativeArtifact, type AddonStatus } from '../native-addon.js';
import { readChunks, type ReadMode } from './socket-reads.js';
import { socketWriter, type WriteMode } from './socket-writes.js';

/** 'polled': the addon; 'libuv': the stream handle. */
export type SessionIoMode = 'polled' | 'libuv';

/** A session's reads and writes on one socket. */
export interface SessionIo {
  readonly mode: SessionIoMode;
  /** True once the connection broke, ended or was closed: nothing more is read or written. */
  readonly gone: boolean;
  /** Bytes read from the socket so far, and bytes written but not yet taken by the kernel (the session's bounds). */
  readonly bytesRead: number;
  readonly bytesUnsent: number;
  /**
   * Starts reading: every read reaches `onChunk` as a fresh Buffer the caller owns, in order, never synchronously
   * inside `start`; `onGone` is called once when the connection ends, breaks or is closed by its owner.
   */
  start(onChunk: (chunk: Buffer) => void, onGone: () => void): void;
  /** Stops and resumes reading (writes go on). */
  pause(): void;
  resume(): void;
  /**
   * Writes `bytes` (the caller gives them up). True when the kernel took them all at once; false when the caller
   * must wait: `taken` is called once, when they have been sent or the connection is gone. A write that fails
   * ends the connection (`onGone` follows) and returns false without calling `taken`.
   */
  write(bytes: Uint8Array, taken: () => void): boolean;
  /** Sends `bytes` as far as the socket takes them at once, then nothing more (the peer reads end of stream). */
  end(bytes: Uint8Array): void;
  /** Stops reading and writing and lets go of the socket. The net.Socket itself stays its owner's to destroy. */
  close(): void;
}

/** The addon's exports (native/hostlink_socket.c). */
export interface SocketAddon {
  adopt(fd: number, readBuffer: ArrayBuffer, onEvent: (kind: number, n: number) => void): object;
  reading(handle: object, on: boolean): void;
  send(handle: object, bytes: Uint8Array): number;
  shutdownWrite(handle: object): number;
  counts(handle: object): [number, number];
  close(handle: object): void;
}

/** The addon's events: onEvent(kind, n). */
export const EV_DATA = 1;
export const EV_END = 2;
export const EV_ERROR = 3;
export const EV_DRAINED = 4;

/** A read of up to this many bytes at once: a request frame of up to this size arrives in one read. */
const READ_BUFFER_BYTES = 64 * 1024;

export const SOCKET_ADDON_PATH = nativeArtifact('hostlink_socket.node');

/** The socket addon, or why it cannot be used. */
export function socketAddon(): AddonStatus<SocketAddon> {
  return addonStatus<SocketAddon>(SOCKET_ADDON_PATH, 'host socket');
}

/** Which I/O new sessions use, and why not the addon when they do not. */
export function sessionIoMode(): { mode: SessionIoMode; reason?: string } {
  if (process.env['HOSTLINK_SOCKET_IO'] === 'libuv') return { mode: 'libuv', reason: 'HOSTLINK_SOCKET_IO=libuv' };
  const status = socketAddon();
  return status.addon !== undefined ? { mode: 'polled' } : { mode: 'libuv', reason: status.reason };
}

/** How serveSession reads and writes: a mode (default: sessionIoMode()), or an I/O made for its socket already. */
export interface SessionIoOptions {
  io?: SessionIoMode | SessionIo;
  /** The stream handle's read and write paths (socket-reads.ts, socket-writes.ts), when it is used. */
  readMode?: ReadMode;
  writeMode?: WriteMode;
}

interface PlainHandle {
  fd?: number;
  reading?: boolean;
  readStop?: () => number;
  constructor: { name: string };
}

/**
 * The I/O for a session on `socket`: the addon unless `io` says 'libuv', the addon is missing, or the socket is
 * not a plain unix or TCP socket with a descriptor (then the stream handle, with `readMode` and `writeMode`).
 * Call before anything else reads the socket; it may arrive paused with bytes pushed back (the gate's). An I/O
 * given in `options.io` is returned as it is.
 */
export function sessionIo(socket: Socket, options: SessionIoOptions = {}): SessionIo {
  if (typeof options.io === 'object') return options.io;
  const wanted = options.io ?? sessionIoMode().mode;
  const addon = wanted === 'polled' ? socketAddon().addon : undefined;
  const handle = (socket as unknown as { _handle?: PlainHandle | null })._handle;
  const plain = handle !== null && handle !== undefined && typeof handle.fd === 'number' && handle.fd >= 0 && ['Pipe', 'TCP'].includes(handle.constructor.name);
  if (addon === undefined || !plain || socket.destroyed || typeof handle.readStop !== 'function') return libuvIo(socket, options);
  return polledIo(addon, socket, handle as Required<PlainHandle>, options);
}

function libuvIo(socket: Socket, options: { readMode?: ReadMode; writeMode?: WriteMode }): SessionIo {
  const writer = socketWriter(socket, { mode: options.writeMode ?? 'handle' });
  return {
    mode: 'libuv',
    get gone() {
      return socket.destroyed;
    },
    get bytesRead() {
      return socket.bytesRead;
    },
    get bytesUnsent() {
      return socket.writableLength + ((socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle?.writeQueueSize ?? 0);
    },
    start(onChunk, onGone) {
      readChunks(socket, onChunk, { mode: options.readMode ?? 'user-buffer' });
      socket.on('error', onGone);
      socket.on('close', onGone);
      socket.resume();
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    write: (bytes, taken) => writer.write(bytes, taken),
    end: (bytes) => socket.end(bytes),
    close: () => undefined,
  };
}

function polledIo(addon: SocketAddon, socket: Socket, handle: Required<PlainHandle>, options: { readMode?: ReadMode; writeMode?: WriteMode }): SessionIo {
  // What the stream already holds (the hello's rest the gate pushed back) is delivered first. Then its handle must
  // not read the descriptor any more: paused, a net.Socket still reads until its buffer fills, and read() itself
  // starts the handle reading again, so it is stopped after the last read().
  const held: Buffer[] = [];
  for (let b = socket.read() as Buffer | null; b !== null; b = socket.read() as Buffer | null) held.push(b);
  handle.reading = false;
  handle.readStop();
  const input = new ArrayBuffer(READ_BUFFER_BYTES);
  let onChunk: (chunk: Buffer) => void = () => undefined;
  let onGone: () => void = () => undefined;
  let gone = false;
  let started = false;
  let paused = false;
  let waiting: (() => void) | null = null;
  const end = (): void => {
    if (gone) return;
    gone = true;
    release();
    // A write that waited is over: its caller is told, as the stream handle's completion would.
    const taken = waiting;
    waiting = null;
    taken?.();
    onGone();
  };
  const onEvent = (kind: number, n: number): void => {
    if (gone) return;
    if (kind === EV_DATA) onChunk(Buffer.from(Buffer.from(input, 0, n)));
    else if (kind === EV_DRAINED) {
      const taken = waiting;
      waiting = null;
      taken?.();
    } else if (kind === EV_END || kind === EV_ERROR) end();
  };
  let watched: object;
  try {
    watched = addon.adopt(handle.fd, input, onEvent);
  } catch {
    // No duplicate descriptor (the process at its descriptor limit) or no watcher: the stream handle serves it.
    for (let i = held.length - 1; i >= 0; i--) socket.unshift(held[i]!);
    return libuvIo(socket, options);
  }
  addon.reading(watched, false); // until start()
  // What was read and held before the addon took over counts as read, as socket.bytesRead would count it.
  const readBefore = socket.bytesRead;
  let final: [number, number] | null = null;
  const counts = (): [number, number] => final ?? addon.counts(watched);
  const release = (): void => {
    final = [counts()[0], 0];
    addon.close(watched);
  };
  return {
    mode: 'polled',
    get gone() {
      return gone;
    },
    get bytesRead() {
      return readBefore + counts()[0];
    },
    get bytesUnsent() {
      return counts()[1];
    },
    start(chunk, goneCallback) {
      onChunk = chunk;
      onGone = goneCallback;
      // Its owner may destroy the net.Socket (a stopped VM, a closing host): then this ends too. The stream handle
      // neither reads nor writes any more, so it should report no error; one would end this, not the process.
      socket.on('error', end);
      socket.on('close', end);
      // As 'data' events would be: after the caller has finished setting up, and the held bytes before any new
      // read (the addon's events come from the event loop, after the tick queue).
      process.nextTick(() => {
        if (gone) return;
        started = true;
        for (const b of held.splice(0)) {
          if (gone) return;
          onChunk(b);
        }
        if (!gone && !paused) addon.reading(watched, true);
      });
    },
    pause() {
      paused = true;
      if (!gone) addon.reading(watched, false);
    },
    resume() {
      paused = false;
      if (!gone && started) addon.reading(watched, true);
    },
    write(bytes, taken) {
      if (gone) return false;
      const r = addon.send(watched, bytes);
      if (r === 1) return true;
      if (r === 0) {
        waiting = taken;
        return false;
      }
      // The connection broke (the VM closed its end): it ends as the stream handle's failed write ends it, after
      // the caller's current turn.
      process.nextTick(end);
      return false;
    },
    end(bytes) {
      if (gone) return;
      if (addon.send(watched, bytes) >= 0) addon.shutdownWrite(watched);
    },
    close() {
      if (gone) return;
      gone = true;
      waiting = null;
      release();
      socket.off('close', end);
    },
  };
}
