/**
 * A pool of warm VM processes (pool mode), so repeated calls do not pay process start-up.
 *
 * A pool VM connects once, proves its secret in hello, then asks next_message; the host holds that request
 * until it has a job (a VM parked in next_message is an idle worker). A job ends when the VM sends
 * consume_result, or the worker crashes, or the job's deadline passes (counted from submission, so a job
 * waiting in the queue times out too; a worker running it is stopped).
 *
 * Bounds: at most `size` VM processes exist at any time (starting, idle, busy or retiring alike), and VMs are
 * started only for queued work, so one call starts one VM. A VM retires (is answered `absent` and exits) after
 * `recycleAfter` jobs or `idleTimeoutMs` parked; a VM that does not ask for work within `startTimeoutMs` of
 * being launched is stopped. Every decision (hand a job to an idle worker, start a VM) is made in `resume()`.
 */
import type { Job } from './job.js';
import type { Launcher, VmHandle } from './launcher.js';
import type { SessionBackend } from './methods.js';
import { serveSession, Session, type WorkSource } from './session.js';
import { launchVm, type LaunchOptions } from './supervisor.js';

export interface PoolOptions {
  /** Most VM processes alive at once. */
  size: number;
  launch: LaunchOptions;
  /** Where VMs come from instead of local processes (remote workers: src/worker/remote-launcher.ts). */
  launcher?: Launcher;
  /** Grace between SIGTERM and SIGKILL. */
  killGraceMs: number;
  /** Jobs a VM serves before it is retired; default unlimited. 1 gives every call a fresh process. */
  recycleAfter?: number;
  /** A VM parked without work this long exits; default 60 000 ms. */
  idleTimeoutMs?: number;
  /** A VM must ask for work this soon after launch or it is stopped; default 30 000 ms (start-up on a loaded machine is slow). */
  startTimeoutMs?: number;
}

export const DEFAULT_POOL_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_POOL_START_TIMEOUT_MS = 30_000;
const MAX_START_FAILURES = 3;

type WorkerState = 'starting' | 'idle' | 'busy' | 'retiring';

interface Worker {
  vm: VmHandle | null;
  session: Session;
  state: WorkerState;
  job: Job | null;
  /** Jobs this VM has taken. */
  jobs: number;
  /** Set while the VM is parked in next_message: answers it. */
  give: ((job: Job | null) => void) | null;
  timer: NodeJS.Timeout | null;
  /** Settles once the process was launched (or could not be). */
  launching: Promise<void>;
}

export interface PoolStats {
  /** VM processes alive now (any state). */
  workers: number;
  idle: number;
  queued: number;
  /** VM processes started over the pool's life. */
  launched: number;
  /** Most VM processes alive at the same time. */
  peak: number;
  /** VMs retired by recycleAfter or the idle timeout. */
  retired: number;
}

export class VmPool implements WorkSource {
  private readonly workers = new Set<Worker>();
  private readonly queue: Job[] = [];
  /** Deadline timers of submitted jobs, from submission to their end. */
  private readonly deadlines = new Map<Job, NodeJS.Timeout>();
  private closing = false;
  private launched = 0;
  private peak = 0;
  private retired = 0;
  /** VMs in a row that ended before asking for work; at MAX_START_FAILURES the queue is failed. */
  private startFailures = 0;

  constructor(
    private readonly backend: SessionBackend,
    private readonly options: PoolOptions,
  ) {}

  /** Queues a job; it ends by its result, its worker's crash, or its deadline (counted from now). */
  submit(job: Job, deadlineMs: number): void {
    if (this.closing) {
      job.end({ kind: 'protocol', message: 'the VM pool is closed' });
      return;
    }
    const timer = setTimeout(() => this.expire(job), deadlineMs);
    this.deadlines.set(job, timer);
    void job.done.then(() => {
      clearTimeout(timer);
      this.deadlines.delete(job);
    });
    this.queue.push(job);
    this.resume();
  }

  // WorkSource: called by a session's next_message (after hello, and after each result).
  nextJob(session: Session): Promise<Job | null> {
    const w = this.workerOf(session);
    if (w === undefined || this.closing) return Promise.resolve(null);
    this.clearTimer(w);
    this.startFailures = 0;
    if (this.options.recycleAfter !== undefined && w.jobs >= this.options.recycleAfter) return Promise.resolve(this.retire(w));
    return new Promise((resolve) => {
      w.state = 'idle';
      w.give = resolve;
      w.timer = setTimeout(() => {
        if (w.state === 'idle' && w.give) this.park(w, this.retire(w));
      }, this.options.idleTimeoutMs ?? DEFAULT_POOL_IDLE_TIMEOUT_MS);
      w.timer.unref();
      this.resume();
    });
  }

  jobFinished(session: Session): void {
    const w = this.workerOf(session);
    if (w !== undefined) w.job = null;
  }

  /** The one place that hands out work and starts VMs. */
  private resume(): void {
    if (this.closing) return;
    for (const w of this.workers) {
      if (this.queue.length === 0) break;
      if (w.state !== 'idle' || w.give === null) continue;
      const job = this.queue.shift()!;
      w.state = 'busy';
      w.job = job;
      w.jobs++;
      if (w.vm !== null) job.trace.vmPid = w.vm.pid; // the process we started, not what the VM says in hello
      this.clearTimer(w);
      this.park(w, job);
    }
    let starting = 0;
    for (const w of this.workers) if (w.state === 'starting') starting++;
    while (this.queue.length > starting && this.workers.size < this.options.size) {
      this.spawnWorker();
      starting++;
    }
  }

