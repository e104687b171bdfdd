/**
 * The non-deterministic blocks of one execution (docs/nondet.md): the call_no counter, the role the message
 * gives (leader, validator, sync), the results that leave in the effects, and the first disagreement.
 *
 *   leader     runs the leader method in a non-deterministic sub-instance and records its result
 *   validator  checks the leader's proposal, runs the validator method on it; only calldata `true` accepts it
 *   sync       checks the proposal and returns it; nothing runs
 *
 * A proposal is kept byte for byte when it is well formed; a malformed one is replaced by a derived
 * `leader_fault` VMError that the validator judges like any proposal (a faulty leader never traps a validator).
 */
import { GuestError } from '../errors.js';
import type { NondetDisagreement } from '../protocol/effects.js';
import { decodeBlockResult, describeBlockResult, encodeBlockResult, type BlockResult } from '../protocol/nondet.js';
import { NONDET_LIMITS, VALIDATOR_AGREE } from '../protocol/nondet.generated.js';
import type { ExecutionResult } from '../protocol/result.js';
import type { Execution } from './execution.js';
import { endWith, type SubInstanceRequest } from './sub-instance.js';
import { reasonMessage, reasonOf, reasonResult, RESULT_REASON_NAMES, RESULT_REASONS, type ResultReason } from '../protocol/reasons.js';
import { extend } from '../extend.js';

export type NondetRole = 'leader' | 'validator' | 'sync';

/**
 * Reasons a leader may not propose as a block's VMError: the roles' own verdicts, and what only the host records
 * for a whole call (its deadline, its result frame, an internal failure). No sub-instance produces them, and an
 * accepted `timeout` made a validator's call look timed out to its node (runConsensus counted its vote as
 * timeout) although its deadline never passed.
 */
const RESERVED: ReadonlySet<string> = new Set<ResultReason>([
  'absent',
  'validator_disagrees',
  'leader_fault',
  'timeout',
  'result_too_large',
  ...RESULT_REASON_NAMES.filter((r) => RESULT_REASONS[r].code === 'internal_error'),
]);
const reserved = (message: string): boolean => {
  const reason = reasonOf(message);
  return reason !== undefined && RESERVED.has(reason);
};

/** Calldata `false`: the usual way to reject (any answer but `true` rejects). */
const VALIDATOR_REJECT = Uint8Array.of(0x08);

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;

/** A proposal as the validator sees it: the bytes kept in the results and the decoded result. */
function checkProposal(bytes: Uint8Array): { bytes: Uint8Array; result: BlockResult } {
  const decoded = decodeBlockResult(bytes);
  let fault: string | undefined;
  if (typeof decoded === 'string') fault = 'malformed';
  else if (decoded.code === 'vm_error' && reserved(decoded.message)) fault = 'uses_this_error';
  if (fault === undefined) return { bytes, result: decoded as BlockResult };
  const result: BlockResult = { code: 'vm_error', message: reasonMessage('leader_fault', `nondet_output ${fault}`) };
  return { bytes: encodeBlockResult(result), result };
}

/**
 * Runs a block's sub-instance (the leader's or the validator's method) and drops what it left in the call: its
 * log lines, and the bytes its registers, return value and logs held in max_execution_memory. Only the leader
 * and the validator run these methods (different ones) and a sync replay runs neither, so anything a block left
 * behind would give the deterministic code after it different room in each role: a leader's block that logged
 * or held a fetched page in a register made the leader fail with LogsOverflow or MemoryLimitExceeded where the
 * validators and the sync replay returned. The block's result is all that reaches the call. (Gas is the one
 * exception: a block's gas stays charged, docs/nondet.md "Known limits".)
 */
function spawnLeavingNothing(ex: Execution, request: SubInstanceRequest): BlockResult {
  const logs = ex.logs.length;
  const held = ex.budget.used;
  try {
    return ex.spawn(request);
  } finally {
    ex.logs.length = logs;
    ex.budget.rewind(held);
  }
}

export class NondetBlocks {
  /** The next block's call_no. */
  private next = 0;
  /** One entry per block run so far, in call_no order (block encoding). */
  readonly results: Uint8Array[] = [];
  /** Bytes of `results`: they leave with the effects, so they count against max_effect_bytes as they come. */
  private resultBytes = 0;
  disagreement: NondetDisagreement | null = null;
  /** An accepted proposal's VMError ended the run (the leader's run ended at the same block). */
  private endedByProposal = false;

