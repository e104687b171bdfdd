/**
 * The scheduler: when each call runs. Calls on the same context queue on its lane and are applied one after
 * another (each sees the previous one's committed state; the next one may start while the previous one commits,
 * answered as after it: speculation.ts); calls on different contexts run in parallel, as far as the executor
 * allows. A call that met an alias conflict at commit runs again on the new state (at most
 * MAX_CONFLICT_ATTEMPTS runs), so its outcome never depends on timing. After a call applied, its event
 * handlers and xcalls run as calls of their own, within the breadth and depth limits and the tree's gas; a
 * follow-up that ends by a node failure (internal_error) halts the rest of the tree (FollowUpHalt).
 */
import { performance } from 'node:perf_hooks';
import { HostlinkError } from '../errors.js';
import { MAX_FRAME_BYTES } from '../protocol/generated.js';
import { okResponseSize } from '../protocol/messages.js';
import { callSeed, followUpSeed } from '../protocol/call-ids.js';
import { buildMessage, type MessageDefaults } from '../protocol/message.js';
import { haltedFollowUpName, type CallRequest, type ExecutionMode, type FollowUp, type FollowUpHalt, type Outcome } from './call-types.js';
import type { Committer } from './committer.js';
import type { CallInfo, HostEvents } from './events.js';
import { Job, type JobEnd } from './job.js';
import { checkCallOptions } from './options.js';
import { extend } from '../extend.js';
import { EarlyRun, pendingWrites, SETTLED_NOTHING, SETTLED_UNKNOWN, type EarlyRunStats, type PendingWrites, type Settled } from './speculation.js';

/** Runs of one call that met an AliasConflict (each conflict means another call committed that alias first). */
const MAX_CONFLICT_ATTEMPTS = 3;

/** The node's defaults for what a call leaves out (gas limit, float policy, limits) come with the message's. */
export interface SchedulerOptions extends MessageDefaults {
  mode: ExecutionMode;
  deadlineMs: number;
  followUps?: { maxBreadth?: number; maxDepth?: number };
  traceReads?: boolean;
}

/** What the scheduler needs from its Host. */
export interface SchedulerDeps {
  events: HostEvents;
  committer: Committer;
  /** Runs a job in the executor of `mode`; resolves with how it ended. */
  execute(job: Job, mode: ExecutionMode, deadlineMs: number): Promise<JobEnd>;
  /** The application of a context created with deployed code, or undefined (see Host.applicationOf). */
  applicationOf(contextId: Uint8Array): Uint8Array | undefined;
  /** True once the host is closing: no retry, no follow-up starts. */
  closed(): boolean;
}

export class Scheduler {
  private readonly lanes = new Map<string, LaneTail>();
  private readonly earlyRuns: EarlyRunStats = { runs: 0, discarded: 0 };
  private nextCallId = 1;

  constructor(
    private readonly options: SchedulerOptions,
    private readonly deps: SchedulerDeps,
  ) {}

