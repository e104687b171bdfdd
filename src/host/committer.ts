/**
 * The committer: turns how a job ended into the call's Outcome and applies it. A Return's delta, node effects
 * and new state root are written in one transaction (nothing of a failed call is written); every call is then
 * settled at the node (staged blobs not committed are deleted, alias reservations end) and reported
 * (call.finished, vm.crashed). The scheduler runs a call again when the commit met an alias conflict.
 */
import { performance } from 'node:perf_hooks';
import { isHostlinkError } from '../errors.js';
import { emptyEffects, type Effects } from '../protocol/effects.js';
import { executionHash } from '../protocol/execution-hash.js';
import { reasonResult } from '../protocol/reasons.js';
import { encodeResult, type ExecutionResult } from '../protocol/result.js';
import type { Outcome } from './call-types.js';
import { CommitGroup } from './commit-group.js';
import { callReason, type CallInfo, type HostEvents } from './events.js';
import type { Job, JobEnd, VmCrash } from './job.js';
import type { HostLogger } from './logger.js';
import { AliasConflict, MutationRefused } from './node/contexts.js';
import type { KvStore, KvTxn } from './state/kv.js';
import { applyDelta, stateRoot } from './state/merkle.js';
import { extend } from '../extend.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The node's commit side: what only the committer may call. */
export interface NodeCommit {
  /** Makes the content of the blobs a successful call wrote durable; awaited before its transaction is issued. */
  storeBlobs(job: Job): Promise<void>;
  /** Applies a successful call's node effects inside its transaction. */
  apply(txn: KvTxn, job: Job, effects: Effects): void;
  /** Ends a call at the node, success or not. */
  settle(job: Job): void;
}

/** The result a call reports for a job that ended without one of its own. */
function endResult(end: Exclude<JobEnd, { kind: 'result' }>): ExecutionResult {
  switch (end.kind) {
    case 'timeout':
      return reasonResult('timeout');
    case 'crash': {
      const how = end.crash.signal ? `signal ${end.crash.signal}` : `exit code ${end.crash.exitCode}`;
      const last = end.crash.stderr.trim().split('\n').pop() ?? '';
      return reasonResult('vm_crash', `the VM process ended (${how}) without a result${last ? `: ${last}` : ''}`);
    }
    case 'protocol':
      return reasonResult('protocol_violation', end.message);
    case 'store_failed':
      return reasonResult('store', end.message);
  }
}

export class Committer {
  /** Told by the scheduler when jobs begin and end, so that the writes of calls ending together share a commit. */
  readonly group: CommitGroup;

  constructor(
    private readonly store: KvStore,
    private readonly node: NodeCommit,
    private readonly events: HostEvents,
    private readonly logger: HostLogger,
    /** The longest a finished call's write waits for the calls running beside it (HostOptions.commitGroupMs). */
    commitGroupMs: number,
  ) {
    this.group = new CommitGroup(commitGroupMs);
  }

