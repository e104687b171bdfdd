/**
 * The deploy-time checks of a contract, run on their own (`hostlink check`, `hostlink build`): the module must
 * be valid WebAssembly and pass the VM's whitelist, module limits and import catalogue with the given limits.
 * A failure carries the rule it breaks and a hint that says how to fix the contract.
 */
import { DEFAULT_LIMITS, type FloatPolicy, type VmLimits } from '../protocol/message.js';
import { deployVerdict } from '../vm/instrument/deploy-verdict.js';
import { policyFor } from '../vm/policy.js';
import { fixHint } from './hints.js';

export { ABORT_FLAG, fixHint, refusalHint } from './hints.js';

export interface CheckFailure {
  /** Stable rule name (docs/determinism.md), or `not_wasm`. */
  rule: string;
  /** What the checker says, e.g. `import_not_allowed: env.abort: unknown host function`. */
  message: string;
  /** What to do about it. */
  hint: string;
}

/** Runs the deploy-time checks; undefined when the module passes. */
export function checkContract(wasm: Uint8Array, options: { limits?: Partial<VmLimits>; floats?: FloatPolicy } = {}): CheckFailure | undefined {
  const verdict = deployVerdict(wasm, policyFor({ limits: { ...DEFAULT_LIMITS, ...options.limits }, floats: options.floats ?? 'canonicalize' }));
  if (verdict === undefined) return undefined;
  if (verdict === 'not_wasm') {
    return { rule: 'not_wasm', message: 'not a valid WebAssembly module', hint: 'compile the contract to .wasm first (hostlink build)' };
  }
  return { rule: verdict.rule, message: verdict.message.replace(/^module rejected: /, ''), hint: fixHint(verdict.rule, verdict.detail) };
}

