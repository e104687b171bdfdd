/**
 * Group commit across contexts. A durable LMDB commit costs about the same CPU and the same two disk flushes
 * whether it carries one call's writes or several (the branch pages, the freelist, the meta page and the flushes
 * are per commit), so calls whose writes share a commit cost less each. LMDB already puts the writes queued during
 * a commit into the next one, so under load each commit carries the calls that finished while the previous one
 * ran; what it cannot know is that calls still running in VMs are about to write.
 *
 * So a finished call's write is held while a commit is in progress, and, once nothing is committing, until the
 * calls that were running at that moment have ended (each then writes, joining the group, or does not) or
 * `maxHoldMs` has passed, whichever comes first; then the held writes are issued together and LMDB commits them
 * as one. A call that has already run longer than `maxHoldMs` is not waited for (it is unlikely to end within the
 * hold: a long call beside short ones would otherwise hold each of their commits), and a call alone (nothing
 * committing, nothing else running) is never held.
 *
 * Holding a write changes when a call's outcome becomes durable, never what it is: calls on one context are
 * applied in order by the scheduler (an early run of the next one is not waited for: it commits after this one), and the order of commits across contexts already depends on timing (a call whose
 * alias another call committed first runs again).
 */
import { performance } from 'node:perf_hooks';

/** What the grouping did since the host opened: a commit per group issued together, or per write issued alone. */
export interface CommitStats {
  /** Calls' writes issued to the store. */
  writes: number;
  /** Groups issued together plus writes issued alone: the store's commits for calls, when nothing else writes. */
  commits: number;
  /** Writes that waited for the calls beside them or for a commit in progress. */
  held: number;
}

export class CommitGroup {
  /** Counters for metrics (HostMetrics: hostlink_commit_writes_total, hostlink_commits_total). */
  readonly stats: CommitStats = { writes: 0, commits: 0, held: 0 };
  /** Jobs a VM has taken and not yet ended, with when they began. */
  private readonly running = new Map<object, number>();
  /** The running jobs the held writes wait for (those that began less than maxHoldMs before the hold). */
  private waitingFor = new Set<object>();
  /** Writes issued and not yet settled (a commit is in progress). */
  private inFlight = 0;
  private held: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  /**
   * `maxHoldMs` 0: no grouping beyond LMDB's own (every write is issued at once). `now` is the clock the ages of
   * running jobs are read from (a parameter for tests).
   */
  constructor(
    private readonly maxHoldMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A VM took `job`. */
  begun(job: object): void {
    this.running.set(job, this.now());
  }

  /** `job` ended (with a result, a crash, a timeout or a protocol error), before its write if any. */
  end(job: object): void {
    this.running.delete(job);
    if (this.waitingFor.delete(job)) this.releaseIfDue();
  }

  /** Runs `write` now or when its group goes; settles as `write` does. */
  async write<T>(write: () => Promise<T>): Promise<T> {
    if (this.maxHoldMs > 0 && (this.inFlight > 0 || this.held.length > 0 || this.young().size > 0)) {
      const wait = new Promise<void>((resolve) => this.held.push(resolve));
      this.stats.held++;
      if (this.inFlight === 0 && this.held.length === 1) this.arm();
      await wait;
    } else {
      this.stats.commits++;
    }
    this.stats.writes++;
    this.inFlight++;
    try {
      return await write();
    } finally {
      this.inFlight--;
      if (this.inFlight === 0 && this.held.length > 0) this.arm();
    }
  }

  /** Nothing is committing and writes are held: they go once the young running jobs have ended, or at the cap. */
  private arm(): void {
    this.waitingFor = this.young();
    if (this.waitingFor.size === 0) return this.release();
    clearTimeout(this.timer);
    // Not unref'd: a held write is a call in progress, which must not let the process exit before it commits.
    this.timer = setTimeout(() => this.release(), this.maxHoldMs);
  }

  /** The running jobs that began less than maxHoldMs ago: the ones worth waiting for. */
  private young(): Set<object> {
    const now = this.now();
    const young = new Set<object>();
    for (const [job, began] of this.running) if (now - began < this.maxHoldMs) young.add(job);
    return young;
  }

  private releaseIfDue(): void {
    if (this.held.length > 0 && this.inFlight === 0 && this.waitingFor.size === 0) this.release();
  }

  private release(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.waitingFor.clear();
    const held = this.held;
    this.held = [];
    if (held.length > 0) this.stats.commits++;
    for (const go of held) go();
  }
}
