/**
 * One VM connection as the host sees it: a strict request/response state machine whose every transition is
 * a row of TRANSITIONS below (the one place the session's state changes):
 *
 *   new --hello--> ready --take (next_message answered a job)--> busy --result--> ready
 *   new --start (hello of a session given its job)--> busy --last_result--> finished
 *   any --close--> closed
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
import { encodeFrame, encodeFrames, FrameReader } from '../protocol/frame.js';
import { MAX_FRAME_BYTES } from '../protocol/generated.js';
import { decodeRequest, encodeStatus, unaffordableBytes } from '../protocol/messages.js';
import { sessionIo, type SessionIoOptions } from '../transport/session-io.js';
import { answerBytesAffordable, roundTripGas, type GuestRequests } from '../protocol/effect-limits.js';
import { NONDET_LIMITS } from '../protocol/nondet.generated.js';
import type { Job } from './job.js';
import { keysLookedUp, LOOP_METHODS, METHOD_HANDLERS } from './methods.js';
import type { SessionBackend, SessionContext, SessionEvent, SessionEventData, SessionState, WorkSource } from './session-types.js';

export type { SessionState, WorkSource } from './session-types.js';

/** Answers are written once this many bytes of them wait: what the host holds for a VM that does not read. */
const FLUSH_BYTES = 16 * 1024;

const ALL_STATES: readonly SessionState[] = ['new', 'ready', 'busy', 'finished', 'closed'];

/** get_code requests one job may make: the main instance's, and one per sub-instance depth. */
const MAX_CODE_REQUESTS = 1 + NONDET_LIMITS.maxSubInstanceDepth;

/**
 * Books a job's answered request, whichever way it was answered (at once, or later as a Promise): the answer's
 * bytes in the guest's round_trip account when it was the guest's request, and what is sent in its trace.
 * An answer whose bytes the call's gas cannot pay for is not sent: the VM is told its length (`unaffordable`)
 * and runs out of gas charging for it, as it would have reading it, without the host writing it and the VM
 * reading it (a 10 MiB value read with the gas for the request alone cost the host ~28 ms a call).
 */
function answered(job: Job, guest: GuestRequests | undefined, method: string, requestBytes: number, arrivedAt: number, built: Uint8Array): Uint8Array {
  let response = built;
  if (guest !== undefined) {
    // A handler that knew the size first answered `unaffordable` without building the answer: count its length.
    const length = unaffordableBytes(built) ?? built.length;
    guest.bytes += length;
    if (roundTripGas(guest) > job.message.gasLimit) response = encodeStatus('unaffordable', { bytes: length });
  }
  if (job.trace.recording) job.trace.record(method, requestBytes, response.length, arrivedAt, performance.now());
  else job.trace.skip(method, requestBytes, response.length);
  return response;
}

/** Every transition of a session: the states it may leave from, where it goes, and the error when refused. */
const TRANSITIONS: { readonly [E in SessionEvent]: { from: readonly SessionState[]; to: SessionState; refused: string } } = {
  hello: { from: ['new'], to: 'ready', refused: 'hello sent twice' },
  start: { from: ['new'], to: 'busy', refused: 'hello sent twice' },
  take: { from: ['ready'], to: 'busy', refused: 'next_message while an execution is in progress' },
  result: { from: ['busy'], to: 'ready', refused: 'consume_result while no execution is in progress' },
  last_result: { from: ['busy'], to: 'finished', refused: 'consume_result while no execution is in progress' },
  close: { from: ALL_STATES, to: 'closed', refused: 'the session is already closed' },
};

export class Session implements SessionContext {
  #state: SessionState = 'new';
  #job: Job | null = null;
  /** See answerBytesLeft: set while a guest's request is served. */
  #answerBytesLeft = Number.MAX_SAFE_INTEGER;
  #vmPid = 0;
  #vmVersion = '';
  #protocolVersion = 0;
  readonly work: WorkSource | null;
  /** The job given at start (in-process), taken by the `start` transition. */
  private readonly given: Job | null;

  constructor(
    readonly backend: SessionBackend,
    /** A job given at start (the in-process runner), or where to ask for work (pool, one-shot over a socket). */
    work: { oneShot: Job } | { pool: WorkSource },
  ) {
    this.work = 'pool' in work ? work.pool : null;
    this.given = 'oneShot' in work ? work.oneShot : null;
  }

