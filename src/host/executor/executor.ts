/**
 * The executor: runs jobs in VMs started by a Launcher (launcher.ts), whatever the launcher is (a local
 * process, a runtime-registered VM, a remote worker's slot). Pool mode and one-shot mode are the same
 * executor: a pool slot takes many jobs, a one-shot slot is launched for one job, takes it and retires.
 *
 * Every VM asks next_message for work; the executor holds that request until it has a job (a slot parked in
 * next_message is idle). Each failure rule is written once here and applies to every launcher:
 * - deadline: counted from when a VM takes the job (`handOut`), never from submission: time queued behind other
 *   contexts' calls, or waiting for a VM to start, depends on the node's load, and a deadline spent there ended
 *   a follow-up `timeout` on a busy node where it ran on an idle one. At the deadline the job ends `timeout` and
 *   its VM is stopped. Waiting is bounded by the VMs ahead of it (each bounded by its own deadline) and by
 *   `startTimeoutMs` (a VM that never asks for work is stopped: its job ends `crash`);
 * - crash: the VM is gone without a result: its job ends `crash` with the VM's exit and stderr tail;
 * - protocol error: the session ends with an error: its job ends `protocol`, the VM is stopped;
 * - start failures: a VM that cannot be launched, or MAX_START_FAILURES VMs in a row that end before asking
 *   for work, fail what is queued (the next submit tries again);
 * - retirement: after `recycleAfter` jobs, or `idleTimeoutMs` parked, a VM is answered `absent`; a VM that does
 *   not ask for work within `startTimeoutMs` of launch is stopped; a VM that will take no more work is reaped;
 * - close: parked VMs are told `absent`, queued jobs fail, VMs are reaped.
 *
 * Where a job ends (job.end): the consume_result handler (methods.ts, its result) and `settle` below
 * (everything else). Bounds: at most `size` VMs exist at once (starting, idle, busy or retiring alike), and
 * VMs are started only for queued work. Every decision (hand a job to an idle slot, start a VM) is made in
 * `resume()`.
 */
import type { HostlinkError } from '../../errors.js';
import type { Job, JobEnd } from '../job.js';
import type { Launcher, VmHandle, VmRole } from '../launcher.js';
import type { SessionBackend } from '../session-types.js';
import { serveSession, Session } from '../session.js';
import { Slot, type SlotOwner } from './slot.js';

export interface ExecutorOptions {
  /** pool: slots take many jobs; oneshot: each slot is launched for one job and retires after it. */
  role: VmRole;
  /** Most VMs alive at once (Infinity: one VM per job, however many run). */
  size: number;
  /** Grace between the polite stop and the forced one, and for a VM to exit by itself once it has no work. */
  killGraceMs: number;
  /** Jobs a VM serves before it is retired; default unlimited (one-shot: 1). */
  recycleAfter?: number;
  /** A VM parked without work this long exits; default 60 000 ms. */
  idleTimeoutMs?: number;
  /** A VM must ask for work this soon after launch or it is stopped; default 30 000 ms (start-up on a loaded machine is slow). */
  startTimeoutMs?: number;
}

export const DEFAULT_POOL_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_POOL_START_TIMEOUT_MS = 30_000;
const MAX_START_FAILURES = 3;

export interface PoolStats {
  /** VMs alive now (any state). */
  workers: number;
  idle: number;
  queued: number;
  /** VMs started over the executor's life. */
  launched: number;
  /** Most VMs alive at the same time. */
  peak: number;
  /** VMs retired by recycleAfter or the idle timeout. */
  retired: number;
}

/** How a job ends when its session failed: the node's own store (a full disk), or the VM broke the protocol. */
function sessionFailure(error: HostlinkError): JobEnd {
  const storeFailed = error.code === 'store';
  return { kind: storeFailed ? 'store_failed' : 'protocol', message: error.message };
}

const startCrash = (message: string): JobEnd => ({ kind: 'crash', crash: { exitCode: null, signal: null, stderr: message } });

export class Executor implements SlotOwner {
  private readonly slots = new Set<Slot>();
  private readonly queue: Job[] = [];
  /** The slot running (or launched for) each job, so a deadline finds its VM at once. */
  private readonly slotOf = new Map<Job, Slot>();
  /** Each submitted job's deadline (ms), armed when a VM takes the job. */
  private readonly deadlineOf = new Map<Job, number>();
  private closing = false;
  private launched = 0;
  private peak = 0;
  private retired = 0;
  /** VMs in a row that ended before asking for work; at MAX_START_FAILURES the queue is failed. */
  private startFailures = 0;
  private readonly recycleAfter: number;

  constructor(
    private readonly backend: SessionBackend,
    private readonly launcher: Launcher,
    private readonly options: ExecutorOptions,
  ) {
    this.recycleAfter = options.role === 'oneshot' ? 1 : (options.recycleAfter ?? Infinity);
  }