  /**
   * Runs a call (or a view: nothing applied, no follow-ups) at `depth` below the embedder's call. `gas` is what
   * is left of the embedder's call's gas limit for the calls it set off (its own included); a new tree starts
   * with the call's limit.
   */
  async call(request: CallRequest, depth: number, parentCallId: number | null, view = false, gas?: CallTree): Promise<Outcome> {
    checkCallOptions(request);
    const { mode, deadlineMs } = request;
    const messageJson = buildMessage(request, this.options);
    // A VM receives the message in one frame. Without this check an oversized one (leader_results have no size
    // bound of their own) reached the VM as limit_exceeded, which killed it: internal_error vm_crash, a result
    // a node retries although the same message can never run.
    const frame = okResponseSize('next_message', { message: messageJson });
    if (frame > MAX_FRAME_BYTES) {
      throw new HostlinkError('usage', `the call's message takes ${frame} bytes (input and leader results included), over the ${MAX_FRAME_BYTES}-byte frame a VM receives it in`);
    }
    const callMode = mode ?? this.options.mode;
    const info: CallInfo = { callId: this.nextCallId++, parentCallId, method: request.method, contextId: request.contextId, codeHash: request.codeHash, mode: callMode };
    const queuedAt = performance.now();
    const { events, committer } = this.deps;
    const newJob = (): Job => {
      const j = new Job(messageJson); // validates the message before anything starts
      j.acceptedExecutionHash = request.acceptedExecutionHash ?? null;
      if (this.options.traceReads) j.trace.reads = [];
      // The trace is read only by call.finished: a job made while nobody listens records no requests.
      j.trace.recording = events.has('call.finished');
      j.trace.onBegin = (t) => {
        // An early run cannot share the commit being waited for (it commits after it): not worth holding for.
        if (j.early === null) committer.group.begun(j);
        if (events.has('call.started')) events.emit('call.started', extend(info, { vmPid: t.vmPid, queueMs: (t.startedAt ?? queuedAt) - queuedAt }));
      };
      return j;
    };
    let job = newJob();
    events.emit('call.queued', info);
    const lane = Buffer.from(request.contextId).toString('hex');
    const outcome = await this.inLane(lane, async (previous, executionFinal) => {
      const deadline = deadlineMs ?? this.options.deadlineMs;
      // An early run while the previous call on this context commits; kept only if it stands after that commit.
      if (previous !== undefined) job.early = new EarlyRun(previous.writes);
      for (let conflicts = 1; ; ) {
        let end: JobEnd;
        try {
          end = await this.deps.execute(job, callMode, deadline);
        } finally {
          committer.group.end(job);
        }
        const endedAt = performance.now();
        const early = job.early;
        if (early !== null) {
          this.earlyRuns.runs++;
          if (!early.stands(await previous!.settled)) {
            this.earlyRuns.discarded++;
            committer.discard(job, end, info);
            job = newJob(); // its answers were not those of a run after the previous call: run it on that state
            continue;
          }
        }
        const returned = end.kind === 'result' && end.result.code === 'return' && !view;
        const writes = pendingWrites(returned, end.kind === 'result' ? end.effects : undefined);
        executionFinal(writes); // the next call on this context may start while this one commits
        const done = await committer.finish(job, end, endedAt, info, queuedAt, view, conflicts < MAX_CONFLICT_ATTEMPTS && !this.deps.closed());
        if (done !== 'conflict') return { outcome: done, settled: done.applied ? { kind: 'applied' as const, writes } : SETTLED_NOTHING };
        conflicts++;
        job = newJob(); // another call committed an alias this one took first: run it again on the new state
      }
    }).catch((e: unknown) => {
      // No outcome (the store failed, a VM could not be launched): say so, so no watcher waits for it forever.
      events.emit('call.failed', extend(info, { error: (e as Error)?.message ?? String(e) }));
      throw e;
    });
    // One gas limit for the whole tree: what a call used is gone for the follow-ups it sets off, so one call
    // cannot make the node do (breadth x depth) times the work its gas limit pays for.
    const tree: CallTree = gas ?? { limit: job.message.gasLimit, left: job.message.gasLimit, halted: null };
    tree.left = tree.left > outcome.gasUsed ? tree.left - outcome.gasUsed : 0n;
    // Outside the lane: a handler on the same context queues behind the call that emitted it.
    if (outcome.applied) outcome.followUps = await this.runFollowUps(request, outcome, depth, tree, callSeed(job.message));
    // Set on each call whose follow-ups the halt cut short, from the failed one's parent up to the embedder's.
    if (tree.halted !== null) {
      outcome.halted = tree.halted;
      if (gas === undefined) events.emit('call.halted', extend(info, { halt: tree.halted }));
    }
    return outcome;
  }