  get state(): SessionState {
    return this.#state;
  }

  get vmPid(): number {
    return this.#vmPid;
  }

  get vmVersion(): string {
    return this.#vmVersion;
  }

  get protocolVersion(): number {
    return this.#protocolVersion;
  }

  check(event: SessionEvent): void {
    if (!TRANSITIONS[event].from.includes(this.#state)) throw new HostlinkError('protocol', TRANSITIONS[event].refused);
  }

  /** The one place the state changes: a row of TRANSITIONS, with what entering or leaving `busy` means. */
  transition<E extends SessionEvent>(event: E, ...data: SessionEventData[E] extends undefined ? [] : [SessionEventData[E]]): void {
    this.check(event);
    const detail = data[0] as Partial<SessionEventData['hello'] & SessionEventData['take']> | undefined;
    if (detail?.vmPid !== undefined) {
      this.#vmPid = detail.vmPid;
      this.#vmVersion = detail.vmVersion!;
      this.#protocolVersion = detail.protocolVersion!;
    }
    const to = TRANSITIONS[event].to;
    if (to === 'busy') {
      const job = event === 'start' ? this.given : (detail?.job ?? null);
      if (job === null) throw new HostlinkError('internal', `session event ${event} without a job`);
      this.#job = job;
      job.trace.begin(this.#vmPid);
    } else {
      this.#job = null;
    }
    this.#state = to;
  }

  /**
   * Answers one request body. Only next_message may answer later (a Promise); everything else answers at
   * once, which is what lets the in-process channel drive a session synchronously.
   * Throws HostlinkError('protocol') when the session must end.
   */
  handle(body: Uint8Array): Uint8Array | Promise<Uint8Array> {
    const request = decodeRequest(body);
    if (this.#state === 'new' && request.method !== 'hello') {
      throw new HostlinkError('protocol', `${request.method} before hello`);
    }
    const handler = METHOD_HANDLERS[request.method] as (s: SessionContext, fields: unknown) => Uint8Array | Promise<Uint8Array>;
    // Requests made while a job runs belong to its trace (the one that hands out the job does not).
    const job = this.#job;
    if (job === null) return handler(this, request.fields);
    // What the guest's requests cost in round_trip gas is checked before each one is served: its base, its bytes
    // and its keys, on top of every earlier request and answer (the answer's bytes are added once it is built).
    const loop = LOOP_METHODS.has(request.method);
    const guest = loop ? undefined : job.guest;
    // Before the request is served: a read the gas cannot pay for still depended on the value's size.
    job.early?.record(request, loop);
    if (request.method === 'get_code' && ++job.codeRequests > MAX_CODE_REQUESTS) {
      // The VM's own fetch, not the guest's, so not priced: an honest VM asks once for the main instance and once
      // per sub-instance depth (each compiles its own variant, and the code cache drops nothing during a call).
      throw new HostlinkError('protocol', `get_code is request ${job.codeRequests} for the code during one call; a VM needs at most ${MAX_CODE_REQUESTS}`);
    }
    if (guest !== undefined) {
      guest.count++;
      guest.bytes += body.length;
      guest.keys += keysLookedUp(request);
      const owed = roundTripGas(guest);
      if (owed > job.message.gasLimit) {
        throw new HostlinkError(
          'protocol',
          `${request.method} is request ${guest.count} on the guest's behalf: with the requests before it and their answers it asks for ${owed} gas of host round trips (round_trip base, per_byte, per_key), more than the call's gas limit ${job.message.gasLimit} pays for`,
        );
      }
    }
    const arrivedAt = job.trace.recording ? performance.now() : 0;
    this.#answerBytesLeft = guest === undefined ? Number.MAX_SAFE_INTEGER : answerBytesAffordable(guest, job.message.gasLimit);
    let answer: Uint8Array | Promise<Uint8Array>;
    try {
      answer = handler(this, request.fields);
    } finally {
      this.#answerBytesLeft = Number.MAX_SAFE_INTEGER;
    }
    if (answer instanceof Promise) return answer.then((response) => answered(job, guest, request.method, body.length, arrivedAt, response));
    return answered(job, guest, request.method, body.length, arrivedAt, answer);
  }

  answerBytesLeft(): number {
    return this.#answerBytesLeft;
  }

  currentJob(method: string): Job {
    if (this.#state !== 'busy' || this.#job === null) {
      throw new HostlinkError('protocol', `${method} while no execution is in progress`);
    }
    return this.#job;
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
  options: SessionIoOptions = {},
): Promise<{ error?: HostlinkError }> {
  return new Promise((resolve) => {
    const reader = new FrameReader(maxFrameBytes);
    const queue: Buffer[] = [];
    let busy = false;
    let finished = false;
    // Reads and writes (transport/session-io.ts): the socket addon where it is built, else libuv's stream handle.
    const io = sessionIo(socket, options);
    // Answers given at once wait here and leave together (a pool VM sends its result and its next_message
    // together, and both are answered in one pass when a job is queued): one syscall, one wake-up of the VM.
    const batch: Uint8Array[] = [];
    let batchBytes = 0;
    const finish = (error?: HostlinkError): void => {
      if (finished) return;
      finished = true;
      io.close();
      session.transition('close');
      resolve(error ? { error } : {});
    };
    const fail = (e: unknown): void => {
      const err = e instanceof HostlinkError ? e : new HostlinkError('internal', `host failed serving the VM: ${(e as Error).message}`);
      // Tell the VM why before closing, after the answers it is owed: it exits with a clear message, not a bare EOF.
      flush(() => undefined);
      if (!io.gone) io.end(encodeFrame(encodeStatus('bad_request', { reason: err.message })));
      finish(err);
    };
    // Whether this loop paused the socket (see pump).
    let paused = false;
    const pause = (): void => {
      if (!paused) io.pause();
      paused = true;
    };
    /**
     * Writes the batch. True when the kernel took it; false when the loop must stop here (the socket is gone,
     * or the VM is not reading: `then` runs once it has taken the bytes).
     */
    function flush(then: () => void): boolean {
      if (batch.length === 0) return true;
      const gone = io.gone || finished;
      const frames = gone ? null : encodeFrames(batch);
      batch.length = 0;
      batchBytes = 0;
      if (frames === null) return false;
      if (io.write(frames, then)) return true;
      pause();
      return false;
    }
    /** Adds one answer to the batch; false when the loop must stop (see flush). */
    const send = (response: Uint8Array): boolean => {
      if (io.gone || finished) return false;
      batch.push(response);
      batchBytes += response.length;
      // A VM that pipelines requests without reading its answers gets about this much held for it, at most.
      return batchBytes < FLUSH_BYTES || flush(goOn);
    };
    /** Continues the loop after an answer that waited, or after the VM read what was written. */
    const goOn = (): void => {
      busy = false;
      pump();
    };
    /**
     * Answers the queued requests one at a time, in order. Answers given at once need no pause: no read can
     * arrive while this loop runs synchronously. Only an answer that waits (next_message, http_fetch) or a VM
     * that does not read its answers pauses the socket (pausing on every request would cost two epoll_ctl
     * calls per request); `busy` stays set until that wait is over, so requests arriving meanwhile only queue.
     * Synchronous on the common path: no Promise per request.
     */
    const pump = (): void => {
      if (busy) return;
      busy = true;
      try {
        while (queue.length && !finished) {
          const response = session.handle(queue.shift()!);
          if (response instanceof Promise) {
            // What was answered so far leaves now; the loop goes on when this answer is given and taken.
            flush(() => undefined);
            pause();
            response.then((answer) => {
              try {
                if (send(answer) && flush(goOn)) goOn();
              } catch (e) {
                fail(e);
              }
            }, fail);
            return;
          }
          if (!send(response)) return;
        }
        if (!flush(goOn)) return;
      } catch (e) {
        fail(e);
        return;
      }
      busy = false;
      if (paused && !finished && !io.gone) {
        paused = false;
        io.resume();
      }
    };
    io.start(
      (chunk: Buffer) => {
        if (finished) return;
        try {
          queue.push(...reader.push(chunk));
        } catch (e) {
          fail(e);
          return;
        }
        if (queue.length) pump();
      },
      () => finish(),
    );
  });
}
