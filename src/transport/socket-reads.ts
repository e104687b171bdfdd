/**
 * How the host reads a VM's socket: into one reused buffer, straight from libuv, instead of through the
 * stream machinery.
 *
 * Why: a host-call round trip is a few microseconds of real work, and a `'data'` event costs a fresh Buffer
 * per read plus Readable's push/emit path; that was most of the gap between Hostlink's session and a C echo
 * server (1.81x the C floor against 1.22x for a server reading with net.Socket's `onread` option, same run).
 * `onread` is only offered when a socket is created, and the host's sockets are accepted by a server, so this
 * switches an accepted socket into the same mode: it sets the two fields `onread` would have set (found by
 * their names on a probe socket built with `onread`) and asks the handle to read into the buffer
 * (`useUserBuffer`, what net.Socket does for `onread`). Pause and resume keep working (net.Socket stops and
 * starts the handle's reads in this mode), and end of stream and errors arrive as 'end', 'error' and 'close' as
 * before. If this Node lacks any of those pieces, the socket is left alone and read through 'data' events:
 * the behaviour is the same, only slower. Bytes already buffered in the stream (the hello the gate pushed back)
 * are delivered first.
 *
 * The buffer is reused by the next read, so `onChunk` must copy what it keeps: it receives a fresh copy here.
 */
import { Socket, type SocketConstructorOpts } from 'node:net';

/** How a socket is being read: 'user-buffer' (the fast path) or 'stream' ('data' events). */
export type ReadMode = 'user-buffer' | 'stream';

/** Read size of the reused buffer: a request frame of up to this many bytes arrives in one read. */
const READ_BUFFER_BYTES = 64 * 1024;

interface UserBufferHandle {
  useUserBuffer?: (buffer: Uint8Array) => void;
}

interface OnreadFields {
  buffer: symbol;
  callback: symbol;
}

let fields: OnreadFields | null | undefined;

/** The private fields net.Socket keeps the `onread` option in, or null when this Node does not have them. */
function onreadFields(): OnreadFields | null {
  if (fields !== undefined) return fields;
  // @types/node declares `onread` on net.connect's options only; net.Socket's constructor takes it too.
  const probe = new Socket({ onread: { buffer: Buffer.alloc(1), callback: () => true } } as unknown as SocketConstructorOpts);
  const symbols = Object.getOwnPropertySymbols(probe);
  const buffer = symbols.find((s) => s.description === 'kBuffer');
  const callback = symbols.find((s) => s.description === 'kBufferCb');
  probe.destroy();
  fields = buffer !== undefined && callback !== undefined ? { buffer, callback } : null;
  return fields;
}

/**
 * Delivers everything read from `socket` to `onChunk`, in order and never synchronously, each chunk a fresh
 * Buffer the caller owns. Pause and resume the socket as usual. Call once per socket, before anything else
 * reads it.
 */
export function readChunks(socket: Socket, onChunk: (chunk: Buffer) => void, options: { mode?: ReadMode } = {}): ReadMode {
  const f = onreadFields();
  const handle = (socket as unknown as { _handle?: UserBufferHandle | null })._handle;
  const fast = options.mode !== 'stream' && f !== null && typeof handle?.useUserBuffer === 'function' && !socket.destroyed;
  if (!fast) {
    socket.on('data', onChunk);
    return 'stream';
  }
  // What the stream already holds comes first (read() on a paused stream takes it without starting a flow).
  const held: Buffer[] = [];
  for (let b = socket.read() as Buffer | null; b !== null; b = socket.read() as Buffer | null) held.push(b);
  const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const target = socket as unknown as Record<symbol, unknown>;
  target[f.buffer] = buffer;
  target[f.callback] = (n: number, buf: Buffer): boolean => {
    onChunk(Buffer.from(buf.subarray(0, n)));
    return true;
  };
  handle!.useUserBuffer!(buffer);
  // Delivered on the next tick, as 'data' events would be: the caller finishes setting up first, and no new
  // read can run before (libuv reads happen in the event loop, after the tick queue).
  if (held.length) process.nextTick(() => held.forEach((b) => onChunk(b)));
  return 'user-buffer';
}