  constructor(
    private readonly leaderResults: readonly Uint8Array[] | null,
    private readonly sync: boolean,
  ) {}

  get role(): NondetRole {
    return this.leaderResults === null ? 'leader' : this.sync ? 'sync' : 'validator';
  }

  /**
   * Runs block `call_no` from the main instance `ex`. Returns a Return or UserError to the contract; a VMError
   * (the leader's, or an accepted proposal's), a disagreement or a missing proposal ends the execution.
   */
  run(ex: Execution, leader: string, validator: string, input: Uint8Array): BlockResult {
    const callNo = this.next;
    if (callNo >= NONDET_LIMITS.maxNondetBlocks) {
      throw endWith(reasonMessage('OOM', `nondet_blocks: an execution may run at most ${NONDET_LIMITS.maxNondetBlocks} non-deterministic blocks`));
    }
    this.next++;
    const rules = { kind: 'nondet' as const, deterministic: false, writeOps: false, depth: ex.rules.depth + 1 };
    let result: BlockResult;
    if (this.leaderResults === null) {
      result = spawnLeavingNothing(ex, { method: leader, input, rules: extend(rules, { leaderResult: null }) });
      this.keep(ex, encodeBlockResult(result));
    } else {
      const proposal = this.leaderResults[callNo];
      if (proposal === undefined) throw endWith(reasonMessage('absent'));
      const checked = checkProposal(proposal);
      this.keep(ex, checked.bytes);
      if (!this.sync) {
        const verdict = spawnLeavingNothing(ex, { method: validator, input, rules: extend(rules, { leaderResult: checked.bytes }) });
        if (verdict.code !== 'return' || verdict.returnedNothing || !sameBytes(verdict.data, VALIDATOR_AGREE)) {
          const rejected = verdict.code === 'return' && sameBytes(verdict.data, VALIDATOR_REJECT);
          const reason = rejected ? 'the validator method rejected the proposal' : `the validator method answered ${describeBlockResult(verdict)}, not calldata true`;
          this.disagreement = { callNo, reason };
          throw endWith(reasonMessage('validator_disagrees', `call ${callNo}`));
        }
      }
      result = checked.result;
      if (result.code === 'vm_error') this.endedByProposal = true;
    }
    if (result.code === 'vm_error') throw endWith(result.message);
    return result;
  }

  /**
   * Keeps a block's result, or ends the execution with EffectsOverflow when the results together pass
   * max_effect_bytes: checked only when the call ended, 130 leader blocks of 25 MB results held 3.1 GB in the VM,
   * which its memory bound killed (internal_error, no gas charged) or, under a larger bound, ended EffectsOverflow
   * after 82e9 gas. Every role keeps the same bytes (a validator and a sync replay keep the leader's proposal), so
   * every role ends at the same block, a validator before running its method on it.
   */
  private keep(ex: Execution, bytes: Uint8Array): void {
    this.resultBytes += bytes.length;
    const max = ex.message.limits.maxEffectBytes;
    if (this.resultBytes > max) {
      throw new GuestError('EffectsOverflow', 'run_nondet', `the non-deterministic blocks' results reached ${this.resultBytes} bytes, over max_effect_bytes ${max}`);
    }
    this.results.push(bytes);
  }

  /**
   * The execution's result after the run: proposals left unused mean the leader proposed more than it ran, when
   * this run ended where the leader's must have. Not when it ended for a reason of its own: an internal failure,
   * or running out of gas outside a proposal (a validator's blocks use other gas than the leader's, so an honest
   * leader's run may go further; docs/nondet.md, "Known limits"). Blaming the leader then turned the validator's
   * own out_of_gas or internal_error into leader_fault.
   */
  finish(result: ExecutionResult): ExecutionResult {
    if (this.leaderResults === null || this.disagreement !== null || this.next >= this.leaderResults.length) return result;
    if (result.code === 'internal_error') return result;
    if (result.code === 'vm_error' && result.message === reasonMessage('out_of_gas') && !this.endedByProposal) return result;
    return reasonResult('leader_fault', 'nondet_output extra');
  }
}
