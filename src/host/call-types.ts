/**
 * The shapes of a call as an embedder sees them: the request, its outcome and the follow-ups it caused. A leaf
 * module: the Host, the scheduler and the committer all use them.
 */
import type { Effects, NondetDisagreement } from '../protocol/effects.js';
import type { MessageInit } from '../protocol/message.js';
import type { ExecutionResult } from '../protocol/result.js';
import type { VmCrash } from './job.js';

export type ExecutionMode = 'pool' | 'oneshot';

/**
 * One call. `input` is at most max_input_bytes (16 MiB) and `deadlineMs` a whole number from 1 to 2^31-1;
 * anything else is refused at once with HostlinkError('usage') naming the limit (options.ts, docs/bounds.md).
 */
export interface CallRequest extends Omit<MessageInit, 'codeHash' | 'method' | 'contextId'> {
  codeHash: Uint8Array;
  method: string;
  contextId: Uint8Array;
  mode?: ExecutionMode;
  deadlineMs?: number;
}

/**
 * A call the host made because of a successful call: an event handler (same contract, same context, the
 * event's data as input) or an xcall (same contract, the target context, the params as input). Each is a
 * call of its own: it is applied or not on its own, and its own follow-ups are nested in its outcome.
 */
export interface FollowUp {
  kind: 'handler' | 'xcall';
  contextId: Uint8Array;
  method: string;
  /** The follow-up's outcome, or undefined when it was not run (see `skipped`). */
  outcome?: Outcome;
  /**
   * Why it has no outcome: not run (the breadth, depth or gas limit, no application, an xcall naming no
   * function), or it failed before it had one (the store failed, no VM could start). The parent stays applied.
   */
  skipped?: string;
}

export interface Outcome {
  /** This call's id in the host's events (`host.events`): a counter per Host, starting at 1. */
  callId: number;
  result: ExecutionResult;
  /** The result in its wire encoding (code byte + calldata), as the VM sent it. */
  resultBytes: Uint8Array;
  logs: string[];
  events: Effects['events'];
  xcalls: Effects['xcalls'];
  /** The storage changes (applied only when `applied`). */
  writes: Effects['writes'];
  gasUsed: bigint;
  /** True when the delta was committed (a Return); false when nothing changed. */
  applied: boolean;
  /** The context's state root after the call (unchanged when not applied). */
  stateRoot: Uint8Array;
  /** The CRDT artifact to send to other nodes (flush_delta or commit; docs/crdt.md); null when none or not applied. */
  artifact: Uint8Array | null;
  /** The root hash the guest passed to commit; null when it did not commit or nothing was applied. */
  rootHash: Uint8Array | null;
  /** Set when the VM process crashed (exited without a result). */
  crash?: VmCrash;
  /** Event handlers and xcalls run after this call succeeded, in order (empty when it failed). */
  followUps: FollowUp[];
  /** Results of the call's non-deterministic blocks, one per call_no (block encoding; docs/nondet.md). */
  nondetResults: Uint8Array[];
  /** In a validator run: the first block whose validator did not accept the proposal; null otherwise. */
  disagreement: NondetDisagreement | null;
  /** SHA-256 over what consensus compares (result, delta, events, xcalls, node effects, nondet results). */
  executionHash: Uint8Array;
}
