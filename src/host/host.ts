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
import { HostlinkError } from '../errors.js';
import { emptyEffects, type Effects } from '../protocol/effects.js';
import { buildMessage, DEFAULT_LIMITS, type FloatPolicy, type MessageInit, type VmLimits } from '../protocol/message.js';
import { encodeResult, type ExecutionResult } from '../protocol/result.js';
import type { ChannelImpl } from '../transport/connect.js';
import { Job, type JobEnd, type VmCrash } from './job.js';
import type { SessionBackend } from './methods.js';
import type { FetchPolicy } from './node/fetch.js';
import { NodeServices } from './node/services.js';
import { VmPool } from './pool.js';
import { serveSession, Session } from './session.js';
import { getCode, putCode } from './state/code-store.js';
import type { KvStore } from './state/kv.js';
import { openLmdbStore } from './state/lmdb-store.js';
import { createMemoryStore } from './state/memory-store.js';
import { applyDelta, listState, readState, stateRoot } from './state/merkle.js';
import { ModuleRejected, prepareModule } from '../vm/instrument/index.js';
import { policyFor } from '../vm/policy.js';
import type { SandboxSetting } from './sandbox/plan.js';
import { launchVm, type Transport, type VmProcess } from './supervisor.js';

export type ExecutionMode = 'pool' | 'oneshot';

export interface HostOptions {
  /** LMDB directory; omit for an in-memory store (tests, embedding). */
  dataDir?: string;
  /** A store to use instead of opening one (the Host then does not close it). */
  store?: KvStore;
  transport?: Transport;
  mode?: ExecutionMode;
  poolSize?: number;
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
  /**
   * The VM processes' OS sandbox (docs/security.md): 'required' (default, or HOSTLINK_SANDBOX) refuses to run a
   * VM without every essential layer; 'best-effort' runs with what this machine allows and warns; 'off' runs
   * VMs as plain child processes. An object also sets the VM user, memory and limits.
   */
  sandbox?: SandboxSetting;
}

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
  result: ExecutionResult;
  /** The result in seed-000 encoding (code byte + calldata), as the VM sent it. */
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
}

export const DEFAULT_HOST_OPTIONS = {
  transport: 'unix',
  mode: 'pool',
  poolSize: 2,
  deadlineMs: 10_000,
  killGraceMs: 500,
} as const;

export class Host {
  private pool: VmPool | null = null;
  private readonly lanes = new Map<string, Promise<unknown>>();
  private closed = false;
  private readonly backend: SessionBackend;
  /** One-shot VMs running right now. */
  private readonly oneShotVms = new Set<VmProcess>();
  /** Private storage, contexts, proposals and blobs: inspect and seed them here (src/host/node/services.ts). */
  readonly node: NodeServices;

