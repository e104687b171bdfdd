/**
 * One VM as the executor sees it: the handle its launcher gave, the session serving its connection, and the job
 * it runs. The session holds its slot as its work source, so a VM's next_message reaches its own slot directly
 * (no search through the executor's VMs).
 */
import type { Job } from '../job.js';
import type { VmHandle } from '../launcher.js';
import type { Session } from '../session.js';
import type { WorkSource } from '../session-types.js';

/**
 * starting: launched, has not asked for work yet. idle: parked in next_message. busy: running the job it took.
 * retiring: answered (or will be answered) `absent`, exits by itself.
 */
export type SlotState = 'starting' | 'idle' | 'busy' | 'retiring';

/** What a slot asks of its executor; the executor decides, the slot only carries the VM's state. */
export interface SlotOwner {
  nextJob(slot: Slot): Job | null | Promise<Job | null>;
}

export class Slot implements WorkSource {
  vm: VmHandle | null = null;
  state: SlotState = 'starting';
  /** The job this VM runs, or (a one-shot slot) the job it was launched for and will be handed first. */
  job: Job | null = null;
  /** Jobs this VM has been given (a one-shot slot: its one job, from launch). */
  jobs = 0;
  /**
   * Set once the executor stopped this VM (its job's deadline, a start that took too long, a broken session):
   * it is given no work, even when it asks before it is gone. A VM stopped at its job's deadline may already
   * have sent its result and next_message in one write; handed the next queued job, it would take that job down
   * with it when the stop lands, a crash of a call that had nothing to do with the deadline.
   */
  stopping = false;
  /** Set while the VM is parked in next_message: answers it. */
  give: ((job: Job | null) => void) | null = null;
  /** The start or idle timer. */
  timer: NodeJS.Timeout | null = null;
  /** Settles once the VM was launched (or could not be). */
  launching: Promise<void> = Promise.resolve();
  session!: Session;

  constructor(
    private readonly owner: SlotOwner,
    /** True for a slot launched for one job (one-shot): that job is its first and last. */
    readonly bound: boolean,
  ) {}

  // WorkSource: this VM's next_message (after hello, and after each result).
  nextJob(): Job | null | Promise<Job | null> {
    return this.owner.nextJob(this);
  }

  /** Answers a parked next_message. */
  park(job: Job | null): void {
    const give = this.give;
    this.give = null;
    give?.(job);
  }

  clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
