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
import { DEFAULT_LIMITS, type FloatPolicy, type VmLimits } from '../protocol/message.js';
import type { ChannelImpl } from '../transport/connect.js';
import type { CallRequest, ExecutionMode, Outcome } from './call-types.js';
import { Committer } from './committer.js';
import type { CommitStats } from './commit-group.js';
import { HostEvents } from './events.js';
import { Executor, type PoolStats } from './executor/executor.js';
import type { Launcher } from './launcher.js';
import { silentLogger, type HostLogger } from './logger.js';
import { ModuleChecker } from './module-check.js';
import type { FetchPolicy } from './node/fetch.js';
import { nodeInspection, type NodeInspection } from './node/inspection.js';
import { NodeServices, type SharedBlobs } from './node/services.js';
import { checkHostOptions, DEFAULT_HOST_OPTIONS } from './options.js';
import { normalizeSandbox, type SandboxSetting } from './sandbox/plan.js';
import { Scheduler } from './scheduler.js';
import type { EarlyRunStats } from './speculation.js';
import type { SessionBackend } from './session-types.js';
import { attachRemoteWorkers, type RemoteWorkers, type RemoteWorkersOptions } from '../worker/attach.js';
import { codeSize, getCode, putCode } from './state/code-store.js';
import { lockDataDir, type DataDirLock } from './state/data-dir.js';
import type { KvStore } from './state/kv.js';
import { openLmdbStore } from './state/lmdb-store.js';
import { createMemoryStore } from './state/memory-store.js';
import { listState, readState, readStateWithin, stateRoot } from './state/merkle.js';
import { processLauncher, type LaunchOptions, type Transport } from './supervisor.js';
import { threadLauncher } from './thread-launcher.js';
import { extend } from '../extend.js';

export type { CallRequest, ExecutionMode, FollowUp, FollowUpHalt, Outcome } from './call-types.js';

export interface HostOptions {
  /** LMDB directory; omit for an in-memory store (tests, embedding). */
  dataDir?: string;
  /**
   * A store to use instead of opening one (the Host then does not close it). A store whose tables outlive the
   * process (`store.persistent`, an LMDB store) needs `blobDir` or `dataDir` for the blob contents its `blobs`
   * records name: kept in memory, they would be lost at close while the records stay.
   */
  store?: KvStore;
  /**
   * Directory of blob contents (default `<dataDir>/blobs`; without either, blobs are kept in memory). For a Host
   * given a persistent `store`: the directory that belongs with it, kept and backed up together.
   */
  blobDir?: string;
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
  /**
   * Wall-clock budget of one execution, counted from when a VM takes it (time queued for a VM does not count); at
   * the deadline the VM is stopped and the call ends internal_error "timeout", a node failure (docs/results.md).
   */
  deadlineMs?: number;
  /** Time between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  /**
   * Group commit (default 4 ms; 0 turns it off): a finished call's write waits, at most this long, for the calls
   * running in other VMs at that moment, so that their writes share one durable commit. A call with nothing else
   * running is never held. It changes when an outcome is durable, never what it is (docs/state.md).
   */
  commitGroupMs?: number;
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
  /**
   * How VMs start: 'process' (default) dials the host; 'runtime' announces itself through the gRPC Runtime
   * handshake (docs/runtime.md); 'thread' runs each VM as a worker thread of this process, without any OS
   * sandbox, so it needs `sandbox: 'off'` (for embedding and tests; docs/security.md).
   */
  launcher?: 'process' | 'runtime' | 'thread';
  /** With launcher 'runtime': how long a VM has to call Initialize and prove its connection (default 5000 ms). */
  handshakeTimeoutMs?: number;
  /** Origins the guest's fetch may reach, with time and size limits; without it every fetch is blocked. */
  fetch?: FetchPolicy;
  /**
   * Where to read the contents of stored blobs this host does not hold itself: another host's `node`. For a host
   * over a copy of another's tables (the nodes of runConsensus), whose `blobs` records name contents it lacks.
   */
  sharedBlobs?: SharedBlobs;
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
  /** VMs run on remote workers that register at this TLS endpoint (src/worker/, docs/deploy.md), pool and one-shot alike. */
  workers?: RemoteWorkersOptions;
}

