/**
 * The module pipeline: every contract goes through prepareModule before V8 compiles it. It decodes the binary,
 * checks it against the whitelist and the policy limits, and rewrites it so that its execution is metered and
 * deterministic (docs/determinism.md). The result depends only on the bytes, the policy and
 * INSTRUMENTATION_VERSION, so the VM caches it by (code hash, version).
 */
import { ENGINE_MAX_FUNCTIONS, ENGINE_MAX_IMPORTS, INSTRUMENTED_GROWTH_ALLOWANCE_BYTES, MAX_INSTRUMENTED_GROWTH, MAX_MODULE_COMPILE_STATE_SLOTS, MIN_FUNCTION_COMPILE_STATE_SLOTS } from '../../protocol/bounds.generated.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { BT_EMPTY } from './code.js';
import { writeChargeUnitsBody } from './gas.js';
import { writeEntryThunk, writeTableThunk } from './thunks.js';
import { clampMemoryAndTable } from './memory.js';
import { GAS_GLOBAL_NAME, HOSTLINK_MODULE, MEMORY_IMPORT_NAME, OUT_OF_GAS_NAME, STACK_OVERFLOW_NAME } from './meter.js';
import { I32, I64, KIND_FUNC, KIND_GLOBAL, KIND_MEMORY, valTypeName, type WasmModule } from './module.js';
import type { ModulePolicy } from './policy.js';
import { readModule } from './reader.js';
import { ModuleRejected, quotedName } from './rejected.js';
import { FunctionRewriter, type RewriteEnv } from './rewrite.js';
import { validateModule } from './validate.js';
import { writeModule } from './writer.js';

export { ModuleRejected } from './rejected.js';
export type { ModulePolicy, NumType } from './policy.js';
export { OutOfGas, StackOverflow, createMeter, stackOverflow, GAS_GLOBAL_NAME, HOSTLINK_MODULE, MEMORY_IMPORT_NAME, OUT_OF_GAS_NAME, STACK_OVERFLOW_NAME, type Meter } from './meter.js';
export { checkCatalogueImport } from './catalogue.js';

export { INSTRUMENTATION_VERSION } from './version.js';

export interface PreparedExport {
  name: string;
  kind: 'function' | 'memory' | 'table' | 'global';
  /** Index in the ORIGINAL module's index space of that kind. */
  index: number;
  type?: { params: string[]; results: string[] };
}

export interface PreparedModule {
  /** The instrumented module. */
  bytes: Uint8Array;
  /** Function imports of the original module; they keep their indices. */
  importedFunctionCount: number;
  /** Function imports added after them (module "hostlink"); defined functions are shifted by this much. */
  addedImports: number;
  /** Functions (imported + defined) of the original module; instrumented indices past them are helpers. */
  functionCount: number;
  exports: PreparedExport[];
  /** What creating an instance does again every time (gas of a sub-instance: INSTANTIATION_GAS). */
  instantiation: InstantiationWork;
  /**
   * With `importMemory`: the limits of the memory the instance imports as `hostlink.memory` (the module's own
   * memory, clamped), which whoever instantiates it must supply; undefined when the module defines it itself.
   */
  importedMemory: { min: number; max: number } | undefined;
}

/** How prepareModule shapes its output beyond metering. */
export interface PrepareOptions {
  /**
   * Turn the module's memory into an import (`hostlink.memory`, same limits) so that the VM can hand each
   * instance a memory it recycles (src/vm/memory-pool.ts). The code, its gas and its behaviour are unchanged.
   */
  importMemory?: boolean;
  /**
   * The caller compiles the output at once (`new WebAssembly.Module`), which validates it: skip the separate
   * validation, which doubled V8's work on every module a VM loads, and call `engineRefusal` when compiling fails.
   */
  compiledAtOnce?: boolean;
}

/** The work of creating one instance, from the module's static structure (after the memory and table clamps). */
export interface InstantiationWork {
  /** Bytes of the active data segments, copied into the new memory. */
  dataBytes: number;
  /** Initial slots of the table. */
  tableSlots: number;
  /** Entries of the active element segments, written into the table. */
  elements: number;
  /** Initial pages of the memory. */
  initialPages: number;
  /** Element and data segments, active or not, empty or not: each is walked at every instantiation. */
  elementSegments: number;
  dataSegments: number;
  /** Imports, each linked at every instantiation. */
  imports: number;
  /** Exports, each built at every instantiation. */
  exports: number;
  /** Globals, each created at every instantiation. */
  globals: number;
}

/** Every execution reads the guest's memory through this export: a module without it can never run. */
export function exportsMemory(m: Pick<PreparedModule, 'exports'>): boolean {
  return m.exports.some((e) => e.name === 'memory' && e.kind === 'memory');
}

