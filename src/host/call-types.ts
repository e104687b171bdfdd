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
  /**
   * Apply the call only if its execution hash is this one: for the sync replay of a call consensus accepted
   * (docs/nondet.md), the leader's. A replay runs no block method and so has the gas the blocks used on top of
   * the leader's: where the accepted leader ran out of gas after a block, the replay could return and apply
   * writes nobody agreed on. Another hash ends the call `replay_diverged`, with nothing applied.
   */
  acceptedExecutionHash?: Uint8Array;
}

/**
 * A call the host made because of a successful call: an event handler (same contract, same context, the
 * event's data as input) or an xcall (same contract, the target context, the params as input). Each is a
 * call of its own: it is applied or not on its own, and its own follow-ups are nested in its outcome. A follow-up
 * that ends by a node failure halts the rest of the tree (FollowUpHalt).
 */
export interface FollowUp {
  kind: 'handler' | 'xcall';
  contextId: Uint8Array;
  method: string;
  /** The follow-up's outcome, or undefined when it was not run (see `skipped`). */
  outcome?: Outcome;
  /**
   * Why it has no outcome: not run (the breadth, depth or gas limit, no application, an xcall naming no
   * function; `halted: …` when an earlier follow-up of the tree ended by a node failure), or it failed before it
   * had one (`failed: …`: the store failed, no VM could start). The parent stays applied.
   */
  skipped?: string;
}

/**
 * A follow-up of the tree ended by a node failure (internal_error: its deadline, its VM crashed or broke the
 * protocol, the host's store failed; or it failed before it had an outcome), not by the contract. Such an end
 * says nothing about what the follow-up would have done, nor how much of the tree's gas it would have used, so
 * no later follow-up of the tree runs: otherwise a node where it timed out ran the next ones with gas a faster
 * node did not have and committed another state. The calls applied before it stay applied (each is applied on
 * its own); this node's state for the tree is incomplete until the embedder runs the rest again or repairs it.
 */
export interface FollowUpHalt {
  /** The failed follow-up's call id (as in host.events), or null when it failed before it had one. */
  callId: number | null;
  kind: FollowUp['kind'];
  contextId: Uint8Array;
  method: string;
  /** Its result (code internal_error), or null when it failed before it had one (see `reason`). */
  result: ExecutionResult | null;
  /** What happened, in words: the result's message, or the error that kept it from running. */
  reason: string;
  /** Follow-ups of the tree the host had planned that did not run because of it (their own are never known). */
  notRun: number;
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
  /**
   * Set when a follow-up below this call ended by a node failure and halted the rest of the tree: which one, why,
   * and how many did not run. Set on every outcome from the embedder's call down to the failed follow-up's parent.
   */
  halted?: FollowUpHalt;
  /** Results of the call's non-deterministic blocks, one per call_no (block encoding; docs/nondet.md). */
  nondetResults: Uint8Array[];
  /** In a validator run: the first block whose validator did not accept the proposal; null otherwise. */
  disagreement: NondetDisagreement | null;
  /** SHA-256 over what consensus compares (result, delta, events, xcalls, node effects, nondet results). */
  executionHash: Uint8Array;
}

/** How a halted tree's failed follow-up is named in messages: its kind and method, and its call id when it ran. */
export function haltedFollowUpName(h: { kind: string; method: string; callId: number | null }): string {
  return h.callId === null ? `${h.kind} ${h.method}` : `${h.kind} ${h.method} (call ${h.callId})`;
}
