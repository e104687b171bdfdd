/**
 * The Host: the node-side library. It stores code and state, runs executions in VM processes (a warm pool or
 * one process per call), and applies each successful execution's delta atomically with the new state root.
 *
 *   const host = await Host.open({ dataDir: '.hostlink' });
 *   const codeHash = await host.deploy(wasmBytes);
 *   const outcome = await host.call({ codeHash, method: 'set', input, contextId });
 *
 * Calls on the same context run one after another (each sees the previous one's committed state); calls on
 * different contexts run in parallel, up to the pool size.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HostlinkError, isHostlinkError } from '../errors.js';
import { emptyEffects, type Effects, type NondetDisagreement } from '../protocol/effects.js';
import { executionHash } from '../protocol/execution-hash.js';
import { buildMessage, DEFAULT_LIMITS, type FloatPolicy, type MessageInit, type VmLimits } from '../protocol/message.js';
import { encodeResult, type ExecutionResult } from '../protocol/result.js';
import type { ChannelImpl } from '../transport/connect.js';
import { callReason, HostEvents, type CallInfo } from './events.js';
import { Job, type JobEnd, type VmCrash } from './job.js';
import { silentLogger, type HostLogger } from './logger.js';
import type { SessionBackend } from './methods.js';
import type { FetchPolicy } from './node/fetch.js';
import { AliasConflict, MutationRefused } from './node/contexts.js';
import { NodeServices } from './node/services.js';
import { ModuleChecker } from './module-check.js';
import { checkCallOptions, checkHostOptions } from './options.js';
import { VmPool } from './pool.js';
import { attachRemoteWorkers, type RemoteWorkers, type RemoteWorkersOptions } from '../worker/attach.js';
import { serveSession, Session, type WorkSource } from './session.js';
import { getCode, putCode } from './state/code-store.js';
import { lockDataDir, type DataDirLock } from './state/data-dir.js';
import type { KvStore } from './state/kv.js';
import { openLmdbStore } from './state/lmdb-store.js';
import { createMemoryStore } from './state/memory-store.js';
import { applyDelta, listState, readState, stateRoot } from './state/merkle.js';
import type { SandboxSetting } from './sandbox/plan.js';
import { launchVm, type Transport, type VmProcess } from './supervisor.js';
import { reasonResult } from '../protocol/reasons.js';

export type ExecutionMode = 'pool' | 'oneshot';

export interface HostOptions {
  /** LMDB directory; omit for an in-memory store (tests, embedding). */
  dataDir?: string;
  /** A store to use instead of opening one (the Host then does not close it). */
  store?: KvStore;
  transport?: Transport;
  mode?: ExecutionMode;
  poolSize?: number;
  /**
   * Jobs a pool VM serves before it is replaced by a fresh process (default: unlimited). A warm VM keeps
   * compiled code and JIT state between calls of different contexts; 1 gives every call its own process
   * (the isolation of one-shot mode, at its start-up cost). See docs/architecture.md, "Pool tenancy".
   */
  recycleAfter?: number;
  /** A pool VM with no work for this long exits (default 60 000 ms); the pool starts another when work comes. */
  poolIdleTimeoutMs?: number;
  /** Wall-clock budget of one execution; at the deadline the VM is stopped and the call is VMError("timeout"). */
  deadlineMs?: number;
  /** Time between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  /** Default limits and gas for every call (a call may override them). */
  limits?: Partial<VmLimits>;
  gasLimit?: bigint;
  /** Canonicalise NaNs (default) or reject modules that use floating point. */
  floats?: FloatPolicy;
  /**
   * Follow-up calls after a successful call (event handlers, then xcalls): at most `maxBreadth` per call and
   * `maxDepth` levels below the original call. Defaults 8 and 3 (the reference system's caps).
   */
  followUps?: { maxBreadth?: number; maxDepth?: number };
  /** Command that starts a VM (default: this installation's `hostlink vm`). */
  vmCommand?: readonly string[];
  channel?: ChannelImpl;
  /** Origins the guest's fetch may reach, with time and size limits; without it every fetch is blocked. */
  fetch?: FetchPolicy;
  /** Where the host reports VM crashes and listener failures (default: nowhere). Events: `host.events`. */
  logger?: HostLogger;
  /** Record each call's storage reads in its call.finished event, for replay (`hostlink call --trace`). */
  traceReads?: boolean;
  /**
   * The VM processes' OS sandbox (docs/security.md): 'required' (default, or HOSTLINK_SANDBOX) refuses to run a
   * VM without every essential layer; 'best-effort' runs with what this machine allows and warns; 'off' runs
   * VMs as plain child processes. An object also sets the VM user, memory and limits.
   */
  sandbox?: SandboxSetting;
  /** Pool VMs run on remote workers that register at this TLS endpoint (src/worker/, docs/deploy.md). */
  workers?: RemoteWorkersOptions;
}

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
  /** Why it was not run: the breadth or depth limit. */
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

