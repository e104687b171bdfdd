/**
 * A Job is one execution the host wants done: its message and the promise of its report. Whoever ends the
 * job first (the VM's result, its crash, the deadline) decides its outcome; later attempts are ignored.
 */
import type { Effects } from '../protocol/effects.js';
import { parseMessage, type ExecutionMessage } from '../protocol/message.js';
import type { ExecutionResult } from '../protocol/result.js';
import { ROUND_TRIP_GAS } from '../vm/host-functions.generated.js';
import { CallTrace } from './call-trace.js';

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
   * Requests on the guest's behalf that the call's gas limit can pay for. An honest VM charges round_trip.base
   * for each before sending it, so a VM that sends one more did not: the session ends it at once as a protocol
   * violation, instead of answering it for as long as the deadline lasts and refusing its result only then.
   */
  readonly guestRequestAllowance: number;
  /** Requests on the guest's behalf answered so far (counted by the session). */
  guestRequests = 0;

  constructor(readonly messageJson: string) {
    this.message = parseMessage(messageJson);
    const allowance = this.message.gasLimit / BigInt(ROUND_TRIP_GAS.base);
    this.guestRequestAllowance = allowance > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(allowance);
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
