/**
 * The rule a method name follows (docs/message.md, `method`): 1 to max_method_name_length ASCII letters, digits
 * or `_`. The VM applies it to every execution message and sub-instance; the node applies it again where a
 * caller hands a name in (hostlink serve), so a name the VM would refuse is refused before it is queued or kept.
 */
import { MAX_METHOD_NAME_LENGTH_LIMIT } from './limits.generated.js';

const METHOD_NAME_SYNTAX = /^[A-Za-z0-9_]+$/;

/** Whether `name` is a method name under a max_method_name_length of `maxLength`. */
export function isMethodName(name: string, maxLength: number): boolean {
  // Length first: the syntax test would walk a name of any size.
  return name.length <= maxLength && METHOD_NAME_SYNTAX.test(name);
}

/** What a method name must be, for error messages (the VM's invalid_method_name and the node's 400). */
export function methodNameRule(maxLength: number): string {
  return `method names are 1-${maxLength} ASCII letters, digits or _`;
}

/** The AssemblyScript runtime's own exports (`__new`, `__pin`…): never a contract's method, nor listed as one. */
export const isRuntimeHelper = (name: string): boolean => name.startsWith('__');

/**
 * Whether an exported function is a method: it takes and returns nothing, is not one of the AssemblyScript
 * runtime's `__` helpers (isRuntimeHelper), and its name is one a call can give on some node (the rule at the longest
 * max_method_name_length allowed). The one rule for every list of a contract's methods: `hostlink inspect`, the
 * ABI, the node's descriptions and the VM's method_not_found message.
 */
export function isMethodExport(name: string, params: number, results: number): boolean {
  return params === 0 && results === 0 && !isRuntimeHelper(name) && isMethodName(name, MAX_METHOD_NAME_LENGTH_LIMIT);
}