/** Function imports the instrumentation adds, in this order, right after the module's own. */
const ADDED_FUNCTION_IMPORTS = [OUT_OF_GAS_NAME, STACK_OVERFLOW_NAME] as const;

/** Parameters and results a function type may have: V8's limits (1000) minus what the instrumentation adds. */
export const MAX_PARAMS = 998;
export const MAX_RESULTS = 999;

const KIND_NAMES = ['function', 'table', 'memory', 'global'] as const;

export function prepareModule(bytes: Uint8Array, policy: ModulePolicy, options: PrepareOptions = {}): PreparedModule {
  if (bytes.length > policy.maxModuleBytes) {
    throw new ModuleRejected('module_too_large', `${bytes.length} bytes, limit ${policy.maxModuleBytes}`);
  }
  const m = readModule(bytes);
  validateModule(m, policy);
  clampMemoryAndTable(m, policy);
  const instantiation: InstantiationWork = {
    dataBytes: m.datas.reduce((n, d) => n + (d.flags === 1 ? 0 : d.bytes.length), 0),
    tableSlots: m.tables.reduce((n, t) => n + t.limits.min, 0),
    elements: m.elements.reduce((n, e) => n + ((e.flags & 1) === 1 ? 0 : (e.funcs?.length ?? e.exprs?.length ?? 0)), 0),
    initialPages: m.memories.reduce((n, l) => n + l.min, 0),
    elementSegments: m.elements.length,
    dataSegments: m.datas.length,
    imports: m.imports.length,
    exports: m.exports.length,
    globals: m.globals.length,
  };

  const importedFunctions = m.imports.filter((i) => i.kind === KIND_FUNC).length;
  const functionTypes = [...m.imports.filter((i) => i.kind === KIND_FUNC).map((i) => i.typeIndex), ...m.functions];
  const functionCount = functionTypes.length;
  const originalTypeCount = m.types.length;
  const originalGlobalCount = m.globals.length;
  const definedCount = m.functions.length;
  const added = ADDED_FUNCTION_IMPORTS.length;

  // Not `exports`: the VM start-up snapshot's CommonJS form of this module reads its own exports by that name.
  const preparedExports: PreparedExport[] = m.exports.map((e) => {
    const limit = [functionCount, m.tables.length, m.memories.length, originalGlobalCount][e.kind]!;
    if (e.index >= limit) throw new ModuleRejected('invalid_module', `export ${quotedName(e.name)} names a missing item`, undefined, e.offset);
    const out: PreparedExport = { name: e.name, kind: KIND_NAMES[e.kind]!, index: e.index };
    if (e.kind === KIND_FUNC) {
      const t = m.types[functionTypes[e.index]!]!;
      out.type = { params: t.params.map(valTypeName), results: t.results.map(valTypeName) };
    }
    return out;
  });

  // Types the instrumentation needs, appended so that existing type indices stay valid. Looked up by a
  // signature key (first index wins, as a scan would find it): a linear scan per lookup made instrumentation
  // quadratic in the number of types and functions (a 3 MB module took minutes).
  const typeIndexes = new Map<string, number>();
  m.types.forEach((t, i) => {
    const k = signatureKey(t.params, t.results);
    if (!typeIndexes.has(k)) typeIndexes.set(k, i);
  });
  const typeIndex = (params: number[], results: number[]): number => {
    const k = signatureKey(params, results);
    const i = typeIndexes.get(k);
    if (i !== undefined) return i;
    m.types.push({ params, results });
    typeIndexes.set(k, m.types.length - 1);
    return m.types.length - 1;
  };
  const internalTypes = new Map<number, number>();
  /** `(P) -> (R)` becomes `(P, i64 gas, i32 height) -> (R, i64 gas)`: distinct types stay distinct. */
  const internalType = (t: number): number => {
    let i = internalTypes.get(t);
    if (i === undefined) {
      const orig = m.types[t]!;
      // V8 allows 1000 parameters and 1000 results; the internal convention adds two and one.
      if (orig.params.length > MAX_PARAMS || orig.results.length > MAX_RESULTS) {
        throw new ModuleRejected('too_many_params', `type ${t} has ${orig.params.length} parameters and ${orig.results.length} results, limit ${MAX_PARAMS} and ${MAX_RESULTS}`);
      }
      i = typeIndex([...orig.params, I64, I32], [...orig.results, I64]);
      internalTypes.set(t, i);
    }
    return i;
  };
  const voidType = typeIndex([], []);
  const chargeUnitsType = typeIndex([I32, I64, I64], [I32, I64]);

  // Imports: the gas global (the only imported global, so index 0 and every original global moves up by
  // one), then the throwing functions right after the module's own function imports.
  const ownImports = m.imports.length;
  const gasGlobal = 0;
  m.imports.push({ module: HOSTLINK_MODULE, name: GAS_GLOBAL_NAME, kind: KIND_GLOBAL, typeIndex: 0, global: { valType: I64, mutable: true }, offset: 0 });
  for (const name of ADDED_FUNCTION_IMPORTS) {
    m.imports.push({ module: HOSTLINK_MODULE, name, kind: KIND_FUNC, typeIndex: voidType, offset: 0 });
  }
  // Stack height at which calls from outside (exports, start, a host function calling back) begin.
  const heightGlobal = 1 + originalGlobalCount;
  m.globals.push({ type: { valType: I32, mutable: true }, init: new Uint8Array([0x41, 0x00, 0x0b]), offset: 0 });

  // Helpers are appended after the defined functions: charge_units, then thunks as needed.
  const helpers: { type: number; body: Uint8Array }[] = [];
  const helperIndex = (): number => importedFunctions + added + definedCount + helpers.length;
  const chargeUnitsFunc = helperIndex();
  const chargeBody = new ByteWriter(64);
  writeChargeUnitsBody(chargeBody, importedFunctions);
  helpers.push({ type: chargeUnitsType, body: chargeBody.finish() });

  const env: RewriteEnv = {
    bytes,
    policy,
    types: m.types,
    originalTypeCount,
    importedFunctions,
    functionTypes,
    originalGlobalCount,
    addedImports: added,
    addedGlobals: 1,
    gasGlobal,
    heightGlobal,
    chargeUnitsFunc,
    outOfGasFunc: importedFunctions,
    stackOverflowFunc: importedFunctions + 1,
    internalType,
    blockTypeFor: (results) => (results.length === 0 ? BT_EMPTY : results.length === 1 ? results[0]! - 0x80 : typeIndex([], [...results])),
  };
  const code = new ByteWriter(Math.ceil(bytes.length * 1.6) + 1024);
  const rewriter = new FunctionRewriter(env);
  const rewritten = new ByteWriter(Math.ceil(bytes.length * 1.6) + 1024);
  // Checked as the code grows, so that a module that would grow far past it is refused before it is all written.
  const mostBytes = MAX_INSTRUMENTED_GROWTH * bytes.length + INSTRUMENTED_GROWTH_ALLOWANCE_BYTES;
  const tooLarge = (what: string): ModuleRejected =>
    new ModuleRejected('module_too_large', `${what} once instrumented, limit ${mostBytes} (${MAX_INSTRUMENTED_GROWTH} x its ${bytes.length} bytes + ${INSTRUMENTED_GROWTH_ALLOWANCE_BYTES}: max_instrumented_growth)`);
  // Each function is compiled on its first call: one's compile state is freed before the next, its time is not.
  // Every function counts a floor, for the time it costs however small it is (instrumented, validated, compiled).
  let stateSlots = 0;
  for (let i = 0; i < definedCount; i++) {
    const slots = rewriter.rewrite(i, m.codes[i]!, rewritten).stateSlots;
    stateSlots += slots > MIN_FUNCTION_COMPILE_STATE_SLOTS ? slots : MIN_FUNCTION_COMPILE_STATE_SLOTS;
    if (stateSlots > MAX_MODULE_COMPILE_STATE_SLOTS) {
      throw new ModuleRejected('too_complex_to_compile', `at least ${stateSlots} compile state slots in its functions together (each counts at least ${MIN_FUNCTION_COMPILE_STATE_SLOTS}), limit ${MAX_MODULE_COMPILE_STATE_SLOTS}`);
    }
    m.functions[i] = internalType(m.functions[i]!);
    if (rewritten.length > mostBytes) throw tooLarge(`at least ${rewritten.length} bytes`);
  }

  // Entry thunks keep the original signature for callers outside the module (exports, start): they start
  // from the gas global and the height global, call the internal function and store the gas left.
  const entryThunks = new Map<number, number>();
  const entryThunk = (f: number): number => {
    if (f < importedFunctions) return f;
    let t = entryThunks.get(f);
    if (t === undefined) {
      const w = new ByteWriter(32);
      writeEntryThunk(w, m.types[functionTypes[f]!]!.params.length, f + added, gasGlobal, heightGlobal);
      t = helperIndex();
      helpers.push({ type: functionTypes[f]!, body: w.finish() });
      entryThunks.set(f, t);
    }
    return t;
  };
  // Table entries must have the internal type: imported functions placed in a table get a thunk that does
  // what a direct host call does.
  const tableThunks = new Map<number, number>();
  const tableEntry = (f: number): number => {
    if (f >= importedFunctions) return f + added;
    let t = tableThunks.get(f);
    if (t === undefined) {
      const w = new ByteWriter(32);
      writeTableThunk(w, m.types[functionTypes[f]!]!.params.length, f, gasGlobal, heightGlobal);
      t = helperIndex();
      helpers.push({ type: internalType(functionTypes[f]!), body: w.finish() });
      tableThunks.set(f, t);
    }
    return t;
  };

  for (const e of m.exports) {
    if (e.kind === KIND_FUNC) e.index = entryThunk(e.index);
    else if (e.kind === KIND_GLOBAL) e.index += 1;
  }
  if (m.start !== undefined) m.start = entryThunk(m.start);
  for (const el of m.elements) {
    if (el.funcs) el.funcs = el.funcs.map(tableEntry);
    if (el.exprs) el.exprs = el.exprs.map((x) => remapRefFunc(x, tableEntry, functionCount, el.offset));
  }

  code.u32(definedCount + helpers.length);
  code.bytes(rewritten.view());
  for (const hlp of helpers) {
    m.functions.push(hlp.type);
    code.sized(hlp.body);
  }
  m.codeSection = code.view();
  // Names in custom sections would be wrong after the shift, and nothing else in them affects execution.
  m.customs = [];
  m.present.add(10);

  const importedMemory = options.importMemory ? memoryToImport(m) : undefined;
  // The engine's own limits, checked on the instrumented form with a memory import counted either way, so that
  // the deploy check and the VM agree; past them V8 refuses the module a contract author wrote within policy.
  const imports = m.imports.length + (importedMemory === undefined && m.memories.length > 0 ? 1 : 0);
  if (imports > ENGINE_MAX_IMPORTS) {
    throw new ModuleRejected('too_many_imports', `${imports} imports once instrumented (${ownImports} of its own), the engine's limit ${ENGINE_MAX_IMPORTS}`);
  }
  const functions = importedFunctions + added + m.functions.length;
  if (functions > ENGINE_MAX_FUNCTIONS) {
    throw new ModuleRejected('too_many_functions', `${functions} functions once instrumented (${functionCount} of its own), the engine's limit ${ENGINE_MAX_FUNCTIONS}`);
  }
  const out = writeModule(m, code.length + bytes.length);
  if (out.length > mostBytes) throw tooLarge(`${out.length} bytes`);
  if (!options.compiledAtOnce && !WebAssembly.validate(out)) throw engineRefusal(bytes);
  return { bytes: out, importedFunctionCount: importedFunctions, addedImports: added, functionCount, exports: preparedExports, instantiation, importedMemory };
}

