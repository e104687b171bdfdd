/**
 * Why an execution stopped, as the stable VMError message every node reports. V8's own messages are an
 * implementation detail (they differ between V8 versions and say "null function or function signature
 * mismatch" for two different causes), so each is mapped to a fixed string here; docs/determinism.md has the
 * table. Anything not recognised returns undefined: the VM must then report an internal error, never guess.
 */
import type { PreparedModule } from './instrument/index.js';
import { ModuleRejected, OutOfGas, StackOverflow } from './instrument/index.js';
import { isMethodExport } from '../protocol/method-name.js';
import { reasonMessage } from '../protocol/reasons.js';

export interface VmErrorClass {
  code: 'vm_error';
  message: string;
}

export const OUT_OF_GAS = reasonMessage('out_of_gas');
export const STACK_OVERFLOW = reasonMessage('stack_overflow');

/** V8 trap message (without the "WebAssembly.Instance(): " prefix of instantiation errors) -> our trap kind. */
const TRAP_KINDS: Readonly<Record<string, string>> = {
  'unreachable': 'unreachable',
  'memory access out of bounds': 'memory_out_of_bounds',
  'divide by zero': 'integer_divide_by_zero',
  'remainder by zero': 'integer_divide_by_zero',
  'divide result unrepresentable': 'integer_overflow',
  'float unrepresentable in integer range': 'invalid_conversion_to_integer',
  'null function or function signature mismatch': 'indirect_call_type_mismatch',
  'table index is out of bounds': 'table_out_of_bounds',
  'data segment is out of bounds': 'data_segment_out_of_bounds',
  'data segment out of bounds': 'data_segment_out_of_bounds',
  'element segment is out of bounds': 'element_segment_out_of_bounds',
  'element segment out of bounds': 'element_segment_out_of_bounds',
};

/** V8 trap message -> our message ("wasm_trap <kind>"). */
export const WASM_TRAPS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(TRAP_KINDS).map(([v8, kind]) => [v8, reasonMessage('wasm_trap', kind)]),
);

export function classifyTrap(err: unknown): VmErrorClass | undefined {
  if (err instanceof OutOfGas) return { code: 'vm_error', message: OUT_OF_GAS };
  if (err instanceof StackOverflow) return { code: 'vm_error', message: STACK_OVERFLOW };
  if (err instanceof ModuleRejected) return { code: 'vm_error', message: err.message };
  if (err instanceof WebAssembly.RuntimeError) {
    const text = err.message.replace(/^WebAssembly\.\w+\(\): /, '');
    const message = WASM_TRAPS[text];
    if (message) return { code: 'vm_error', message };
  }
  // RangeError "Maximum call stack size exceeded" cannot happen for an instrumented module (the stack-height
  // limit stops it first); if it does, it is a bug, and its depth is not deterministic: not a vm_error.
  return undefined;
}

/** At most this many method names are listed in a method_not_found message (it travels in the result). */
const LISTED_METHODS = 20;

/**
 * The callable methods of a module for a method_not_found message (isMethodExport), in export order (the
 * module's bytes decide, so every node reports the same text).
 */
function methodList(prepared: PreparedModule): string {
  const names = prepared.exports
    .filter((x) => x.kind === 'function' && x.type !== undefined && isMethodExport(x.name, x.type.params.length, x.type.results.length))
    .map((x) => (x.name.length > 64 ? x.name.slice(0, 64) + '…' : x.name));
  if (names.length === 0) return 'the contract exports no methods';
  const shown = names.slice(0, LISTED_METHODS).join(', ');
  return `methods: ${shown}${names.length > LISTED_METHODS ? `, … (${names.length} in all)` : ''}`;
}

/**
 * A method that the runner cannot call. Messages: "method_not_found <name> (methods: a, b, …)",
 * "method_not_function <name>".
 */
export function checkMethodExport(prepared: PreparedModule, method: string): VmErrorClass | undefined {
  const e = prepared.exports.find((x) => x.name === method);
  if (!e) return { code: 'vm_error', message: reasonMessage('method_not_found', `${method} (${methodList(prepared)})`) };
  if (e.kind !== 'function' || !e.type || e.type.params.length !== 0 || e.type.results.length !== 0) {
    return { code: 'vm_error', message: reasonMessage('method_not_function', method) };
  }
  return undefined;
}
