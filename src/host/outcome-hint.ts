/**
 * What a person reading a failed call needs besides the bare reason: which limit stopped it and how to raise it.
 * Presentation only (the CLI's output, the testing harness's assertion text): the result itself, which the
 * execution hash covers, is never changed here.
 */
import { HANDED_TO_HOST_GAS } from '../vm/host-functions.generated.js';
import { reasonMessage, RESULT_REASONS } from '../protocol/reasons.js';

/** The parts of a result a hint reads: the CLI's local outcome and a node's outcome JSON both have them. */
export interface HintedResult {
  code: string;
  message: string;
  /** Whether the result carries no fingerprint (the VM did not raise it inside the contract). */
  fingerprintNull: boolean;
}

/** How the reader raises each limit where the hint is shown (a CLI flag, a harness option). */
export interface HintContext {
  /** The gas limit the call ran with. */
  gasLimit: bigint;
  /** How to pass another gas limit, e.g. `--gas N`. */
  gasOption: string;
  /** The deadline the call ran with (ms), when known. */
  deadlineMs?: number;
  /** How to pass another deadline, e.g. `--deadline MS`. */
  deadlineOption: string;
}

const OUT_OF_GAS = reasonMessage('out_of_gas');
const TIMEOUT = reasonMessage('timeout');

/** Whether the VM stopped at the deadline: it was killed, so no gas figure came back. */
export function isTimeout(r: Pick<HintedResult, 'code' | 'message'>): boolean {
  return r.code === RESULT_REASONS.timeout.code && r.message === TIMEOUT;
}

/** One line on why a failed call stopped and what to change, or undefined when the message says it all. */
export function failureHint(r: HintedResult, c: HintContext): string | undefined {
  if (r.code === 'vm_error' && r.message === OUT_OF_GAS) {
    // A result raised inside the contract carries a fingerprint; out_of_gas without one is the runner's: the
    // method finished, and its value and effects were too large for the gas left (docs/results.md).
    if (r.fingerprintNull) {
      return `the method finished, but handing its result and changes to the host costs ${HANDED_TO_HOST_GAS.perByte} gas per byte (handed_to_host) and the call's limit of ${c.gasLimit} gas could not pay for them: return less, or raise the limit with ${c.gasOption}`;
    }
    return `the call used up its gas limit of ${c.gasLimit} (a method that never ends stops this way too): raise it with ${c.gasOption}`;
  }
  if (isTimeout(r)) {
    const limit = c.deadlineMs !== undefined ? `its deadline of ${c.deadlineMs} ms` : 'its deadline';
    return `the call ran past ${limit} and its VM was stopped (a method that never ends with a large gas limit stops this way): raise it with ${c.deadlineOption}`;
  }
  return undefined;
}