  private constructor(
    readonly store: KvStore,
    private readonly ownsStore: boolean,
    private readonly options: HostOptions,
  ) {
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

  static async open(options: HostOptions = {}): Promise<Host> {
    if (options.store) return new Host(options.store, false, options);
    const store = options.dataDir === undefined ? createMemoryStore() : await openLmdbStore(options.dataDir);
    return new Host(store, true, options);
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
    if (!WebAssembly.validate(code)) {
      throw new HostlinkError('usage', 'not a valid WebAssembly module: compile the contract to .wasm first (see examples/)');
    }
    if (options.check !== false) {
      try {
        prepareModule(code, policyFor({ limits: { ...DEFAULT_LIMITS, ...this.options.limits }, floats: this.options.floats ?? 'canonicalize' }));
      } catch (e) {
        if (e instanceof ModuleRejected) throw new HostlinkError('usage', `contract refused: ${e.message.replace(/^module rejected: /, '')}`);
        throw e;
      }
    }
    return putCode(this.store, code);
  }

  hasCode(codeHash: Uint8Array): boolean {
    return getCode(this.store, codeHash) !== undefined;
  }

  /** Runs a method and applies its outcome; then runs its event handlers and xcalls (see FollowUp). */
  async call(request: CallRequest): Promise<Outcome> {
    return this.callAt(request, 0);
  }

  private async callAt(request: CallRequest, depth: number): Promise<Outcome> {
    this.assertOpen();
    const { mode, deadlineMs, ...init } = request;
    const messageJson = buildMessage({
      ...init,
      gasLimit: init.gasLimit ?? this.options.gasLimit,
      floats: init.floats ?? this.options.floats,
      limits: { ...this.options.limits, ...init.limits },
    } as MessageInit);
    const job = new Job(messageJson); // validates the message before anything starts
    const lane = Buffer.from(request.contextId).toString('hex');
    const outcome = await this.serialize(lane, async () => {
      const deadline = deadlineMs ?? this.opt('deadlineMs');
      const end = (mode ?? this.opt('mode')) === 'pool' ? await this.runPooled(job, deadline) : await this.runOneShot(job, deadline);
      return this.finish(job, end);
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
        const request: CallRequest = { ...parent, codeHash: this.codeFor(f.contextId, parent.codeHash), method: f.method, input: f.input, contextId: f.contextId };
        done.push({ ...base, outcome: await this.callAt(request, depth + 1) });
      }
    }
    return done;
  }

  /** A context's entries (sorted by key) and state root. */
  state(contextId: Uint8Array): { root: Uint8Array; entries: [Uint8Array, Uint8Array][] } {
    const entries = [...listState(this.store, contextId)].sort(([a], [b]) => Buffer.compare(a, b));
    return { root: stateRoot(this.store, contextId), entries };
  }

  /** Process ids of the VM processes executing a call right now. */
  busyVmPids(): number[] {
    return [...(this.pool?.busyPids() ?? []), ...[...this.oneShotVms].map((vm) => vm.pid)];
  }

  /** Pool statistics, or null when no pool was started. */
  get poolStats(): VmPool['stats'] | null {
    return this.pool?.stats ?? null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.lanes.values()]);
    await this.pool?.close(this.opt('killGraceMs') * 4);
    this.node.close();
    if (this.ownsStore) await this.store.close();
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
      });
      this.pool.start();
    }
    this.pool.submit(job, deadlineMs);
    return job.done;
  }

  private launchOptions(): { transport: Transport; command?: readonly string[]; channel?: ChannelImpl; sandbox?: SandboxSetting } {
    return {
      transport: this.opt('transport'),
      ...(this.options.sandbox !== undefined ? { sandbox: this.options.sandbox } : {}),
      ...(this.options.vmCommand ? { command: this.options.vmCommand } : {}),
      ...(this.options.channel ? { channel: this.options.channel } : {}),
    };
  }

  private async runOneShot(job: Job, deadlineMs: number): Promise<JobEnd> {
    const grace = this.opt('killGraceMs');
    const vm = await launchVm({ ...this.launchOptions(), message: job.messageJson });
    this.oneShotVms.add(vm);
    void vm.exited.then(() => this.oneShotVms.delete(vm));
    const timer = setTimeout(() => {
      if (job.end({ kind: 'timeout' })) void vm.stop(grace);
    }, deadlineMs);
    // Whichever comes first ends the job: the result, the process's exit (a crash), or the deadline.
    void vm.exited.then(() => job.end({ kind: 'crash', crash: vm.crash() }));
    void vm.connection.then(
      async (socket) => {
        const { error } = await serveSession(new Session(this.backend, { oneShot: job }), socket);
        if (error && job.end({ kind: 'protocol', message: error.message })) void vm.stop(grace);
        socket.destroy();
      },
      () => undefined, // exited before connecting: the exit handler reports the crash
    );
    const end = await job.done;
    clearTimeout(timer);
    void vm.reap(grace);
    return end;
  }

  private async finish(job: Job, end: JobEnd): Promise<Outcome> {
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
        result = { code: 'vm_error', message: 'timeout', fingerprint: null };
        break;
      case 'crash': {
        crash = end.crash;
        const how = crash.signal ? `signal ${crash.signal}` : `exit code ${crash.exitCode}`;
        const last = crash.stderr.trim().split('\n').pop() ?? '';
        result = { code: 'internal_error', message: `vm_crash the VM process ended (${how}) without a result${last ? `: ${last}` : ''}`, fingerprint: null };
        break;
      }
      case 'protocol':
        result = { code: 'internal_error', message: `protocol_violation ${end.message}`, fingerprint: null };
        break;
    }
    const applied = result.code === 'return';
    let root: Uint8Array;
    try {
      root = applied
        ? await this.store.write((txn) => (this.node.apply(txn, job, effects), applyDelta(txn, contextId, effects.writes)))
        : stateRoot(this.store, contextId);
    } finally {
      this.node.settle(job); // staged blobs not committed are deleted, alias reservations end
    }
    return {
      result,
      resultBytes: encodeResult(result),
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
    };
  }
}
