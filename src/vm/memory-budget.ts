/**
 * One execution's byte budget for what the VM holds on the guest's behalf outside its linear memory:
 * registers, the storage and private-storage overlays (keys, committed values read, values written), and the
 * pending effects that leave with the result (logs, events, xcalls, context mutations, proposals, approvals,
 * blob announcements and buffered blob bytes, the artifact, the return value). Without it, registers plus
 * the write overlay of one call reached 648 MB and an out-of-memory kill decided the outcome, which then
 * depended on the machine.
 *
 * Every held item is counted as its byte length plus ENTRY_OVERHEAD (the map entry, object header and
 * bookkeeping), so a flood of empty items is bounded too. The count depends only on what the guest asked
 * for, never on how V8 stores it, so exceeding `max_execution_memory` is the same MemoryLimitExceeded
 * VMError at the same call on every machine. Values that share storage (a register holding a value the
 * overlay also holds) are counted twice: conservative, and independent of aliasing decisions in the code.
 */
import { GuestError } from '../errors.js';

/** Bytes charged per held item on top of its length. */
export const ENTRY_OVERHEAD = 64;

export class MemoryBudget {
  private held = 0;

  constructor(
    /** max_execution_memory of the message. */
    readonly limit: number,
    /** Name of the host function being served, for the error. */
    private readonly currentFn: () => string,
  ) {}

  /** Bytes held now. */
  get used(): number {
    return this.held;
  }

  /**
   * Records that `delta` more bytes are held (negative: released). Throws MemoryLimitExceeded, changing
   * nothing, when the total would pass the limit.
   */
  adjust(delta: number, what: string): void {
    const next = this.held + delta;
    if (delta > 0 && next > this.limit) {
      throw new GuestError(
        'MemoryLimitExceeded',
        this.currentFn(),
        `${what} would bring registers, storage overlays and pending effects to ${next} bytes, over max_execution_memory ${this.limit}`,
      );
    }
    this.held = next;
  }

  /**
   * Back to a total read from `used` earlier: everything held since then was dropped (what a non-deterministic
   * block held, nondet-blocks.ts). Never raises the total.
   */
  rewind(to: number): void {
    this.held = Math.min(this.held, to);
  }

  /** Holds a new item of `bytes` bytes (plus the per-item overhead). */
  hold(bytes: number, what: string): void {
    this.adjust(bytes + ENTRY_OVERHEAD, what);
  }
}
