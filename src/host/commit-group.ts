/**
 * Group commit across contexts. A durable LMDB commit costs about the same CPU and the same two disk flushes
 * whether it carries one call's writes or several (the branch pages, the freelist, the meta page and the flushes
 * are per commit), so calls whose writes share a commit cost less each. LMDB already puts the writes queued during
 * a commit into the next one, so under load each commit carries the calls that finished while the previous one
 * ran; what it cannot know is that calls still running in VMs are about to write.
 *
 * So a finished call's write is held while a commit is in progress, and, once nothing is committing, until the
 * calls running in VMs at that moment have ended (each then writes, joining the group, or does not) or
 * `maxHoldMs` has passed, whichever comes first; then the held writes are issued together and LMDB commits them
 * as one. A call alone (nothing committing, nothing else running) is never held.
 *
 * Holding a write changes when a call's outcome becomes durable, never what it is: calls on one context are
 * serialized by the scheduler, and the order of commits across contexts already depends on timing (a call whose
 * alias another call committed first runs again).
 */
export class CommitGroup {
  /** Jobs a VM has taken and not yet ended. */
  private running = 0;
  /** Jobs ended so far: the held writes go once it reaches `target`. */
  private ended = 0;
  private target = 0;
  /** Writes issued and not yet settled (a commit is in progress). */
  private inFlight = 0;
  private held: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  /** `maxHoldMs` 0: no grouping beyond LMDB's own (every write is issued at once). */
  constructor(private readonly maxHoldMs: number) {}

  /** A VM took a job. */
  begun(): void {
    this.running++;
  }

  /** A job that had begun ended (with a result, a crash, a timeout or a protocol error), before its write if any. */
  end(): void {
    this.running--;
    this.ended++;
    this.releaseIfDue();
  }

  /** Runs `write` now or when its group goes; settles as `write` does. */
  async write<T>(write: () => Promise<T>): Promise<T> {
    if (this.maxHoldMs > 0 && (this.inFlight > 0 || this.held.length > 0 || this.running > 0)) {
      const wait = new Promise<void>((resolve) => this.held.push(resolve));
      if (this.inFlight === 0 && this.held.length === 1) this.arm();
      await wait;
    }
    this.inFlight++;
    try {
      return await write();
    } finally {
      this.inFlight--;
      if (this.inFlight === 0 && this.held.length > 0) this.arm();
    }
  }

  /** Nothing is committing and writes are held: they go when the jobs running now have ended, or at the cap. */
  private arm(): void {
    this.target = this.ended + this.running;
    clearTimeout(this.timer);
    // Not unref'd: a held write is a call in progress, which must not let the process exit before it commits.
    this.timer = setTimeout(() => this.release(), this.maxHoldMs);
    this.releaseIfDue();
  }

  private releaseIfDue(): void {
    if (this.held.length > 0 && this.inFlight === 0 && this.ended >= this.target) this.release();
  }

  private release(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const held = this.held;
    this.held = [];
    for (const go of held) go();
  }
}
