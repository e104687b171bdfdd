/**
 * The deploy-time checks of a contract, run on their own (`hostlink check`, `hostlink build`): the module must
 * be valid WebAssembly and pass the VM's whitelist, module limits and import catalogue with the given limits.
 * A failure carries the rule it breaks and a hint that says how to fix the contract.
 */
import { DEFAULT_LIMITS, type FloatPolicy, type VmLimits } from '../protocol/message.js';
import { ModuleRejected, prepareModule } from '../vm/instrument/index.js';
import { policyFor } from '../vm/policy.js';

/** The flag that routes AssemblyScript's `abort` (throw, failed bounds checks) to the SDK's panic. */
export const ABORT_FLAG = '--use abort=~lib/@hostlink/sdk/assembly/panic/hostlinkAbort';

export interface CheckFailure {
  /** Stable rule name (docs/determinism.md), or `not_wasm`. */
  rule: string;
  /** What the checker says, e.g. `import_not_allowed: env.abort: unknown host function`. */
  message: string;
  /** What to do about it. */
  hint: string;
}

/** How to fix a contract that breaks `rule` (the rejection's detail narrows it, e.g. which import). */
export function fixHint(rule: string, detail = ''): string {
  if (rule === 'import_not_allowed') {
    if (detail.startsWith('env.abort:')) {
      return `AssemblyScript imports env.abort for throw and failed checks, which is not a host function: compile with ${ABORT_FLAG} (hostlink build adds it)`;
    }
    if (detail.startsWith('env.seed:')) return 'Math.random imports env.seed: use randomBytes() from @hostlink/sdk';
    if (detail.startsWith('env.trace:')) return 'trace() imports env.trace: use log() from @hostlink/sdk';
    if (detail.includes('wrong signature')) return 'the import has the wrong signature: import host functions through @hostlink/sdk, not by hand';
    return 'contracts may import only the host functions of module "env" (docs/host-functions.md): remove the import or use the SDK';
  }
  if (rule === 'import_memory' || rule === 'import_table' || rule === 'import_global') {
    return 'a contract must define its own memory and table and import only functions: drop --importMemory/--importTable';
  }
  if (rule.startsWith('feature_')) return `the VM accepts WebAssembly 1.0 plus bulk memory, sign extension and multi-value: compile without this feature (remove --enable ${rule.slice(8)})`;
  if (rule === 'float_instruction') return 'this host rejects floating point: use integers (or run the host with floats: "canonicalize")';
  if (rule === 'module_too_large' || rule === 'too_many_functions' || rule === 'too_many_locals' || rule === 'data_too_large' || rule === 'memory_too_large' || rule === 'table_too_large' || rule === 'too_many_params') {
    return 'the contract exceeds a VM limit: make it smaller (optimize with --optimize, split it) or raise the limit on the host (docs/message.md lists the limits)';
  }
  return 'the module is not one the VM can run: rebuild it with hostlink build';
}

/** Runs the deploy-time checks; undefined when the module passes. */
export function checkContract(wasm: Uint8Array, options: { limits?: Partial<VmLimits>; floats?: FloatPolicy } = {}): CheckFailure | undefined {
  if (!WebAssembly.validate(wasm)) {
    return { rule: 'not_wasm', message: 'not a valid WebAssembly module', hint: 'compile the contract to .wasm first (hostlink build)' };
  }
  try {
    prepareModule(wasm, policyFor({ limits: { ...DEFAULT_LIMITS, ...options.limits }, floats: options.floats ?? 'canonicalize' }));
    return undefined;
  } catch (e) {
    if (!(e instanceof ModuleRejected)) throw e;
    return { rule: e.rule, message: e.message.replace(/^module rejected: /, ''), hint: fixHint(e.rule, e.detail) };
  }
}
