/**
 * How to fix a contract the host refuses, by the rule it breaks. Kept free of imports: the CLI's error
 * printer uses it, and must not load the instrumenter for commands that never deploy.
 */

/** The flag that routes AssemblyScript's `abort` (throw, failed bounds checks) to the SDK's panic. */
export const ABORT_FLAG = '--use abort=~lib/@hostlink/sdk/assembly/panic/hostlinkAbort';

/** How to fix a contract that breaks `rule` (the rejection's detail narrows it, e.g. which import). */
export function fixHint(rule: string, detail = ''): string {
  if (rule === 'import_not_allowed') {
    if (detail.startsWith('env.abort:')) {
      return `AssemblyScript imports env.abort for throw and failed checks, which is not a host function: compile with ${ABORT_FLAG} (hostlink build adds it)`;
    }
    if (detail.startsWith('env.seed:')) return 'Math.random imports env.seed: use randomBytes() from @hostlink/sdk';
    if (detail.startsWith('env.trace:')) return 'trace() imports env.trace: use log() from @hostlink/sdk';
    if (detail.startsWith('env.console.')) return `console.${detail.slice(12).split(':')[0]} imports ${detail.split(':')[0]}: use log() from @hostlink/sdk`;
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
  if (rule === 'too_many_globals' || rule === 'too_many_exports' || rule === 'too_many_element_entries' || rule === 'too_many_data_segments' || rule === 'too_many_types') {
    return 'the contract exceeds a fixed module budget (docs/bounds.md): make it smaller (optimize with --optimize, split it)';
  }
  if (rule === 'no_memory_export') return 'every execution reads the contract\'s memory: export it as "memory" (AssemblyScript does by default; keep --exportMemory)';
  return 'the module is not one the VM can run: rebuild it with hostlink build';
}

/**
 * The fix for a host's "contract refused: RULE: DETAIL" message (Host.deploy's wording), or undefined for
 * other messages: lets the CLI add the hint to a refused deploy without the host knowing about build tools.
 */
export function refusalHint(message: string): string | undefined {
  const m = /^contract refused: ([a-z0-9_]+)(?:: (.*))?$/s.exec(message);
  return m ? fixHint(m[1]!, m[2] ?? '') : undefined;
}