export class Host {
  /** The executors, started at their first call: warm VMs (pool) and one VM per call (one-shot). */
  private readonly executors: { pool?: Executor; oneshot?: Executor } = {};
  /** What starts this host's VMs (see launcher()); created with the first executor. */
  private vmLauncher: Launcher | null = null;
  /** The data directory's lock, held from open to close (none for an in-memory or given store). */
  private lock: DataDirLock | null = null;
  private closed = false;
  private readonly backend: SessionBackend;
  /** Validates and instruments deployed modules in a worker thread (module-check.ts). */
  private readonly checker = new ModuleChecker();
  /** The node tables and each execution's node state; the handlers and the committer use it whole. */
  private readonly services: NodeServices;
  /** Private storage, contexts, proposals and blobs: inspect them, and seed members, here (node/inspection.ts). */
  readonly node: NodeInspection;
  /** When each call runs: lanes per context, follow-ups, conflict retries (scheduler.ts). */
  private readonly scheduler: Scheduler;
  /** Turns jobs' ends into outcomes and commits them (committer.ts), grouping writes (commit-group.ts). */
  private readonly committer: Committer;
  /** Typed events: calls queued, started, finished; VMs launched, exited, crashed (src/host/events.ts). */
  readonly events: HostEvents;
  private readonly logger: HostLogger;
  /** Remote workers (HostOptions.workers): their Runtime endpoint and slot table; null when not configured. */
  readonly remote: RemoteWorkers | null;

  private constructor(
    readonly store: KvStore,
    private readonly ownsStore: boolean,
    private readonly options: HostOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
    this.events = new HostEvents(this.logger);
    this.remote = options.workers !== undefined ? attachRemoteWorkers(options.workers, this.logger, this.events) : null;
    this.services = new NodeServices(store, {
      ...(blobDirOf(options) !== undefined ? { blobDir: blobDirOf(options) } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.sharedBlobs ? { sharedBlobs: options.sharedBlobs } : {}),
    });
    this.node = nodeInspection(this.services);
    this.backend = {
      getCode: (hash) => getCode(store, hash),
      readState: (ctx, key) => readState(store, ctx, key),
      readStateWithin: (ctx, key, most) => readStateWithin(store, ctx, key, most),
      node: this.services,
    };
    const { limits, gasLimit, floats, followUps, traceReads } = options;
    this.committer = new Committer(store, this.services, this.events, this.logger, this.opt('commitGroupMs'));
    this.scheduler = new Scheduler(
      { mode: this.opt('mode'), deadlineMs: this.opt('deadlineMs'), limits, gasLimit, floats, followUps, traceReads },
      {
        events: this.events,
        committer: this.committer,
        execute: (job, mode, deadlineMs) => this.executor(mode).submit(job, deadlineMs),
        applicationOf: (contextId) => this.applicationOf(contextId),
        closed: () => this.closed,
      },
    );
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
    checkLauncher(options);
    checkBlobDir(options);
    if (options.store) return new Host(options.store, false, options);
    if (options.dataDir === undefined) return new Host(createMemoryStore(), true, options);
    const lock = lockDataDir(options.dataDir);
    let store: KvStore | undefined;
    try {
      store = await openLmdbStore(options.dataDir);
      const host = new Host(store, true, options);
      host.lock = lock;
      return host;
    } catch (e) {
      // Whatever failed after the store opened (unreadable worker TLS files, say) must not keep the LMDB
      // environment or the directory's lock: the caller fixes the option and opens the directory again.
      try {
        await store?.close();
      } finally {
        lock.release();
      }
      throw e;
    }
  }

  private opt<K extends keyof typeof DEFAULT_HOST_OPTIONS>(k: K): NonNullable<HostOptions[K]> | (typeof DEFAULT_HOST_OPTIONS)[K] {
    return (this.options[k] ?? DEFAULT_HOST_OPTIONS[k]) as NonNullable<HostOptions[K]>;
  }

