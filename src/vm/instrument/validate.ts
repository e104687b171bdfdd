import { MAX_DATA_SEGMENTS, MAX_ELEMENT_ENTRIES, MAX_EXPORTS, MAX_FUNCTION_BODY_BYTES, MAX_GLOBALS, MAX_TYPES } from '../../protocol/bounds.generated.js';
import { valTypeName, type WasmModule, type Element } from './module.js';
import type { ModulePolicy } from './policy.js';
import { ModuleRejected, quotedName } from './rejected.js';

/** Import module reserved for the instrumentation's own imports. */
export const RESERVED_IMPORT_MODULE = 'hostlink';

/**
 * Module-level whitelist and limits (instruction-level checks happen while rewriting, in rewrite.ts).
 * Only what the module declares is checked here; the order of the checks is fixed, so a module breaking
 * several rules is always rejected for the same one.
 */
export function validateModule(m: WasmModule, policy: ModulePolicy): void {
  // Budgets first: they bound the work of everything after (the rewriter and V8's own validation).
  if (m.types.length > MAX_TYPES) throw new ModuleRejected('too_many_types', `${m.types.length} function types, limit ${MAX_TYPES}`);
  // What every call's fresh instance creates again, before the method runs and outside gas.
  if (m.globals.length > MAX_GLOBALS) throw new ModuleRejected('too_many_globals', `${m.globals.length} globals, limit ${MAX_GLOBALS}`);
  if (m.exports.length > MAX_EXPORTS) throw new ModuleRejected('too_many_exports', `${m.exports.length} exports, limit ${MAX_EXPORTS}`);
  if (m.datas.length > MAX_DATA_SEGMENTS) throw new ModuleRejected('too_many_data_segments', `${m.datas.length} data segments, limit ${MAX_DATA_SEGMENTS}`);
  // A segment counts one more than its references: instantiation walks every segment, even an empty one.
  const entries = m.elements.reduce((n, e) => n + 1 + (e.funcs?.length ?? e.exprs?.length ?? 0), 0);
  if (entries > MAX_ELEMENT_ENTRIES) {
    throw new ModuleRejected('too_many_element_entries', `${entries} element entries (function references, plus one per segment), limit ${MAX_ELEMENT_ENTRIES}`);
  }
  m.codes.forEach((c) => {
    if (c.code.length > MAX_FUNCTION_BODY_BYTES) {
      throw new ModuleRejected('function_too_large', `body of ${c.code.length} bytes, limit ${MAX_FUNCTION_BODY_BYTES}`, undefined, c.codeOffset);
    }
  });
  let importedFunctions = 0;
  for (const imp of m.imports) {
    const where = `${quotedName(imp.module)}.${quotedName(imp.name)}`;
    if (imp.kind === 1) throw new ModuleRejected('import_table', where, undefined, imp.offset);
    if (imp.kind === 2) throw new ModuleRejected('import_memory', where, undefined, imp.offset);
    if (imp.kind === 3) throw new ModuleRejected('import_global', where, undefined, imp.offset);
    const type = m.types[imp.typeIndex];
    if (!type) throw new ModuleRejected('invalid_module', `import ${where} has no type ${imp.typeIndex}`, undefined, imp.offset);
    const reason = imp.module === RESERVED_IMPORT_MODULE
      ? 'reserved module'
      : policy.checkImport(imp.module, imp.name, { params: type.params.map(valTypeName), results: type.results.map(valTypeName) });
    if (reason !== undefined) throw new ModuleRejected('import_not_allowed', `${where}: ${reason}`, undefined, imp.offset);
    importedFunctions++;
  }
  const total = importedFunctions + m.functions.length;
  if (total > policy.maxFunctions) {
    throw new ModuleRejected('too_many_functions', `${total} functions, limit ${policy.maxFunctions}`);
  }
  m.functions.forEach((t, i) => {
    if (t >= m.types.length) throw new ModuleRejected('invalid_module', `function ${importedFunctions + i} has no type ${t}`);
  });
  if (m.start !== undefined && m.start >= total) throw new ModuleRejected('invalid_module', 'start function does not exist');

  for (const g of m.globals) {
    checkConstExpr(g.init, policy, g.offset);
  }
  for (const e of m.elements) checkElement(e, total);
  let dataBytes = 0;
  for (const d of m.datas) {
    if (d.offsetExpr) checkConstExpr(d.offsetExpr, policy, d.offset);
    dataBytes += d.bytes.length;
    if (dataBytes > policy.maxDataBytes) {
      throw new ModuleRejected('data_too_large', `more than ${policy.maxDataBytes} bytes of data segments`, undefined, d.offset);
    }
  }
}

/** Constant expressions: the reader only lets single instructions through; refuse the non-numeric ones. */
function checkConstExpr(expr: Uint8Array, policy: ModulePolicy, offset: number): void {
  const op = expr[0];
  // global.get can only name an imported global, and importing globals is not allowed.
  if (op === 0x23 || op === 0xd0 || op === 0xd2) throw new ModuleRejected('invalid_const_expr', undefined, undefined, offset);
  if ((op === 0x43 || op === 0x44) && policy.floats === 'reject') {
    throw new ModuleRejected('float_instruction', 'float constant', undefined, offset);
  }
}

function checkElement(e: Element, functionCount: number): void {
  // Declarative segments (3, 7) and other tables exist only with reference types.
  if (e.flags === 3 || e.flags === 7 || e.table !== 0) {
    throw new ModuleRejected('feature_reference_types', 'element segment', undefined, e.offset);
  }
  if ((e.flags & 3) !== 0 && e.kind !== ((e.flags & 4) ? 0x70 : 0x00)) {
    throw new ModuleRejected('feature_reference_types', 'element type', undefined, e.offset);
  }
  if (e.offsetExpr && e.offsetExpr[0] !== 0x41) throw new ModuleRejected('invalid_const_expr', undefined, undefined, e.offset);
  for (const f of e.funcs ?? []) {
    if (f >= functionCount) throw new ModuleRejected('invalid_module', `element names function ${f}`, undefined, e.offset);
  }
  for (const x of e.exprs ?? []) {
    // ref.func f | ref.null func
    if (!((x[0] === 0xd2) || (x[0] === 0xd0 && x[1] === 0x70))) {
      throw new ModuleRejected('invalid_const_expr', 'element expression', undefined, e.offset);
    }
  }
}