  /** Resolves once every call queued so far has finished. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.lanes.values()].map((tail) => tail.settled));
  }

  /** Early runs since the host opened (speculation.ts). */
  get earlyRunStats(): Readonly<EarlyRunStats> {
    return this.earlyRuns;
  }

  /** `parentSeed`: the parent's call seed (its message's, or the one derived from its fields). */
  private async runFollowUps(parent: CallRequest, outcome: Outcome, depth: number, gas: CallTree, parentSeed: Uint8Array): Promise<FollowUp[]> {
    const maxBreadth = this.options.followUps?.maxBreadth ?? 8;
    const maxDepth = this.options.followUps?.maxDepth ?? 3;
    const planned = [
      ...outcome.events
        .filter((e) => e.handler !== null)
        .map((e) => ({ kind: 'handler' as const, contextId: parent.contextId, method: e.handler!, input: e.data })),
      ...outcome.xcalls.map((x) => ({ kind: 'xcall' as const, contextId: x.contextId, method: x.function, input: x.params })),
    ];
    const done: FollowUp[] = [];
    for (const [i, f] of planned.entries()) {
      const base = { kind: f.kind, contextId: f.contextId, method: f.method };
      if (this.deps.closed()) done.push(extend(base, { skipped: 'the host closed before this follow-up ran' }));
      else if (depth + 1 > maxDepth) done.push(extend(base, { skipped: `depth limit: follow-ups run at most ${maxDepth} levels deep` }));
      else if (i >= maxBreadth) done.push(extend(base, { skipped: `breadth limit: at most ${maxBreadth} follow-ups per call` }));
      else if (gas.halted !== null) {
        // Before the gas and application checks: after a node failure neither says what this node would have done.
        gas.halted.notRun++;
        done.push(extend(base, { skipped: haltedText(gas.halted) }));
      } else if (gas.left === 0n) done.push(extend(base, { skipped: `gas limit: the call and its follow-ups used all ${gas.limit} gas of the call's gas limit` }));
      else if (f.method === '') done.push(extend(base, { skipped: 'no function: the xcall names an empty function' }));
      else {
        const codeHash = this.followUpCode(f.kind, f.contextId, parent);
        if (typeof codeHash === 'string') {
          done.push(extend(base, { skipped: codeHash }));
          continue;
        }
        // A follow-up is a call of its own: it runs its blocks as a leader (docs/nondet.md).
        // Its seed is its own, derived from the parent's and its place among the parent's follow-ups, seeded call
        // or not: one that reruns the parent's method, context and input must not draw the parent's random bytes
        // nor derive its created-context and proposal ids.
        const { nondet: _role, seed: _seed, ...inherited } = parent;
        const request: CallRequest = extend(inherited, {
          codeHash,
          gasLimit: gas.left,
          method: f.method,
          input: f.input,
          contextId: f.contextId,
          seed: followUpSeed(parentSeed, i, f.kind, f.contextId, f.method, f.input),
        });
        try {
          const o = await this.call(request, depth + 1, outcome.callId, false, gas);
          done.push(extend(base, { outcome: o }));
          // Its own follow-ups may have halted the tree already: the first failure is the one reported.
          if (o.result.code === 'internal_error' && gas.halted === null) halt(gas, extend(base, { callId: o.callId, result: o.result, reason: `${o.result.code} ${o.result.message}` }));
        } catch (e) {
          // The parent is applied: its caller gets its outcome, with this follow-up's failure in its place (a
          // follow-up that failed to run rejected the parent's call, and its caller took the applied call for lost).
          const reason = `failed: ${(e as Error)?.message ?? String(e)}`;
          done.push(extend(base, { skipped: reason }));
          if (gas.halted === null) halt(gas, extend(base, { callId: null, result: null, reason }));
        }
      }
    }
    return done;
  }