  /**
   * Queues a job; it ends by its result, its VM's crash or protocol error, or its deadline (counted from when a
   * VM takes it: see handOut).
   */
  submit(job: Job, deadlineMs: number): Promise<JobEnd> {
    if (this.closing) {
      this.settle(job, { kind: 'protocol', message: 'the VM pool is closed' });
      return job.done;
    }
    this.deadlineOf.set(job, deadlineMs);
    void job.done.then(() => this.deadlineOf.delete(job));
    this.queue.push(job);
    this.resume();
    return job.done;
  }

  /** Ends a job for any reason but its result (the one place besides consume_result). */
  private settle(job: Job, end: JobEnd): boolean {
    return job.end(end);
  }

  // SlotOwner: a slot's VM asks next_message (after hello, and after each result).
  nextJob(slot: Slot): Job | null | Promise<Job | null> {
    if (this.closing || slot.state === 'retiring' || slot.stopping) return null;
    slot.clearTimer();
    this.startFailures = 0;
    if (slot.state === 'starting' && slot.job !== null) {
      slot.state = 'busy'; // a one-shot slot: the job it was launched for
      return this.handOut(slot.job);
    }
    if (slot.jobs >= this.recycleAfter) return this.retire(slot);
    // Work is queued only while no VM is idle (resume() hands it out at once), so this VM takes the oldest job.
    const queued = this.queue.shift();
    if (queued !== undefined) {
      slot.state = 'busy';
      this.assign(slot, queued);
      return this.handOut(queued);
    }
    return new Promise((resolve) => {
      slot.state = 'idle';
      slot.give = resolve;
      this.resume();
      // The idle timer only for a VM left waiting: under load the queue hands it a job at once (above), and a
      // timer armed and cleared per execution was host CPU for nothing.
      if (slot.state !== 'idle' || slot.give === null) return;
      slot.timer = setTimeout(() => {
        if (slot.state === 'idle' && slot.give) slot.park(this.retire(slot));
      }, this.options.idleTimeoutMs ?? DEFAULT_POOL_IDLE_TIMEOUT_MS);
      slot.timer.unref();
    });
  }

  /** The one place that hands out work and starts VMs. */
  private resume(): void {
    if (this.closing) return;
    for (const slot of this.slots) {
      if (this.queue.length === 0) break;
      if (slot.state !== 'idle' || slot.give === null) continue;
      const job = this.queue.shift()!;
      slot.state = 'busy';
      this.assign(slot, job);
      slot.clearTimer();
      slot.park(this.handOut(job));
    }
    if (this.options.role === 'oneshot') {
      while (this.queue.length > 0 && this.slots.size < this.options.size) this.launch(this.queue.shift()!);
      return;
    }
    let starting = 0;
    for (const slot of this.slots) if (slot.state === 'starting') starting++;
    while (this.queue.length > starting && this.slots.size < this.options.size) {
      this.launch(null);
      starting++;
    }
  }

  /**
   * The one place a job reaches its VM (an answered next_message, whatever the launcher: local process, thread,
   * runtime VM, remote worker's slot): its deadline starts here, so every executor counts it the same way.
   */
  private handOut(job: Job): Job {
    const deadlineMs = this.deadlineOf.get(job);
    if (deadlineMs !== undefined && job.ending === undefined) {
      this.deadlineOf.delete(job);
      const timer = setTimeout(() => this.expire(job), deadlineMs);
      void job.done.then(() => clearTimeout(timer));
    }
    return job;
  }

  /** Gives a job to a slot: from here this VM's end ends it, and once handed out its deadline stops this VM. */
  private assign(slot: Slot, job: Job): void {
    slot.job = job;
    slot.jobs++;
    this.slotOf.set(job, slot);
    if (slot.vm !== null) job.trace.vmPid = slot.vm.pid; // the VM we started, not what it says in hello
    void job.done.then((end) => this.jobEnded(slot, job, end));
  }

  private jobEnded(slot: Slot, job: Job, end: JobEnd): void {
    this.slotOf.delete(job);
    if (slot.job === job) slot.job = null;
    // A VM that will take no more work gets the grace to exit by itself (it is answered `absent`), then is
    // stopped; one whose job ended any other way than its result is stopped where the job ended.
    if (end.kind === 'result' && slot.jobs >= this.recycleAfter) void slot.vm?.reap(this.options.killGraceMs);
  }

  private retire(slot: Slot): null {
    slot.state = 'retiring';
    this.retired++;
    return null;
  }

  /** The deadline of a job passed: end it wherever it is. */
  private expire(job: Job): void {
    if (!this.settle(job, { kind: 'timeout' })) return;
    const i = this.queue.indexOf(job);
    if (i >= 0) this.queue.splice(i, 1);
    const slot = this.slotOf.get(job);
    if (slot !== undefined) this.stopVm(slot);
  }

