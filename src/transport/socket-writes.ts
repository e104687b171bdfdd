/**
 * How the host writes to a VM's socket: straight to libuv's handle, without the Writable stream machinery.
 *
 * Why: an answer to a host call is a few dozen bytes, and `socket.write` wraps each in the stream's
 * bookkeeping (buffering while corked, the write callback deferred to a tick, the state updated on both
 * sides) before libuv's write, which tries the syscall at once. The session answers one request at a time
 * and waits for nothing but the kernel, so it needs none of that: it hands its bytes to the handle's
 * `writeBuffer` (what net.Socket itself calls underneath) with a write request object of its own. A write
 * the kernel takes whole returns at once; one it cannot (the VM is not reading) stays queued in libuv with
 * the buffer held by the request, and the caller is told to wait until it completes, as it waited for
 * 'drain' before, so the host holds at most one batch of answers for a VM that does not read.
 *
 * The write request type comes from Node's `stream_wrap` binding (`process.binding`, deprecated in the
 * documentation only). Where it is missing, where asking for it would print a deprecation warning
 * (`--pending-deprecation`), or where the socket is not a plain pipe or TCP handle (TLS, a socket without a
 * handle), writes go through `socket.write` with the same behaviour, only slower.
 */
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

/** How a socket is written: 'handle' (the fast path) or 'stream' (`socket.write`). */
export type WriteMode = 'handle' | 'stream';

interface WriteReq {
  handle: unknown;
  oncomplete: (status: number) => void;
  async: boolean;
  bytes: number;
  buffer: Uint8Array | null;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

interface WritableHandle {
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  constructor: { name: string };
}

let binding: StreamWrapBinding | null | undefined;

function pendingDeprecationOn(): boolean {
  return (
    process.execArgv.includes('--pending-deprecation') ||
    process.env.NODE_PENDING_DEPRECATION === '1' ||
    (process.env.NODE_OPTIONS ?? '').includes('--pending-deprecation')
  );
}

/** Node's write request type and the flag telling whether the last write was queued, or null. */
function streamWrap(): StreamWrapBinding | null {
  if (binding !== undefined) return binding;
  binding = null;
  if (pendingDeprecationOn()) return binding;
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding('stream_wrap');
    if (typeof b.WriteWrap === 'function' && b.streamBaseState instanceof Int32Array && typeof b.kLastWriteWasAsync === 'number') {
      binding = b as StreamWrapBinding;
    }
  } catch {
    // This Node has no such binding: the stream path.
  }
  return binding;
}

/** A socket's writer: one method, used for every write once chosen. */
export interface SocketWriter {
  readonly mode: WriteMode;
  /**
   * Writes `bytes` (the caller gives up the buffer). True when the kernel took them all at once; false when the
   * caller must wait: `taken` is called once when they have been taken or the socket is gone. A write that
   * fails destroys the socket (its 'close' follows) and returns false without calling `taken`.
   */
  write(bytes: Uint8Array, taken: () => void): boolean;
}

/** Chooses how `socket` is written; 'stream' forces the stream path. */
export function socketWriter(socket: Socket, options: { mode?: WriteMode } = {}): SocketWriter {
  const b = options.mode === 'stream' ? null : streamWrap();
  const handle = (socket as unknown as { _handle?: WritableHandle | null })._handle;
  const plain = handle !== null && handle !== undefined && typeof handle.writeBuffer === 'function' && ['Pipe', 'TCP'].includes(handle.constructor.name);
  if (b === null || !plain) return streamWriter(socket);
  return {
    mode: 'handle',
    write(bytes, taken) {
      if (socket.destroyed) return false;
      const req = new b.WriteWrap();
      req.handle = handle;
      req.async = false;
      req.bytes = 0;
      req.buffer = null;
      req.oncomplete = (status: number): void => {
        req.buffer = null;
        if (status < 0) socket.destroy(writeError(status));
        taken();
      };
      const status = handle.writeBuffer(req, bytes);
      if (status !== 0) {
        socket.destroy(writeError(status));
        return false;
      }
      if (b.streamBaseState[b.kLastWriteWasAsync] === 0) return true;
      // Queued in libuv: the request must keep the bytes alive until it completes.
      req.buffer = bytes;
      return false;
    },
  };
}

function streamWriter(socket: Socket): SocketWriter {
  return {
    mode: 'stream',
    write(bytes, taken) {
      if (socket.destroyed) return false;
      if (socket.write(bytes)) return true;
      const end = (): void => {
        socket.off('drain', end);
        socket.off('close', end);
        taken();
      };
      socket.on('drain', end);
      socket.on('close', end);
      return false;
    },
  };
}

function writeError(status: number): Error {
  let name: string;
  try {
    name = getSystemErrorName(status);
  } catch {
    name = `error ${status}`;
  }
  return Object.assign(new Error(`writing to the VM's socket failed: ${name} (the VM closed its end or the connection broke)`), { code: name });
}
