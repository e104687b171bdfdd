/**
 * PROTOTYPE (bench only, not used by the product): Hostlink's host session served from a worker thread with
 * blocking reads and writes on the VM's socket, to measure what the host's round trip would be without the
 * event loop between the VM's request and its answer.
 *
 * Design measured here: the main thread keeps the listener and the gate (the hello proof is checked there, as
 * in the product). Once a VM is admitted, the main thread stops libuv reading the socket, takes the hello bytes
 * the gate left unread, makes the fd blocking, and hands the fd number and those bytes to a worker thread. The
 * worker runs the real Session (same decoders, same handlers, same one-request-at-a-time rule: a synchronous
 * loop cannot read a second request before answering the first) with a frame-size check before any body is
 * read, in a loop of readSync / writeSync. An answer that must wait (next_message) is awaited in the worker.
 *
 * What the product would need (not done: session.ts, pool.ts and host.ts are being restructured elsewhere):
 * one worker per VM connection (a worker blocks in read), the backend's state reads served in the worker
 * (lmdb opens the same environment in a worker thread), and next_message / consume_result carried to the
 * main thread's executor over a MessagePort, so jobs, commits and the state root stay on the main thread.
 */
import { readSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { HostlinkError } from '../src/errors.js';
import { Session } from '../src/host/session.js';
import { admitVm } from '../src/host/vm-gate.js';
import { benchSessionWork, listenFresh } from './bench-server.js';
import { FRAME_HEADER_BYTES, frameTooLarge } from '../src/protocol/frame.js';
import { MAX_FRAME_BYTES } from '../src/protocol/generated.js';

interface WorkerInput {
  fd: number;
  held: Uint8Array;
  payloadBytes: number;
}

const TRUE_BIN = ['/bin/true', '/usr/bin/true'].find((p) => existsSync(p));
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function isEagain(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR';
}

/** The worker: serves the session on `fd` until the VM closes it or breaks the protocol. */
async function serveInWorker(input: WorkerInput): Promise<void> {
  const { backend, work } = benchSessionWork(input.payloadBytes);
  const session = new Session(backend, { pool: work });
  const buf = Buffer.allocUnsafe(64 * 1024);
  let have = 0;
  Buffer.from(input.held).copy(buf, 0);
  have = input.held.length;
  const fill = (need: number): boolean => {
    for (let attempt = 0; have < need; ) {
      let n: number;
      try {
        n = readSync(input.fd, buf, have, buf.length - have, null);
      } catch (err) {
        if (!isEagain(err)) throw err;
        if (attempt++ > 64) Atomics.wait(sleeper, 0, 0, 1);
        continue;
      }
      if (n === 0) return false;
      have += n;
      attempt = 0;
    }
    return true;
  };
  const out = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    if (!fill(FRAME_HEADER_BYTES)) return;
    const length = buf.readUInt32LE(0);
    // Checked before reading the body, as the product's FrameReader does (the prototype's buffer is 64 KiB).
    if (length > Math.min(MAX_FRAME_BYTES, buf.length - FRAME_HEADER_BYTES)) throw frameTooLarge(length, MAX_FRAME_BYTES);
    if (!fill(FRAME_HEADER_BYTES + length)) return;
    const body = Buffer.from(buf.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length));
    buf.copyWithin(0, FRAME_HEADER_BYTES + length, have);
    have -= FRAME_HEADER_BYTES + length;
    const a = session.handle(body);
    const answer = a instanceof Promise ? await a : a;
    out.writeUInt32LE(answer.length, 0);
    out.set(answer, FRAME_HEADER_BYTES);
    for (let done = 0, total = FRAME_HEADER_BYTES + answer.length; done < total; ) {
      try {
        done += writeSync(input.fd, out, done, total - done);
      } catch (err) {
        if (!isEagain(err)) throw err;
        Atomics.wait(sleeper, 0, 0, 1);
      }
    }
  }
}

if (!isMainThread && (workerData as { sessionWorker?: boolean } | null)?.sessionWorker === true) {
  const input = (workerData as { input: WorkerInput }).input;
  serveInWorker(input).then(
    () => parentPort?.postMessage({ ended: true }),
    (e: unknown) => parentPort?.postMessage({ ended: true, error: (e as Error).message }),
  );
}

/**
 * The prototype server on a fresh listener behind the real gate, for one VM connection (as the channel
 * bench's session rows): the hello must prove `secret`, next_message hands out one job, storage_read answers
 * a `payloadBytes` value.
 */
export async function startWorkerSessionServer(
  transport: 'unix' | 'tcp',
  sockPath: string,
  secret: Uint8Array,
  payloadBytes: number,
): Promise<{ address: string; stop: () => Promise<void> }> {
  const server: Server = createServer({ noDelay: true });
  const address = await listenFresh(server, transport, sockPath);
  const gate = admitVm(server, secret);
  let socket: Socket | undefined;
  let worker: Worker | undefined;
  const served = gate.connection.then(
    (s) =>
      new Promise<void>((resolve) => {
        socket = s;
        // The gate hands the socket over paused with the hello unread: take what the stream holds, then stop
        // libuv reading, so that from here only the worker reads this fd.
        const held: Buffer[] = [];
        for (let b = s.read() as Buffer | null; b !== null; b = s.read() as Buffer | null) held.push(b);
        const handle = (s as unknown as { _handle?: { fd?: number; readStop?: () => number } })._handle;
        handle?.readStop?.();
        const fd = handle?.fd;
        if (typeof fd !== 'number' || fd < 0) throw new HostlinkError('internal', 'no fd on the accepted socket');
        // Blocking reads (see src/transport/js-channel.ts for why this works); EAGAIN is retried anyway.
        spawnSync(TRUE_BIN ?? process.execPath, TRUE_BIN ? [] : ['-e', ''], { stdio: [fd, 'ignore', 'ignore'] });
        worker = new Worker(fileURLToPath(import.meta.url), { workerData: { sessionWorker: true, input: { fd, held: Buffer.concat(held), payloadBytes } } });
        // However the worker ends, the connection ends with it: a client left waiting would hang the bench.
        const ended = (): void => {
          s.destroy();
          resolve();
        };
        worker.on('message', (m: { error?: string }) => {
          if (m.error !== undefined) process.stderr.write(`session worker prototype: ${m.error}\n`);
          ended();
        });
        worker.on('error', (e) => {
          process.stderr.write(`session worker prototype: ${e.message}\n`);
          ended();
        });
        worker.on('exit', ended);
      }),
  );
  served.catch(() => undefined);
  const stop = async (): Promise<void> => {
    gate.close(new HostlinkError('internal', 'bench finished'));
    await served.catch(() => undefined);
    await worker?.terminate();
    socket?.destroy();
  };
  return { address, stop };
}
