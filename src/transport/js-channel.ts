/**
 * The pure-JS channel: no native code. Node has no blocking sockets, but fs.readSync/writeSync block on a
 * blocking fd, and libuv clears O_NONBLOCK on a child's stdio fds while setting the child up. The flag lives
 * on the open file description shared with our copy, so one spawnSync of /bin/true with the socket as its
 * stdin leaves our fd blocking (checked on Node 20 when the channel was built). This relies on a libuv
 * implementation detail, hence the EAGAIN loop below in case it ever stops working. There is no read timeout: Node has no
 * setsockopt, so a host that hangs without closing must be handled by a watchdog.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readSync, writeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { HostlinkError } from '../errors.js';
import { MAX_FRAME_BYTES } from '../protocol/generated.js';
import { type HostAddress, formatAddress } from './address.js';
import { BlockingFrameChannel, connectError } from './blocking-channel.js';
import type { HostChannel } from './channel.js';

/** The undocumented part of net.Socket we rely on, typed as narrowly as we use it. */
interface StreamHandle {
  fd?: unknown;
  readStop?: () => number;
}

/** A program that exits at once, to be spawned with the socket as stdin. */
const TRUE_BIN = ['/bin/true', '/usr/bin/true'].find((p) => existsSync(p));

/** Why the JS channel cannot work on this platform, or undefined when it can. */
export function jsChannelUnavailableReason(): string | undefined {
  if (process.platform === 'win32') return 'sockets are not file descriptors on Windows';
  return undefined;
}

export interface JsChannelOptions {
  maxFrameBytes?: number;
}

export async function connectJs(address: HostAddress, options: JsChannelOptions = {}): Promise<HostChannel> {
  const why = jsChannelUnavailableReason();
  if (why) throw new HostlinkError('usage', `the JS host channel is unavailable: ${why}`);
  return adoptJs(await openSocket(address), options);
}

/**
 * The JS channel over a socket that is already connected, from either end: `connectJs` above, or a VM that
 * accepted its host's connection (src/runtime/vm.ts). libuv must not be reading it: call this synchronously in
 * 'connect', or on a socket that was paused with its reads stopped.
 */
export function adoptJs(sock: Socket, options: JsChannelOptions = {}): HostChannel {
  const handle = (sock as unknown as { _handle?: StreamHandle })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    sock.destroy();
    throw new HostlinkError('internal', 'cannot get the socket file descriptor (net.Socket internals changed)');
  }
  makeBlocking(fd);
  let open = true;
  const stream = {
    write: (bytes: Uint8Array, offset: number, length: number) => writeAll(fd, bytes, offset, length),
    read: (buf: Uint8Array, offset: number, length: number, min: number) => readAtLeast(fd, buf, offset, length, min),
    // destroy() closes the fd through libuv, which owns it.
    close: () => {
      if (open) sock.destroy();
      open = false;
    },
  };
  return new BlockingFrameChannel('js', stream, options.maxFrameBytes ?? MAX_FRAME_BYTES);
}

/** Same default as the native channel's connect timeout. */
const CONNECT_TIMEOUT_MS = 10_000;

function openSocket(address: HostAddress): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = address.kind === 'unix' ? connect({ path: address.path }) : connect({ host: address.host, port: address.port });
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(connectError(formatAddress(address), err));
    };
    const timer = setTimeout(() => {
      const err = Object.assign(new Error(`connect timed out after ${CONNECT_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' });
      sock.destroy();
      onError(err);
    }, CONNECT_TIMEOUT_MS);
    sock.once('error', onError);
    sock.once('connect', () => {
      clearTimeout(timer);
      // Synchronously inside 'connect', before net starts reading: libuv must never read or watch this fd,
      // or it could consume the host's bytes or close the fd on EOF while we still use its number.
      sock.pause();
      (sock as unknown as { _handle?: StreamHandle })._handle?.readStop?.();
      sock.off('error', onError);
      sock.on('error', () => {}); // errors surface through readSync/writeSync instead
      sock.unref();
      if (address.kind === 'tcp') sock.setNoDelay(true);
      resolve(sock);
    });
  });
}

function makeBlocking(fd: number): void {
  // Pass the number, not the Socket: a Socket in spawnSync's stdio aborts the process.
  spawnSync(TRUE_BIN ?? process.execPath, TRUE_BIN ? [] : ['-e', ''], { stdio: [fd, 'ignore', 'ignore'] });
}

// Created on first use: a start-up snapshot cannot hold a SharedArrayBuffer (src/vm/snapshot-main.ts).
let sleeper: Int32Array | undefined;
/** Waits before retrying EAGAIN: spin a little (lowest latency), then sleep in growing steps up to 1 ms. */
function backoff(attempt: number): void {
  if (attempt < 64) return;
  Atomics.wait((sleeper ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, Math.min(1, 0.02 * (attempt - 63)));
}

function isEagain(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR';
}

function writeAll(fd: number, bytes: Uint8Array, offset: number, length: number): void {
  let done = 0;
  for (let attempt = 0; done < length; ) {
    try {
      done += writeSync(fd, bytes, offset + done, length - done);
      attempt = 0;
    } catch (err) {
      if (!isEagain(err)) throw err;
      backoff(attempt++);
    }
  }
}

function readAtLeast(fd: number, buf: Uint8Array, offset: number, length: number, min: number): number {
  let got = 0;
  for (let attempt = 0; got < min || (got === 0 && length > 0); ) {
    let n: number;
    try {
      n = readSync(fd, buf, offset + got, length - got, null);
    } catch (err) {
      if (!isEagain(err)) throw err;
      backoff(attempt++);
      continue;
    }
    if (n === 0) break; // end of stream
    got += n;
    attempt = 0;
  }
  return got;
}
