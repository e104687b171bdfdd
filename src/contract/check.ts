/**
 * The deploy-time checks of a contract, run on their own (`hostlink check`, `hostlink build`): the module must
 * be valid WebAssembly and pass the VM's whitelist, module limits and import catalogue with the given limits.
 * A failure carries the rule it breaks and a hint that says how to fix the contract.
 */
import { DEFAULT_LIMITS, type FloatPolicy, type VmLimits } from '../protocol/message.js';
import { deployVerdict } from '../vm/instrument/deploy-verdict.js';
import { policyFor } from '../vm/policy.js';
import { fixHint } from './hints.js';
import { valTypeName, type WasmModule } from '../vm/instrument/module.js';
import type { ModulePolicy } from '../vm/instrument/policy.js';
import { readModule } from '../vm/instrument/reader.js';
import { RESERVED_IMPORT_MODULE } from '../vm/instrument/validate.js';

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
  const policy = policyFor({ limits: { ...DEFAULT_LIMITS, ...options.limits }, floats: options.floats ?? 'canonicalize' });
  const verdict = deployVerdict(wasm, policy);
  if (verdict === undefined) return undefined;
  if (verdict === 'not_wasm') {
    return { rule: 'not_wasm', message: 'not a valid WebAssembly module', hint: 'give the compiled contract: hostlink build, run in the contract project, writes build/NAME.wasm' };
  }
  if (verdict.rule === 'import_not_allowed') {
    const all = forbiddenImports(wasm, policy);
    if (all.length > 1) {
      // The VM stops at the first (its verdict must not depend on how much it read); a build reports every one.
      const hints = [...new Set(all.map((d) => fixHint('import_not_allowed', d)))];
      return { rule: verdict.rule, message: `import_not_allowed: ${all.length} imports are not host functions: ${all.join('; ')}`, hint: hints.join('; ') };
    }
  }
  return { rule: verdict.rule, message: verdict.message.replace(/^module rejected: /, ''), hint: fixHint(verdict.rule, verdict.detail) };
}

/** Every function import the policy refuses, as "module.name: reason" (the rejection's detail of each). */
function forbiddenImports(wasm: Uint8Array, policy: ModulePolicy): string[] {
  let m: WasmModule;
  try {
    m = readModule(wasm);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const imp of m.imports) {
    const type = m.types[imp.typeIndex];
    if (imp.kind !== 0 || type === undefined) continue;
    const where = `${imp.module}.${imp.name}`;
    const reason = imp.module === RESERVED_IMPORT_MODULE
      ? 'reserved module'
      : policy.checkImport(imp.module, imp.name, { params: type.params.map(valTypeName), results: type.results.map(valTypeName) });
    if (reason !== undefined) out.push(`${where}: ${reason}`);
  }
  return out;
}