  /**
   * Applies a job's outcome. 'conflict': another call committed first an alias this one took (only when
   * `retry`); the caller runs the call again on the new state so the outcome never depends on timing.
   */
  /** `endedAt`: when the VM's work ended (an early run then waits for the call before it: apply time, not VM). */
  async finish(job: Job, end: JobEnd, endedAt: number, info: CallInfo, queuedAt: number, view: boolean, retry: boolean): Promise<Outcome | 'conflict'> {
    const contextId = job.message.contextId;
    const effects = end.kind === 'result' ? end.effects : emptyEffects();
    let result = end.kind === 'result' ? end.result : endResult(end);
    const crash: VmCrash | undefined = end.kind === 'crash' ? end.crash : undefined;
    const accepted = job.acceptedExecutionHash;
    if (accepted !== null && end.kind === 'result') {
      const own = executionHash(encodeResult(result), effects);
      if (Buffer.compare(own, accepted) !== 0) {
        const ended = result.code === 'return' ? 'returned' : `ended ${result.code} ${result.message}`;
        result = reasonResult('replay_diverged', `the call ${ended} with execution hash ${hex(own)}, not the accepted ${hex(accepted)}: nothing was applied`);
      }
    }
    let applied = result.code === 'return' && !view;
    let root: Uint8Array | undefined;
    try {
      if (applied) {
        // Blob content first, outside the group's hold and lmdb's batch: its record must not be durable before it.
        await this.node.storeBlobs(job);
        root = await this.group.write(() => this.store.write((txn) => (this.node.apply(txn, job, effects), applyDelta(txn, contextId, effects.writes))));
      }
    } catch (e) {
      // Nothing of the call was written (the transaction rolled back); the outcome says why.
      applied = false;
      if (e instanceof AliasConflict && retry) return 'conflict';
      if (e instanceof AliasConflict) result = reasonResult('conflict', `${e.message}, again after retries`);
      else if (e instanceof MutationRefused) result = { code: 'vm_error', message: e.message, fingerprint: null };
      else if (isHostlinkError(e, 'store')) result = reasonResult('store', e.message);
      else throw e;
    } finally {
      this.node.settle(job); // staged blobs not committed are deleted, alias reservations end
    }
    root ??= stateRoot(this.store, contextId);
    const resultBytes = encodeResult(result);
    const outcome: Outcome = {
      callId: info.callId,
      result,
      resultBytes,
      logs: effects.logs,
      events: effects.events,
      xcalls: effects.xcalls,
      writes: effects.writes,
      gasUsed: effects.gasUsed,
      applied,
      stateRoot: root,
      artifact: applied ? effects.artifact : null,
      rootHash: applied ? effects.rootHash : null,
      ...(crash ? { crash } : {}),
      followUps: [],
      nondetResults: effects.nondetResults,
      disagreement: effects.nondetDisagreement,
      executionHash: executionHash(resultBytes, effects),
    };
    this.report(job, info, outcome, queuedAt, endedAt);
    return outcome;
  }

  /**
   * Ends an early run that did not stand (speculation.ts) without an outcome: nothing of it is applied or
   * reported; what it staged at the node is dropped. The call runs again.
   */
  discard(job: Job, end: JobEnd, info: CallInfo): void {
    this.node.settle(job);
    // Its VM's crash is still one (metrics, logs), though the call runs again.
    if (end.kind === 'crash') this.reportCrash(job, info, end.crash);
  }

  /** The warning and vm.crashed for a VM that ended without a result. */
  private reportCrash(job: Job, info: CallInfo, crash: VmCrash): void {
    const pid = job.trace.startedAt === undefined ? null : job.trace.vmPid;
    const lastLine = crash.stderr.trim().split('\n').pop() ?? '';
    this.logger.warn('a VM process ended without a result', { callId: info.callId, pid, exitCode: crash.exitCode, signal: crash.signal, lastLine });
    const worker = crash.worker !== undefined ? { worker: crash.worker } : {};
    if (pid !== null) this.events.emit('vm.crashed', { pid, callId: info.callId, exitCode: crash.exitCode, signal: crash.signal, lastLine, ...worker });
  }

  /** call.finished (and vm.crashed) for a call that has its outcome. */
  private report(job: Job, info: CallInfo, outcome: Outcome, queuedAt: number, endedAt: number): void {
    const t = job.trace;
    const pid = t.startedAt === undefined ? null : t.vmPid;
    if (outcome.crash) this.reportCrash(job, info, outcome.crash);
    if (!this.events.has('call.finished')) return;
    const now = performance.now();
    const startedAt = t.startedAt ?? endedAt;
    const r = outcome.result;
    this.events.emit('call.finished', extend(info, {
      result: r.code,
      reason: callReason(r),
      message: r.code === 'return' ? null : r.message,
      applied: outcome.applied,
      gasUsed: outcome.gasUsed,
      stateRoot: outcome.stateRoot,
      vmPid: pid,
      durations: { queueMs: startedAt - queuedAt, vmMs: endedAt - startedAt, applyMs: now - endedAt, totalMs: now - queuedAt },
      hostCalls: t.counts,
      roundTrips: t.roundTrips,
      trace: t.entries,
      traceDropped: t.dropped,
      messageJson: job.messageJson,
      reads: t.reads,
      readsComplete: t.readsComplete,
      outcome,
    }));
  }
}