  /** Stops a slot's VM (SIGTERM, then SIGKILL after the grace); from now on the slot is given no work. */
  private stopVm(slot: Slot): void {
    slot.stopping = true;
    void slot.vm?.stop(this.options.killGraceMs);
  }

  /** Starts one VM (for `job` when one-shot); counted against the size from this moment. */
  private launch(job: Job | null): void {
    const slot = new Slot(this, job !== null);
    slot.session = new Session(this.backend, { pool: slot });
    if (job !== null) this.assign(slot, job);
    const launch = this.launcher.launch(this.options.role);
    slot.launching = launch.then(() => undefined, () => undefined);
    this.slots.add(slot);
    this.launched++;
    this.peak = Math.max(this.peak, this.slots.size);
    void this.run(slot, launch);
  }

  private async run(slot: Slot, launch: Promise<VmHandle>): Promise<void> {
    let vm: VmHandle;
    try {
      vm = await launch;
    } catch (e) {
      this.slots.delete(slot);
      const message = `could not start a VM process: ${(e as Error).message}`;
      if (slot.job !== null) this.settle(slot.job, startCrash(message));
      this.failQueued(message);
      return;
    }
    slot.vm = vm;
    if (slot.job !== null) slot.job.trace.vmPid = vm.pid;
    void vm.exited.then(() => this.onExit(slot));
    // Closing, or a one-shot job that ended (the host closing) while its VM was launched: nothing to run.
    if (this.closing || (slot.bound && (slot.job === null || slot.job.ending !== undefined))) {
      this.stopVm(slot);
      return;
    }
    // A VM that never asks for work would hold a slot forever.
    slot.timer = setTimeout(() => {
      if (slot.state === 'starting') this.stopVm(slot);
    }, this.options.startTimeoutMs ?? DEFAULT_POOL_START_TIMEOUT_MS);
    let socket;
    try {
      socket = await vm.connection;
    } catch {
      return; // ended before connecting: onExit reports it
    }
    const { error } = await serveSession(slot.session, socket);
    socket.destroy();
    // A VM whose connection is gone takes no more work, even while it lingers.
    if (slot.state === 'idle') {
      slot.state = 'retiring';
      slot.park(null);
    }
    const job = slot.job;
    if (error && job !== null) this.settle(job, sessionFailure(error));
    // A session that ends while the VM lives must not leave a zombie slot: a broken protocol or a job still
    // waiting for its result stops the VM; a VM that is done gets the grace to exit by itself.
    if (vm.hasExited) return;
    if (error || (job !== null && job.ending === undefined)) this.stopVm(slot);
    else void vm.reap(this.options.killGraceMs);
  }

  private onExit(slot: Slot): void {
    this.slots.delete(slot);
    slot.clearTimer();
    slot.park(null);
    if (slot.job !== null && slot.vm !== null) this.settle(slot.job, { kind: 'crash', crash: slot.vm.crash() });
    if (this.closing) return;
    // A VM that cannot even start would respawn forever: after a few in a row, fail what is queued and
    // wait for the next submit to try again.
    if (slot.state === 'starting' && ++this.startFailures >= MAX_START_FAILURES) {
      const last = slot.vm?.stderrTail().trim().split('\n').pop() ?? '';
      this.startFailures = 0;
      this.failQueued(`VM processes exit before asking for work (${last || 'no output'})`);
      return;
    }
    this.resume();
  }

  private failQueued(message: string): void {
    for (const job of this.queue.splice(0)) this.settle(job, startCrash(message));
  }

  /**
   * Process ids of the VMs running a job. A VM whose job already ended (its deadline passed and it is being
   * stopped) may live on for a moment, but it is no longer busy.
   */
  busyPids(): number[] {
    return [...this.slots].filter((s) => s.job !== null && s.job.ending === undefined && s.vm !== null).map((s) => s.vm!.pid);
  }

  /** Process ids of every VM alive now. */
  pids(): number[] {
    return [...this.slots].filter((s) => s.vm !== null).map((s) => s.vm!.pid);
  }

  get stats(): PoolStats {
    let idle = 0;
    for (const s of this.slots) if (s.state === 'idle') idle++;
    return { workers: this.slots.size, idle, queued: this.queue.length, launched: this.launched, peak: this.peak, retired: this.retired };
  }

  /** Tells idle VMs there is no more work, fails queued jobs, waits for VMs to exit, stops the rest. */
  async close(graceMs = 2000): Promise<void> {
    this.closing = true;
    for (const s of this.slots) if (s.give) s.park(null);
    for (const job of this.queue.splice(0)) this.settle(job, { kind: 'protocol', message: 'the VM pool closed before the job ran' });
    const slots = [...this.slots];
    await Promise.all(slots.map((s) => s.launching)); // a VM being launched is stopped as soon as it exists
    await Promise.all(slots.map((s) => s.vm?.reap(graceMs)));
  }
}
