/**
 * What the session (session.ts), its protocol handlers (methods.ts, node/handlers.ts) and its work sources
 * (the executor's slots) share: a leaf module of types, so none of them imports another for its types and
 * the handlers never import the session they serve.
 */
import type { MethodName } from '../protocol/generated.js';
import type { RequestOf } from '../protocol/messages.js';
import type { Job } from './job.js';
import type { NodeBackend } from './node/backend.js';

/** What the handlers need from the host: committed data only (deltas are applied after the result). */
export interface SessionBackend {
  getCode(codeHash: Uint8Array): Uint8Array | undefined;
  readState(contextId: Uint8Array, key: Uint8Array): Uint8Array | undefined;
  /**
   * The state value when it holds at most `most` bytes, else its length with nothing copied (undefined when
   * absent), in one lookup: an answer the call's gas cannot pay for is refused before the value is copied.
   * Without it the value is read whole to learn its length.
   */
  readStateWithin?(contextId: Uint8Array, key: Uint8Array, most: number): Uint8Array | number | undefined;
  /** Private storage, contexts, blobs and fetch (src/host/node/); without it those methods answer `forbidden`. */
  node?: NodeBackend;
}

export type SessionState = 'new' | 'ready' | 'busy' | 'finished' | 'closed';

/** The named events of the session's transition table (session.ts, TRANSITIONS). */
export type SessionEvent = 'hello' | 'start' | 'take' | 'result' | 'last_result' | 'close';

/** What each event carries: the VM's hello, or the job it takes. */
export interface SessionEventData {
  hello: { vmPid: number; vmVersion: string; protocolVersion: number };
  start: { vmPid: number; vmVersion: string; protocolVersion: number };
  take: { job: Job };
  result: undefined;
  last_result: undefined;
  close: undefined;
}

/** What a handler sees of the session it answers for. State changes only through `transition`. */
export interface SessionContext {
  readonly backend: SessionBackend;
  readonly state: SessionState;
  readonly vmPid: number;
  /** Where this session asks for work; null for a session given its one job at start (in-process). */
  readonly work: WorkSource | null;
  /**
   * Bytes the answer to the request being served may have before the call's gas cannot pay for reading it
   * (round_trip per_byte): a handler that knows an answer's size before building it answers `unaffordable`
   * past this. Unbounded for the VM loop's own requests.
   */
  answerBytesLeft(): number;
  /** The job the current request belongs to; throws a protocol error naming `method` when there is none. */
  currentJob(method: string): Job;
  /** Throws the event's protocol error when the session's state does not allow it. */
  check(event: SessionEvent): void;
  transition<E extends SessionEvent>(event: E, ...data: SessionEventData[E] extends undefined ? [] : [SessionEventData[E]]): void;
}

/** How a session obtains work: an executor's slot, or anything that hands out jobs and then null. */
export interface WorkSource {
  /**
   * The next job, or null when there is no more work (the VM is told `absent` and exits); decided at once when
   * it can be (a job is queued, the source is closing), else a Promise (the VM waits, parked).
   */
  nextJob(session: SessionContext): Job | null | Promise<Job | null>;
}

export type Handler<M extends MethodName> = (session: SessionContext, fields: RequestOf<M>) => Uint8Array | Promise<Uint8Array>;
