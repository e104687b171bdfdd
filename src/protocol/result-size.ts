/**
 * The result-too-large rule: a result and effects that do not fit one frame become a vm_error that keeps only
 * the gas used and the logs, so the host still learns the outcome. The VM applies it before sending (a larger
 * frame could not be sent at all); the host applies it again in consume_result, so a path without frames
 * (in-process) gets the same outcome and a VM that skips the rule gains nothing.
 */
import { emptyEffects, type Effects } from './effects.js';
import { MAX_FRAME_BYTES } from './generated.js';
import { reasonResult } from './reasons.js';
import type { ExecutionResult } from './result.js';
import { extend } from '../extend.js';

/** Bytes a consume_result request adds around its result and effects (method id, two length prefixes, slack). */
const CONSUME_RESULT_OVERHEAD = 16;

/**
 * What to report for a result and effects whose encodings take `resultBytes` and `effectsBytes`: `report`
 * itself when they fit one frame, otherwise result_too_large with only the gas used and the logs.
 */
export function fitResult<R extends { result: ExecutionResult; effects: Effects }>(
  resultBytes: number,
  effectsBytes: number,
  report: R,
): R | { result: ExecutionResult; effects: Effects } {
  if (resultBytes + effectsBytes + CONSUME_RESULT_OVERHEAD <= MAX_FRAME_BYTES) return report;
  return {
    result: reasonResult('result_too_large', `the result and effects take ${resultBytes + effectsBytes} bytes, over the ${MAX_FRAME_BYTES}-byte frame limit`),
    effects: extend(emptyEffects(), { gasUsed: report.effects.gasUsed, logs: report.effects.logs }),
  };
}
