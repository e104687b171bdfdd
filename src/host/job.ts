/**
 * A Job is one execution the host wants done: its message and the promise of its report. Whoever ends the
 * job first (the VM's result, its crash, the deadline) decides its outcome; later attempts are ignored.
 */
import type { GuestRequests } from '../protocol/effect-limits.js';
import type { Effects } from '../protocol/effects.js';
import { parseMessage, type ExecutionMessage } from '../protocol/message.js';
import type { ExecutionResult } from '../protocol/result.js';
import { CallTrace } from './call-trace.js';
import type { EarlyRun } from './speculation.js';

export interface VmCrash {
  exitCode: number | null;
  signal: string | null;
  /** Last lines the VM wrote to stderr. */
  stderr: string;
  /** Set for a VM on a remote worker: the worker's slot address (its pid and stderr are of that machine). */
  worker?: string;
}

export type JobEnd =
  | { kind: 'result'; result: ExecutionResult; effects: Effects }
  | { kind: 'timeout' }
  | { kind: 'crash'; crash: VmCrash }
  | { kind: 'protocol'; message: string }
  /** The host's own store failed while serving the VM (a blob staged on a full disk): not the VM's doing. */
  | { kind: 'store_failed'; message: string };

export class Job {
  readonly message: ExecutionMessage;
  readonly done: Promise<JobEnd>;
  private settle!: (end: JobEnd) => void;
  private final: JobEnd | undefined;
  /** The protocol requests made for this job, with sizes and timings (events, metrics, --trace). */
  readonly trace = new CallTrace();

  /**
   * The requests sent on the guest's behalf so far, their bytes both ways and the storage keys they asked for
   * (counted by the session as they arrive and are answered). An honest VM charges their round_trip gas before
   * it sends each one (the answer's bytes when it arrives), so a request that takes them past the call's gas
   * limit was not paid for: the session ends the job at once as a protocol violation, instead of doing the
   * work for as long as the deadline lasts and refusing the result only then.
   */
  readonly guest: GuestRequests = { count: 0, bytes: 0, keys: 0 };
  /** get_code requests made during the job (the VM's own, bounded by the session). */
  codeRequests = 0;
  /**
   * Set for an early run (the previous call on the context still committing): what the host answered it from,
   * recorded by the session so the scheduler can tell whether the run stands (speculation.ts).
   */
  early: EarlyRun | null = null;
  /** The execution hash the call must end with to be applied (CallRequest.acceptedExecutionHash), or null. */
  acceptedExecutionHash: Uint8Array | null = null;

  constructor(readonly messageJson: string) {
    this.message = parseMessage(messageJson);
    this.done = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  /** How the job ended, or undefined while it runs (the same value `done` resolves with). */
  get ending(): JobEnd | undefined {
    return this.final;
  }

  /** Ends the job; returns false when it had already ended. */
  end(end: JobEnd): boolean {
    if (this.final !== undefined) return false;
    this.final = end;
    this.settle(end);
    return true;
  }
}