/**
 * Why the engine refuses a module's instrumented form: the module itself is invalid WebAssembly, or it trips a
 * bound the checks here do not know (refused for every node of this release alike, never a crashed VM). The
 * same words wherever the refusal is found, so the deploy check and every VM give the same result.
 */
export function engineRefusal(original: Uint8Array): ModuleRejected {
  if (!WebAssembly.validate(original)) return new ModuleRejected('invalid_module', 'rejected by the WebAssembly validator');
  return new ModuleRejected('rejected_by_engine', 'the engine refuses its instrumented form');
}

/**
 * Replaces the module's one memory by an import of the same limits, `hostlink.memory`. Memory index 0 is the
 * imported one, so every instruction, export and data segment refers to it unchanged; contracts may not import
 * memories themselves (validateModule), so it is the only one. Returns its limits, or undefined without a memory.
 */
function memoryToImport(m: WasmModule): { min: number; max: number } | undefined {
  const memory = m.memories[0];
  if (memory === undefined) return undefined;
  // clampMemoryAndTable gave every memory a maximum.
  const limits = { min: memory.min, max: memory.max! };
  m.memories = [];
  m.present.delete(5);
  m.imports.push({ module: HOSTLINK_MODULE, name: MEMORY_IMPORT_NAME, kind: KIND_MEMORY, typeIndex: 0, memory: { ...limits }, offset: 0 });
  m.present.add(2);
  return limits;
}

/** A function type as a string key: value-type bytes of the params, a separator, the results' bytes. */
function signatureKey(params: readonly number[], results: readonly number[]): string {
  return String.fromCharCode(...params) + '|' + String.fromCharCode(...results);
}

/** Element expression `ref.func f end` with f shifted; `ref.null func end` unchanged. */
function remapRefFunc(x: Uint8Array, remap: (f: number) => number, functionCount: number, offset: number): Uint8Array {
  if (x[0] !== 0xd2) return x;
  const r = new ByteReader(x, 1);
  const f = r.u32();
  if (f >= functionCount) throw new ModuleRejected('invalid_module', `element names function ${f}`, undefined, offset);
  const w = new ByteWriter(8);
  w.u8(0xd2);
  w.u32(remap(f));
  w.u8(0x0b);
  return w.finish();
}