  /**
   * Stores contract code; returns its SHA-256 hash. By default the module must pass the checks the VM applies
   * with this host's limits (whitelist, module limits, imports from the catalogue), so a contract that could
   * never run is refused here with the rule it breaks. `check: false` stores any WebAssembly module (the VM
   * still checks it at every call).
   */
  async deploy(code: Uint8Array, options: { check?: boolean } = {}): Promise<Uint8Array> {
    this.assertOpen();
    const limits = this.limits;
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
    // The recorded length, not the code: a 10 MiB module was copied to answer yes.
    return codeSize(this.store, codeHash) !== undefined;
  }

  /** Runs a method and applies its outcome; then runs its event handlers and xcalls (see FollowUp). */
  async call(request: CallRequest): Promise<Outcome> {
    this.assertOpen();
    return this.scheduler.call(request, 0, null);
  }

  /**
   * Runs a method against the committed state and applies nothing: the outcome says what it returned and
   * what it would have written (`applied` is false, no follow-ups run, blobs it staged are dropped). It queues
   * on the context like a call, so it sees every call submitted before it.
   */
  async view(request: CallRequest): Promise<Outcome> {
    this.assertOpen();
    return this.scheduler.call(request, 0, null, true);
  }

  /** A context's application: its application id when it was created with context_create and that code is deployed. */
  private applicationOf(contextId: Uint8Array): Uint8Array | undefined {
    const app = this.node.context(contextId)?.applicationId;
    return app !== undefined && this.hasCode(app) ? app : undefined;
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
   * With remote workers (HostOptions.workers) these are process ids on the workers' machines, as each worker
   * reported them: not processes of this machine (two workers may even report the same id); the vm.launched
   * event of each VM names its worker.
   */
  busyVmPids(): number[] {
    return [...(this.executors.pool?.busyPids() ?? []), ...(this.executors.oneshot?.busyPids() ?? [])];
  }

  /** Process ids of every VM process the host runs right now (pool and one-shot); remote VMs: as busyVmPids(). */
  vmPids(): number[] {
    return [...(this.executors.pool?.pids() ?? []), ...(this.executors.oneshot?.pids() ?? [])];
  }

  /** The limits a call gets unless it sets its own: HostOptions.limits over the protocol's defaults. */
  get limits(): Readonly<VmLimits> {
    return { ...DEFAULT_LIMITS, ...this.options.limits };
  }

  /** What group commit did since the host opened (HostOptions.commitGroupMs; docs/state.md, "Group commit"). */
  get commitStats(): Readonly<CommitStats> {
    return this.committer.group.stats;
  }

  /** Calls started while the previous call on their context committed, and those run again (docs/state.md, "Early runs"). */
  get earlyRunStats(): Readonly<EarlyRunStats> {
    return this.scheduler.earlyRunStats;
  }

  /** Pool statistics, or null when no pool was started. */
  get poolStats(): PoolStats | null {
    return this.executors.pool?.stats ?? null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.scheduler.drain();
    const grace = this.opt('killGraceMs') * 4;
    // Together: a launch waiting for a remote slot ends when the remote launcher closes.
    await Promise.all([this.executors.pool?.close(grace), this.executors.oneshot?.close(grace), this.remote?.close()]);
    await this.vmLauncher?.close?.();
    await this.checker.close();
    this.services.close();
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

  /** The executor of a mode, started at its first call. Both run VMs from the same launcher. */
  private executor(mode: ExecutionMode): Executor {
    let executor = this.executors[mode];
    if (executor === undefined) {
      const launcher = (this.vmLauncher ??= this.launcher());
      const killGraceMs = this.opt('killGraceMs');
      executor =
        mode === 'pool'
          ? new Executor(this.backend, launcher, {
              role: 'pool',
              size: this.opt('poolSize'),
              killGraceMs,
              ...(this.options.recycleAfter !== undefined ? { recycleAfter: this.options.recycleAfter } : {}),
              ...(this.options.poolIdleTimeoutMs !== undefined ? { idleTimeoutMs: this.options.poolIdleTimeoutMs } : {}),
            })
          : new Executor(this.backend, launcher, { role: 'oneshot', size: Infinity, killGraceMs });
      this.executors[mode] = executor;
    }
    return executor;
  }

  /**
   * Picks what starts this host's VMs: local child processes that dial their listener (supervisor.ts), or
   * processes that announce themselves through the gRPC Runtime handshake (src/runtime/launcher.ts). Another
   * way to start VMs is a Launcher returned here; the executors need nothing else.
   */
  private launcher(): Launcher {
    if (this.remote !== null) return this.remote.launcher; // slots registered by workers (src/worker/)
    const options: Omit<LaunchOptions, 'role'> = {
      transport: this.opt('transport'),
      ...(this.options.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: this.options.handshakeTimeoutMs } : {}),
      events: this.events,
      ...(this.options.sandbox !== undefined ? { sandbox: this.options.sandbox } : {}),
      ...(this.options.vmCommand ? { command: this.options.vmCommand } : {}),
      ...(this.options.channel ? { channel: this.options.channel } : {}),
    };
    if (this.options.launcher === 'thread') return threadLauncher({ transport: options.transport, events: this.events });
    if (this.options.launcher === 'runtime') {
      // Loaded only when chosen: the gRPC packages cost start-up time the process launcher does not pay.
      const load = import('../runtime/launcher.js');
      return { kind: 'runtime', launch: async (role) => (await load).launchRuntimeVm(extend(options, { role })) };
    }
    return processLauncher(options);
  }
}

/**
 * A VM thread shares the node's process, so it cannot have the OS sandbox: refuse it unless the sandbox was
 * explicitly switched off (option or HOSTLINK_SANDBOX), so nobody gets an unsandboxed VM by picking a launcher.
 */
function checkLauncher(options: HostOptions): void {
  const launcher: unknown = options.launcher;
  // Checked here, at open, rather than when the first VM starts: a bad setting fails Host.open, not a call.
  const sandbox = normalizeSandbox(options.sandbox);
  if (launcher !== undefined && launcher !== 'process' && launcher !== 'runtime' && launcher !== 'thread') {
    throw new HostlinkError('usage', `launcher '${String(launcher)}' is not a launcher: use process, runtime or thread`);
  }
  if (options.workers !== undefined && launcher !== undefined && launcher !== 'process') {
    // Workers start their VMs as sandboxed processes on their own machines; another launcher would be ignored.
    throw new HostlinkError('usage', `launcher '${launcher}' cannot be combined with workers: with HostOptions.workers every VM runs on a worker`);
  }
  if (launcher === 'thread' && sandbox.mode !== 'off') {
    throw new HostlinkError('usage', "launcher 'thread' runs VMs inside the host process without an OS sandbox: it needs sandbox 'off' (--launcher thread --sandbox off)");
  }
}

/** Where blob contents go: `blobDir`, else `<dataDir>/blobs`, else memory (undefined). */
function blobDirOf(options: HostOptions): string | undefined {
  return options.blobDir ?? (options.dataDir !== undefined ? join(options.dataDir, 'blobs') : undefined);
}

function checkBlobDir(options: HostOptions): void {
  if (options.blobDir !== undefined && (typeof options.blobDir !== 'string' || options.blobDir === '')) {
    throw new HostlinkError('usage', `blobDir must be a directory path (got ${JSON.stringify(options.blobDir)})`);
  }
  // Records in a store that outlives the process, contents in this process's memory: after a restart every blob
  // is recorded with its size and reads as empty. Refused rather than guessed: the directory is the caller's.
  if (options.store?.persistent === true && blobDirOf(options) === undefined) {
    throw new HostlinkError(
      'usage',
      'the store passed to Host.open keeps its tables on disk, but blob contents would be kept in memory and lost at close while their records stay: pass blobDir (say the store\'s directory + "/blobs"), or dataDir',
    );
  }
}
