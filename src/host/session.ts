/**
 * One VM connection as the host sees it: a strict request/response state machine.
 *
 *   hello --> ready --(job assigned: one-shot at start, or answered next_message)--> busy
 *   busy --consume_result--> ready (pool) / finished (one-shot)
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
import type { Job } from './job.js';
import { METHOD_HANDLERS, type SessionBackend } from './methods.js';

export type SessionState = 'new' | 'ready' | 'busy' | 'finished' | 'closed';

/** How a session obtains work in pool mode. */
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
    /** The one-shot job (the VM got its message on the command line), or a pool's work source. */
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
 */
export function serveSession(session: Session, socket: Socket, maxFrameBytes = MAX_FRAME_BYTES): Promise<{ error?: HostlinkError }> {
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
    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        while (queue.length && !finished) {
          const response = await session.handle(queue.shift()!);
          if (socket.destroyed) return;
          socket.write(encodeFrame(response));
        }
      } catch (e) {
        fail(e);
      } finally {
        busy = false;
      }
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        queue.push(...reader.push(chunk));
      } catch (e) {
        fail(e);
        return;
      }
      void pump();
    });
    socket.on('error', () => finish());
    socket.on('close', () => finish());
  });
}