  /** Answers a parked next_message. */
  private park(w: Worker, job: Job | null): void {
    const give = w.give;
    w.give = null;
    give?.(job);
  }

  private retire(w: Worker): null {
    w.state = 'retiring';
    this.retired++;
    return null;
  }

  /** The deadline of a job passed: end it wherever it is. */
  private expire(job: Job): void {
    if (!job.end({ kind: 'timeout' })) return;
    const i = this.queue.indexOf(job);
    if (i >= 0) this.queue.splice(i, 1);
    for (const w of this.workers) if (w.job === job) void w.vm?.stop(this.options.killGraceMs);
  }

  private workerOf(session: Session): Worker | undefined {
    for (const w of this.workers) if (w.session === session) return w;
    return undefined;
  }

  private clearTimer(w: Worker): void {
    if (w.timer) clearTimeout(w.timer);
    w.timer = null;
  }

  /** Starts one VM; counted against the size from this moment. */
  private spawnWorker(): void {
    const launch: Promise<VmHandle> = this.options.launcher?.launch('pool') ?? launchVm(this.options.launch);
    const worker: Worker = {
      vm: null,
      session: new Session(this.backend, { pool: this }),
      state: 'starting',
      job: null,
      jobs: 0,
      give: null,
      timer: null,
      launching: launch.then(() => undefined, () => undefined),
    };
    this.workers.add(worker);
    this.launched++;
    this.peak = Math.max(this.peak, this.workers.size);
    void this.runWorker(worker, launch);
  }

  private async runWorker(worker: Worker, launch: Promise<VmHandle>): Promise<void> {
    let vm: VmHandle;
    try {
      vm = await launch;
    } catch (e) {
      this.workers.delete(worker);
      this.failQueued(`could not start a VM process: ${(e as Error).message}`);
      return;
    }
    worker.vm = vm;
    void vm.exited.then(() => this.onWorkerExit(worker));
    if (this.closing) {
      void vm.stop(this.options.killGraceMs);
      return;
    }
    // A VM that never asks for work would hold a slot forever.
    worker.timer = setTimeout(() => {
      if (worker.state === 'starting') void vm.stop(this.options.killGraceMs);
    }, this.options.startTimeoutMs ?? DEFAULT_POOL_START_TIMEOUT_MS);
    let socket;
    try {
      socket = await vm.connection;
    } catch {
      return; // exited before connecting: onWorkerExit handles it
    }
    const { error } = await serveSession(worker.session, socket);
    if (error && worker.job) worker.job.end({ kind: 'protocol', message: error.message });
    socket.destroy();
    // A session that ends while the process lives (protocol error) must not leave a zombie worker.
    if (!vm.hasExited) void vm.stop(this.options.killGraceMs);
  }

  private onWorkerExit(worker: Worker): void {
    this.workers.delete(worker);
    this.clearTimer(worker);
    this.park(worker, null);
    if (worker.vm !== null) worker.job?.end({ kind: 'crash', crash: worker.vm.crash() });
    if (this.closing) return;
    // A VM that cannot even start would respawn forever: after a few in a row, fail what is queued and
    // wait for the next submit to try again.
    if (worker.state === 'starting' && ++this.startFailures >= MAX_START_FAILURES) {
      const last = worker.vm?.stderrTail().trim().split('\n').pop() ?? '';
      this.startFailures = 0;
      this.failQueued(`VM processes exit before asking for work (${last || 'no output'})`);
      return;
    }
    this.resume();
  }

  private failQueued(message: string): void {
    for (const job of this.queue.splice(0)) job.end({ kind: 'crash', crash: { exitCode: null, signal: null, stderr: message } });
  }

  /**
   * Process ids of the workers that are running a job. A worker whose job already ended (its deadline passed
   * and its VM is being stopped) still holds the job until the process exits, but it is no longer busy.
   */
  busyPids(): number[] {
    return [...this.workers].filter((w) => w.job !== null && w.job.ending === undefined && w.vm !== null).map((w) => w.vm!.pid);
  }

  /** Process ids of every VM the pool runs now. */
  pids(): number[] {
    return [...this.workers].filter((w) => w.vm !== null).map((w) => w.vm!.pid);
  }

  get stats(): PoolStats {
    let idle = 0;
    for (const w of this.workers) if (w.state === 'idle') idle++;
    return { workers: this.workers.size, idle, queued: this.queue.length, launched: this.launched, peak: this.peak, retired: this.retired };
  }

  /** Tells idle VMs there is no more work, fails queued jobs, waits for VMs to exit, stops the rest. */
  async close(graceMs = 2000): Promise<void> {
    this.closing = true;
    for (const w of this.workers) if (w.give) this.park(w, null);
    for (const job of this.queue.splice(0)) job.end({ kind: 'protocol', message: 'the VM pool closed before the job ran' });
    const workers = [...this.workers];
    await Promise.all(workers.map((w) => w.launching)); // a VM being launched is stopped as soon as it exists
    await Promise.all(workers.map((w) => w.vm?.reap(graceMs)));
  }
}
