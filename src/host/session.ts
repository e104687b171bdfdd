/**
 * One VM connection as the host sees it: a strict request/response state machine.
 *
 *   hello --> ready --(job assigned: given at start, or answered next_message)--> busy
 *   busy --consume_result--> ready (work source) / finished (job given at start)
 *
 * Socket-served VMs (pool and one-shot alike) always take their job through next_message from a WorkSource;
 * a job given at start is for the in-process runner, which has no listener and no secret. Sockets reach
 * serveSession only through the gate (vm-gate.ts), so the hello answered here has already proved the secret.
 *
 * Protocol methods are answered by the handlers in methods.ts. A request that cannot be decoded, or arrives
 * in the wrong state, gets `bad_request` and ends the session (and its job): a VM that breaks the protocol
 * cannot be trusted to continue.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { HostlinkError } from '../errors.js';
import { encodeFrame, FrameReader } from '../protocol/frame.js';
import { MAX_FRAME_BYTES } from '../protocol/generated.js';
import { decodeRequest, encodeStatus } from '../protocol/messages.js';
import { readChunks, type ReadMode } from '../transport/socket-reads.js';
import type { Job } from './job.js';
import { METHOD_HANDLERS, type SessionBackend } from './methods.js';

export type SessionState = 'new' | 'ready' | 'busy' | 'finished' | 'closed';

/** How a session obtains work: a pool, or a one-shot call that hands out its one job and then null. */
export interface WorkSource {
  /** Resolves with the next job, or null when there is no more work (the VM is told `absent` and exits). */
  nextJob(session: Session): Promise<Job | null>;
  /** Called when the current job got its result. */
  jobFinished?(session: Session, job: Job): void;
}

export class Session {
  state: SessionState = 'new';
  job: Job | null = null;
  vmPid = 0;
  vmVersion = '';
  protocolVersion = 0;

  constructor(
    readonly backend: SessionBackend,
    /** A job given at start (the in-process runner), or where to ask for work (pool, one-shot over a socket). */
    readonly work: { oneShot: Job } | { pool: WorkSource },
  ) {}

  /**
   * Answers one request body. Only next_message may answer later (a Promise); everything else answers at
   * once, which is what lets the in-process channel drive a session synchronously.
   * Throws HostlinkError('protocol') when the session must end.
   */
  handle(body: Uint8Array): Uint8Array | Promise<Uint8Array> {
    const request = decodeRequest(body);
    if (this.state === 'new' && request.method !== 'hello') {
      throw new HostlinkError('protocol', `${request.method} before hello`);
    }
    const handler = METHOD_HANDLERS[request.method] as (s: Session, fields: unknown) => Uint8Array | Promise<Uint8Array>;
    // Requests made while a job runs belong to its trace (the one that hands out the job does not).
    const job = this.job;
    if (job === null) return handler(this, request.fields);
    const arrivedAt = performance.now();
    const answer = handler(this, request.fields);
    const record = (response: Uint8Array): Uint8Array => {
      job.trace.record(request.method, body.length, response.length, arrivedAt, performance.now());
      return response;
    };
    return answer instanceof Promise ? answer.then(record) : record(answer);
  }

  /** The job the current request belongs to; throws when there is none. */
  currentJob(method: string): Job {
    if (this.state !== 'busy' || this.job === null) {
      throw new HostlinkError('protocol', `${method} while no execution is in progress`);
    }
    return this.job;
  }
}

/**
 * Serves a session on a socket until the peer closes, the session finishes, or the protocol is broken.
 * Resolves with the reason the session ended; never rejects.
 *
 * Read one request, answer it, read the next: the socket is paused while a request waits for its answer (a
 * parked next_message, an http_fetch) and while an answer waits for the VM to read it, so a VM that pipelines
 * requests fills its own socket buffers, not the host's memory. What is held at most is one received chunk's
 * frames and one partial frame (bounded by the frame limit). The socket may arrive paused (from the gate).
 */
export function serveSession(
  session: Session,
  socket: Socket,
  maxFrameBytes = MAX_FRAME_BYTES,
  options: { readMode?: ReadMode } = {},
): Promise<{ error?: HostlinkError }> {
  return new Promise((resolve) => {
    const reader = new FrameReader(maxFrameBytes);
    const queue: Buffer[] = [];
    let busy = false;
    let finished = false;
    const finish = (error?: HostlinkError): void => {
      if (finished) return;
      finished = true;
      session.state = 'closed';
      resolve(error ? { error } : {});
    };
    const fail = (e: unknown): void => {
      const err = e instanceof HostlinkError ? e : new HostlinkError('internal', `host failed serving the VM: ${(e as Error).message}`);
      // Tell the VM why before closing: it exits with a clear message instead of a bare EOF.
      if (!socket.destroyed) socket.end(encodeFrame(encodeStatus('bad_request', { reason: err.message })));
      finish(err);
    };
    /** Resolves once the VM has taken what was written (or the socket is gone). */
    const drained = (): Promise<void> =>
      new Promise((done) => {
        const end = (): void => {
          socket.off('drain', end);
          socket.off('close', end);
          done();
        };
        socket.on('drain', end);
        socket.on('close', end);
      });
    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      // Answers given at once need no pause: no 'data' event can arrive while this loop runs synchronously.
      // Only an answer that waits (next_message, http_fetch) or a VM that does not read its answers pauses
      // the socket; pausing on every request would cost two epoll_ctl calls per request.
      let paused = false;
      const pause = (): void => {
        if (!paused) socket.pause();
        paused = true;
      };
      try {
        while (queue.length && !finished) {
          let response = session.handle(queue.shift()!);
          if (response instanceof Promise) {
            pause();
            response = await response;
          }
          if (socket.destroyed || finished) return;
          if (!socket.write(encodeFrame(response))) {
            pause();
            await drained();
          }
        }
      } catch (e) {
        fail(e);
      } finally {
        busy = false;
        if (paused && !finished && !socket.destroyed) socket.resume();
      }
    };
    // Reads land in one reused buffer (socket-reads.ts): the stream path cost more than the request itself.
    readChunks(socket, (chunk: Buffer) => {
      if (finished) return;
      try {
        queue.push(...reader.push(chunk));
      } catch (e) {
        fail(e);
        return;
      }
      if (queue.length) void pump();
    }, { mode: options.readMode ?? 'user-buffer' });
    socket.on('error', () => finish());
    socket.on('close', () => finish());
    socket.resume();
  });
}