  /**
   * The contract a follow-up runs, or why it does not run. A handler runs the caller's contract in the caller's
   * context. An xcall runs the target context's own application (a context created by context_create with
   * deployed code), or the caller's contract when it targets the caller's own context; into any other context it
   * is refused: running the caller's code there would let one contract rewrite another's state.
   */
  private followUpCode(kind: FollowUp['kind'], contextId: Uint8Array, parent: CallRequest): Uint8Array | string {
    if (kind === 'handler') return parent.codeHash;
    const app = this.deps.applicationOf(contextId);
    if (app !== undefined) return app;
    if (Buffer.compare(contextId, parent.contextId) === 0) return parent.codeHash;
    return `no application: context ${Buffer.from(contextId).toString('hex')} has no deployed application (one given to context_create), and an xcall runs only a context's own application (or the caller's contract in its own context)`;
  }

  /**
   * Runs a call's `run` on its lane (context) once the call before it has a final execution. Where that call is
   * still committing, `run` is given its writes and the promise of how it settles: it then makes an early run
   * (speculation.ts). `run` calls `executionFinal` with its own writes once its execution is final, which lets
   * the next call start; it resolves when its call is settled.
   */
  private inLane(
    lane: string,
    run: (previous: { writes: PendingWrites; settled: Promise<Settled> } | undefined, executionFinal: (writes: PendingWrites) => void) => Promise<{ outcome: Outcome; settled: Settled }>,
  ): Promise<Outcome> {
    const before = this.lanes.get(lane);
    let executionFinal!: (writes: PendingWrites | null) => void;
    let settle!: (settled: Settled) => void;
    const tail: LaneTail = {
      // null: the call ended without a final execution (it failed): the next call does not start early.
      executed: new Promise<PendingWrites | null>((resolve) => (executionFinal = resolve)),
      settled: new Promise<Settled>((resolve) => (settle = resolve)),
      done: false,
    };
    this.lanes.set(lane, tail);
    const start = before === undefined ? Promise.resolve(null) : before.executed;
    return start.then(async (writes) => {
      const previous = before === undefined || before.done || writes === null ? undefined : { writes, settled: before.settled };
      let settled = SETTLED_UNKNOWN; // a call that ended without an outcome: what the store did is not known
      try {
        if (previous === undefined && before !== undefined) await before.settled;
        const r = await run(previous, executionFinal);
        settled = r.settled;
        return r.outcome;
      } finally {
        executionFinal(null);
        // Settled only after the call before it: a call that failed early must not let drain() or the next
        // call go ahead of a commit still in progress.
        if (before !== undefined) await before.settled;
        tail.done = true;
        settle(settled);
        if (this.lanes.get(lane) === tail) this.lanes.delete(lane);
      }
    });
  }
}

/** The last call queued on a lane: its writes once its execution is final, and how it settled. */
interface LaneTail {
  executed: Promise<PendingWrites | null>;
  settled: Promise<Settled>;
  done: boolean;
}

/** A call tree (the embedder's call and its follow-ups): the gas left of the call's limit, and whether it halted. */
export interface CallTree {
  readonly limit: bigint;
  left: bigint;
  /** Set by the first follow-up that ended by a node failure: nothing of the tree runs after it. */
  halted: FollowUpHalt | null;
}

/**
 * Halts a tree at a follow-up that ended by a node failure. The failure reports no gas (a VM stopped at its
 * deadline or crashed sends none) although it may have used the whole tree's: counted as 0, it gave the next
 * follow-up gas a faster node did not have. So nothing runs after it, and the tree's gas is gone.
 */
function halt(tree: CallTree, failed: Omit<FollowUpHalt, 'notRun'>): void {
  tree.halted = extend(failed, { notRun: 0 });
  tree.left = 0n;
}

/** A follow-up's `skipped` when the tree halted before it. */
function haltedText(h: FollowUpHalt): string {
  return `halted: the earlier follow-up ${haltedFollowUpName(h)} ended by a node failure (${h.reason}), so no later follow-up of the tree runs; run the call again or repair this node's state`;
}