/** Runs of one call that met an AliasConflict (each conflict means another call committed that alias first). */
const MAX_CONFLICT_ATTEMPTS = 3;

export const DEFAULT_HOST_OPTIONS = {
  transport: 'unix',
  mode: 'pool',
  poolSize: 2,
  deadlineMs: 10_000,
  killGraceMs: 500,
} as const;

export class Host {
  private pool: VmPool | null = null;
  /** The data directory's lock, held from open to close (none for an in-memory or given store). */
  private lock: DataDirLock | null = null;
  private readonly lanes = new Map<string, Promise<unknown>>();
  private closed = false;
  private readonly backend: SessionBackend;
  /** One-shot VMs running right now, each with the job it was started for. */
  private readonly oneShotVms = new Map<VmProcess, Job>();
  /** Validates and instruments deployed modules in a worker thread (module-check.ts). */
  private readonly checker = new ModuleChecker();
  /** Private storage, contexts, proposals and blobs: inspect and seed them here (src/host/node/services.ts). */
  readonly node: NodeServices;
  /** Typed events: calls queued, started, finished; VMs launched, exited, crashed (src/host/events.ts). */
  readonly events: HostEvents;
  private readonly logger: HostLogger;
  /** Remote workers (HostOptions.workers): their Runtime endpoint and slot table; null when not configured. */
  readonly remote: RemoteWorkers | null;
  private nextCallId = 1;

