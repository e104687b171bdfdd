/**
 * A pool of warm VM processes (pool mode), so repeated calls do not pay process start-up.
 *
 * A pool VM connects once, says hello, then asks next_message; the host holds that request until it has a job
 * (a VM waiting in next_message is an idle worker). A job ends when the VM sends consume_result, or the worker
 * crashes, or the job's deadline passes (the worker is stopped). A worker that died is replaced.
 */
import type { Job } from './job.js';
import type { SessionBackend } from './methods.js';
import { serveSession, Session, type WorkSource } from './session.js';
import { launchVm, type LaunchOptions, type VmProcess } from './supervisor.js';

export interface PoolOptions {
  size: number;
  launch: Omit<LaunchOptions, 'message'>;
  /** Grace between SIGTERM and SIGKILL. */
  killGraceMs: number;
}

const MAX_START_FAILURES = 3;

interface Worker {
  vm: VmProcess;
  session: Session;
  job: Job | null;
  deadline: NodeJS.Timeout | null;
}

interface Waiting {
  session: Session;
  give: (job: Job | null) => void;
}

export class VmPool implements WorkSource {
  private readonly workers = new Set<Worker>();
  private readonly queue: { job: Job; deadlineMs: number }[] = [];
  private readonly idle: Waiting[] = [];
  private readonly deadlines = new Map<Job, number>();
  private closing = false;
  /** Workers started over the pool's life (start-up plus replacements). */
  launched = 0;
  /** VMs in a row that exited before connecting; at MAX_START_FAILURES the pool stops respawning. */
  private startFailures = 0;
  /** Launches in progress (not yet in `workers`): counted so a job submitted meanwhile does not start one more. */
  private launching = 0;

  constructor(
    private readonly backend: SessionBackend,
    private readonly options: PoolOptions,
  ) {}

  start(): void {
    for (let i = 0; i < this.options.size; i++) void this.spawnWorker();
  }

  /** Queues a job; it is ended (result, timeout or crash) by the worker that takes it. */
  submit(job: Job, deadlineMs: number): void {
    if (this.closing) {
      job.end({ kind: 'protocol', message: 'the VM pool is closed' });
      return;
    }
    // Refill after a crash loop stopped respawning: each new job gets another chance.
    if (this.workers.size + this.launching < this.options.size) {
      this.startFailures = 0;
      void this.spawnWorker();
    }
    const waiting = this.idle.shift();
    if (waiting) {
      this.deadlines.set(job, deadlineMs);
      waiting.give(job);
    } else {
      this.queue.push({ job, deadlineMs });
    }
  }

  // WorkSource: called by a session's next_message.
  nextJob(session: Session): Promise<Job | null> {
    if (this.closing) return Promise.resolve(null);
    const queued = this.queue.shift();
    if (queued) {
      this.deadlines.set(queued.job, queued.deadlineMs);
      return Promise.resolve(this.assign(session, queued.job));
    }
    return new Promise((resolve) => {
      this.idle.push({ session, give: (job) => resolve(job === null ? null : this.assign(session, job)) });
    });
  }

  jobFinished(session: Session): void {
    const w = this.workerOf(session);
    if (w === undefined) return;
    if (w.deadline) clearTimeout(w.deadline);
    w.deadline = null;
    w.job = null;
  }

  private workerOf(session: Session): Worker | undefined {
    for (const w of this.workers) if (w.session === session) return w;
    return undefined;
  }

  private assign(session: Session, job: Job): Job {
    const w = this.workerOf(session);
    const deadlineMs = this.deadlines.get(job) ?? 0;
    this.deadlines.delete(job);
    if (w !== undefined) {
      w.job = job;
      w.deadline = setTimeout(() => {
        if (job.end({ kind: 'timeout' })) void w.vm.stop(this.options.killGraceMs);
      }, deadlineMs);
    }
    return job;
  }

  private async spawnWorker(): Promise<void> {
    if (this.closing) return;
    this.launched++;
    this.launching++;
    let vm: VmProcess;
    try {
      vm = await launchVm(this.options.launch);
    } catch (e) {
      this.failQueued(`could not start a VM process: ${(e as Error).message}`);
      return;
    } finally {
      this.launching--;
    }
    const session = new Session(this.backend, { pool: this });
    const worker: Worker = { vm, session, job: null, deadline: null };
    this.workers.add(worker);
    void vm.exited.then(() => this.onWorkerExit(worker));
    let socket;
    try {
      socket = await vm.connection;
    } catch {
      return; // exited before connecting: onWorkerExit handles it
    }
    this.startFailures = 0;
    const { error } = await serveSession(session, socket);
    if (error && worker.job) worker.job.end({ kind: 'protocol', message: error.message });
    socket.destroy();
    // A session that ends while the process lives (protocol error) must not leave a zombie worker.
    if (!vm.hasExited) void vm.stop(this.options.killGraceMs);
  }

  private onWorkerExit(worker: Worker): void {
    this.workers.delete(worker);
    if (worker.deadline) clearTimeout(worker.deadline);
    worker.job?.end({ kind: 'crash', crash: worker.vm.crash() });
    const i = this.idle.findIndex((w) => w.session === worker.session);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.closing) return;
    // A VM that cannot even start would respawn forever: after a few in a row, fail what is queued and
    // wait for the next submit to try again.
    if (worker.session.state === 'new' && ++this.startFailures >= MAX_START_FAILURES) {
      const last = worker.vm.stderrTail().trim().split('\n').pop() ?? '';
      if (this.workers.size === 0) this.failQueued(`VM processes exit before connecting (${last || 'no output'})`);
      return;
    }
    void this.spawnWorker();
  }

  private failQueued(message: string): void {
    for (const { job } of this.queue.splice(0)) job.end({ kind: 'crash', crash: { exitCode: null, signal: null, stderr: message } });
  }

  /** Process ids of the workers that are running a job. */
  busyPids(): number[] {
    return [...this.workers].filter((w) => w.job !== null).map((w) => w.vm.pid);
  }

  get stats(): { workers: number; idle: number; queued: number; launched: number } {
    return { workers: this.workers.size, idle: this.idle.length, queued: this.queue.length, launched: this.launched };
  }

  /** Tells idle VMs there is no more work, waits for them to exit, stops the rest. */
  async close(graceMs = 2000): Promise<void> {
    this.closing = true;
    for (const w of this.idle.splice(0)) w.give(null);
    for (const { job } of this.queue.splice(0)) job.end({ kind: 'protocol', message: 'the VM pool closed before the job ran' });
    await Promise.all([...this.workers].map((w) => w.vm.reap(graceMs)));
  }
}