  private constructor(
    readonly store: KvStore,
    private readonly ownsStore: boolean,
    private readonly options: HostOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
    this.events = new HostEvents(this.logger);
    this.remote = options.workers !== undefined ? attachRemoteWorkers(options.workers, this.logger) : null;
    this.node = new NodeServices(store, {
      ...(options.dataDir !== undefined ? { blobDir: join(options.dataDir, 'blobs') } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    this.backend = {
      getCode: (hash) => getCode(store, hash),
      readState: (ctx, key) => readState(store, ctx, key),
      node: this.node,
    };
  }

  /**
   * Opens a host. With `dataDir`, the directory is locked for this Host until close(): a second Host on it, in
   * this process or another, is refused with an error naming the holder's pid (state/data-dir.ts).
   */
  static async open(options: HostOptions = {}): Promise<Host> {
    const host = await Host.openStore(options);
    await host.remote?.ready.catch(async (e: unknown) => {
      await host.close();
      throw e;
    });
    return host;
  }

  private static async openStore(options: HostOptions): Promise<Host> {
    checkHostOptions(options);
    if (options.store) return new Host(options.store, false, options);
    if (options.dataDir === undefined) return new Host(createMemoryStore(), true, options);
    const lock = lockDataDir(options.dataDir);
    try {
      const host = new Host(await openLmdbStore(options.dataDir), true, options);
      host.lock = lock;
      return host;
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  private opt<K extends keyof typeof DEFAULT_HOST_OPTIONS>(k: K): NonNullable<HostOptions[K]> | (typeof DEFAULT_HOST_OPTIONS)[K] {
    return (this.options[k] ?? DEFAULT_HOST_OPTIONS[k]) as NonNullable<HostOptions[K]>;
  }

  /** Stores contract code; returns its SHA-256 hash. Rejects bytes that are not a WebAssembly module. */
  /**
   * Stores contract code; returns its SHA-256 hash. By default the module must pass the checks the VM applies
   * with this host's limits (whitelist, module limits, imports from the catalogue), so a contract that could
   * never run is refused here with the rule it breaks. `check: false` stores any WebAssembly module (the VM
   * still checks it at every call).
   */
  async deploy(code: Uint8Array, options: { check?: boolean } = {}): Promise<Uint8Array> {
    this.assertOpen();
    const limits = { ...DEFAULT_LIMITS, ...this.options.limits };
    // The size budget is checked here, before any copy or work; the rest runs in the check worker.
    if (code.length > limits.maxModuleSize) {
      throw new HostlinkError('usage', `contract refused: module_too_large: ${code.length} bytes, limit ${limits.maxModuleSize} (max_module_size)`);
    }
    await this.checker.check(code, limits, this.options.floats ?? 'canonicalize', options.check !== false);
    this.assertOpen();
    return putCode(this.store, code);
  }

  /** The stored code with this hash, or undefined. */
  code(codeHash: Uint8Array): Uint8Array | undefined {
    return getCode(this.store, codeHash);
  }

  hasCode(codeHash: Uint8Array): boolean {
    return getCode(this.store, codeHash) !== undefined;
  }

  /** Runs a method and applies its outcome; then runs its event handlers and xcalls (see FollowUp). */
  async call(request: CallRequest): Promise<Outcome> {
    return this.callAt(request, 0, null);
  }

  /**
   * Runs a method against the committed state and applies nothing: the outcome says what it returned and
   * what it would have written (`applied` is false, no follow-ups run, blobs it staged are dropped). It queues
   * on the context like a call, so it sees every call submitted before it.
   */
  async view(request: CallRequest): Promise<Outcome> {
    return this.callAt(request, 0, null, true);
  }

  private async callAt(request: CallRequest, depth: number, parentCallId: number | null, view = false): Promise<Outcome> {
    this.assertOpen();
    checkCallOptions(request);
    const { mode, deadlineMs, ...init } = request;
    const messageJson = buildMessage({
      ...init,
      gasLimit: init.gasLimit ?? this.options.gasLimit,
      floats: init.floats ?? this.options.floats,
      limits: { ...this.options.limits, ...init.limits },
    } as MessageInit);
    const callMode = mode ?? this.opt('mode');
    const info: CallInfo = { callId: this.nextCallId++, parentCallId, method: request.method, contextId: request.contextId, codeHash: request.codeHash, mode: callMode };
    const queuedAt = performance.now();
    const newJob = (): Job => {
      const j = new Job(messageJson); // validates the message before anything starts
      if (this.options.traceReads) j.trace.reads = [];
      j.trace.onBegin = (t) => this.events.emit('call.started', { ...info, vmPid: t.vmPid, queueMs: (t.startedAt ?? queuedAt) - queuedAt });
      return j;
    };
    let job = newJob();
    this.events.emit('call.queued', info);
    const lane = Buffer.from(request.contextId).toString('hex');
    const outcome = await this.serialize(lane, async () => {
      const deadline = deadlineMs ?? this.opt('deadlineMs');
      for (let attempt = 1; ; attempt++) {
        const end = callMode === 'pool' ? await this.runPooled(job, deadline) : await this.runOneShot(job, deadline);
        const done = await this.finish(job, end, info, queuedAt, view, attempt < MAX_CONFLICT_ATTEMPTS && !this.closed);
        if (done !== 'conflict') return done;
        job = newJob(); // another call committed an alias this one took first: run it again on the new state
      }
    }).catch((e: unknown) => {
      // No outcome (the store failed, a VM could not be launched): say so, so no watcher waits for it forever.
      this.events.emit('call.failed', { ...info, error: (e as Error)?.message ?? String(e) });
      throw e;
    });
    // Outside the lane: a handler on the same context queues behind the call that emitted it.
    if (outcome.applied) outcome.followUps = await this.runFollowUps(request, outcome, depth);
    return outcome;
  }

  /**
   * The contract a follow-up runs in a context: the context's application when it was created with
   * context_create and its application id is deployed code, otherwise the caller's contract.
   */
  private codeFor(contextId: Uint8Array, callerCode: Uint8Array): Uint8Array {
    const app = this.node.context(contextId)?.applicationId;
    return app !== undefined && this.hasCode(app) ? app : callerCode;
  }

  private async runFollowUps(parent: CallRequest, outcome: Outcome, depth: number): Promise<FollowUp[]> {
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
      if (this.closed) done.push({ ...base, skipped: 'the host closed before this follow-up ran' });
      else if (depth + 1 > maxDepth) done.push({ ...base, skipped: `depth limit: follow-ups run at most ${maxDepth} levels deep` });
      else if (i >= maxBreadth) done.push({ ...base, skipped: `breadth limit: at most ${maxBreadth} follow-ups per call` });
      else {
        // A follow-up is a call of its own: it runs its blocks as a leader (docs/nondet.md).
        const { nondet: _role, ...inherited } = parent;
        const request: CallRequest = { ...inherited, codeHash: this.codeFor(f.contextId, parent.codeHash), method: f.method, input: f.input, contextId: f.contextId };
        done.push({ ...base, outcome: await this.callAt(request, depth + 1, outcome.callId) });
      }
    }
    return done;
  }

  /** A context's entries (sorted by key) and state root. */
  state(contextId: Uint8Array): { root: Uint8Array; entries: [Uint8Array, Uint8Array][] } {
    const entries = [...listState(this.store, contextId)].sort(([a], [b]) => Buffer.compare(a, b));
    return { root: stateRoot(this.store, contextId), entries };
  }

  /**
   * Process ids of the VM processes executing a call right now. A VM whose call already ended (its deadline
   * passed and it is being stopped, or it sent its result and is exiting) is not busy, though it may live on
   * for a moment: callers that act on a busy VM (an operator's kill, a test) must not hit a finished one.
   */
  busyVmPids(): number[] {
    const oneShot = [...this.oneShotVms].filter(([, job]) => job.ending === undefined).map(([vm]) => vm.pid);
    return [...(this.pool?.busyPids() ?? []), ...oneShot];
  }

  /** Process ids of every VM process the host runs right now (pool and one-shot). */
  vmPids(): number[] {
    return [...(this.pool?.pids() ?? []), ...[...this.oneShotVms.keys()].map((vm) => vm.pid)];
  }

  /** Pool statistics, or null when no pool was started. */
  get poolStats(): VmPool['stats'] | null {
    return this.pool?.stats ?? null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.lanes.values()]);
    // Together: a pool launch waiting for a remote slot ends when the remote launcher closes.
    await Promise.all([this.pool?.close(this.opt('killGraceMs') * 4), this.remote?.close()]);
    await this.checker.close();
    this.node.close();
    try {
      if (this.ownsStore) await this.store.close();
    } finally {
      this.lock?.release();
      this.lock = null;
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new HostlinkError('usage', 'the host is closed');
  }

  /** Runs fn after every earlier call on the same lane (context) has finished. */
  private serialize<T>(lane: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.lanes.get(lane) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.lanes.set(lane, tail);
    void tail.then(() => {
      if (this.lanes.get(lane) === tail) this.lanes.delete(lane);
    });
    return next;
  }

  private runPooled(job: Job, deadlineMs: number): Promise<JobEnd> {
    if (this.pool === null) {
      this.pool = new VmPool(this.backend, {
        size: this.opt('poolSize'),
        killGraceMs: this.opt('killGraceMs'),
        launch: this.launchOptions(),
        ...(this.remote !== null ? { launcher: this.remote.launcher } : {}),
        ...(this.options.recycleAfter !== undefined ? { recycleAfter: this.options.recycleAfter } : {}),
        ...(this.options.poolIdleTimeoutMs !== undefined ? { idleTimeoutMs: this.options.poolIdleTimeoutMs } : {}),
      });
    }
    this.pool.submit(job, deadlineMs);
    return job.done;
  }

  private launchOptions(): { transport: Transport; command?: readonly string[]; channel?: ChannelImpl; events: HostEvents; sandbox?: SandboxSetting } {
    return {
      transport: this.opt('transport'),
      events: this.events,
      ...(this.options.sandbox !== undefined ? { sandbox: this.options.sandbox } : {}),
      ...(this.options.vmCommand ? { command: this.options.vmCommand } : {}),
      ...(this.options.channel ? { channel: this.options.channel } : {}),
    };
  }

  /**
   * One process for one call: the VM asks next_message like a pool VM, gets this job, and is answered
   * `absent` when it asks again, so the message travels over the authenticated channel, never on argv.
   */
  private async runOneShot(job: Job, deadlineMs: number): Promise<JobEnd> {
    const grace = this.opt('killGraceMs');
    let vm: VmProcess | undefined;
    const timer = setTimeout(() => {
      if (job.end({ kind: 'timeout' })) void vm?.stop(grace);
    }, deadlineMs);
    try {
      vm = await launchVm({ ...this.launchOptions(), role: 'oneshot' });
    } catch (e) {
      clearTimeout(timer);
      job.end({ kind: 'crash', crash: { exitCode: null, signal: null, stderr: `could not start a VM process: ${(e as Error).message}` } });
      return job.done;
    }
    const started = vm;
    job.trace.vmPid = started.pid; // the process we started, not what the VM says in hello
    this.oneShotVms.set(started, job);
    void started.exited.then(() => this.oneShotVms.delete(started));
    if (job.ending !== undefined) void started.stop(grace); // the deadline passed while launching
    // Whichever comes first ends the job: the result, the process's exit (a crash), or the deadline.
    void started.exited.then(() => job.end({ kind: 'crash', crash: started.crash() }));
    let given = false;
    const once: WorkSource = {
      nextJob: () => {
        if (given || job.ending !== undefined) return Promise.resolve(null);
        given = true;
        return Promise.resolve(job);
      },
    };
    void started.connection.then(
      async (socket) => {
        const { error } = await serveSession(new Session(this.backend, { pool: once }), socket);
        if (error && job.end({ kind: 'protocol', message: error.message })) void started.stop(grace);
        socket.destroy();
      },
      () => undefined, // exited before connecting: the exit handler reports the crash
    );
    const end = await job.done;
    clearTimeout(timer);
    void started.reap(grace);
    return end;
  }

  /**
   * Applies a job's outcome. 'conflict': another call committed first an alias this one took (only when
   * `retry`); the caller runs the call again on the new state so the outcome never depends on timing.
   */
  private async finish(job: Job, end: JobEnd, info: CallInfo, queuedAt: number, view: boolean, retry: boolean): Promise<Outcome | 'conflict'> {
    const endedAt = performance.now();
    const contextId = job.message.contextId;
    let result: ExecutionResult;
    let effects = emptyEffects();
    let crash: VmCrash | undefined;
    switch (end.kind) {
      case 'result':
        result = end.result;
        effects = end.effects;
        break;
      case 'timeout':
        result = reasonResult('timeout');
        break;
      case 'crash': {
        crash = end.crash;
        const how = crash.signal ? `signal ${crash.signal}` : `exit code ${crash.exitCode}`;
        const last = crash.stderr.trim().split('\n').pop() ?? '';
        result = reasonResult('vm_crash', `the VM process ended (${how}) without a result${last ? `: ${last}` : ''}`);
        break;
      }
      case 'protocol':
        result = reasonResult('protocol_violation', end.message);
        break;
    }
    let applied = result.code === 'return' && !view;
    let root: Uint8Array | undefined;
    try {
      if (applied) root = await this.store.write((txn) => (this.node.apply(txn, job, effects), applyDelta(txn, contextId, effects.writes)));
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

  /** call.finished (and vm.crashed) for a call that has its outcome. */
  private report(job: Job, info: CallInfo, outcome: Outcome, queuedAt: number, endedAt: number): void {
    const t = job.trace;
    const pid = t.startedAt === undefined ? null : t.vmPid;
    if (outcome.crash) {
      const lastLine = outcome.crash.stderr.trim().split('\n').pop() ?? '';
      this.logger.warn('a VM process ended without a result', { callId: info.callId, pid, exitCode: outcome.crash.exitCode, signal: outcome.crash.signal, lastLine });
      if (pid !== null) this.events.emit('vm.crashed', { pid, callId: info.callId, exitCode: outcome.crash.exitCode, signal: outcome.crash.signal, lastLine });
    }
    if (!this.events.has('call.finished')) return;
    const now = performance.now();
    const startedAt = t.startedAt ?? endedAt;
    const r = outcome.result;
    this.events.emit('call.finished', {
      ...info,
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
    });
  }
}
