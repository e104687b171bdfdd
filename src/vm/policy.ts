/**
 * The module policy of an execution, derived from its message: the limits travel in the message, so every
 * node prepares the module with the same policy and gets the same instrumented bytes.
 */
import type { ExecutionMessage } from '../protocol/message.js';
import { checkCatalogueImport, type ModulePolicy, type NumType } from './instrument/index.js';
import { IMPLEMENTATIONS, isCatalogued } from './imports/index.js';

/** Bytes per slot of the stack-height counter (max_stack_size is given in bytes). */
export const STACK_SLOT_BYTES = 8;

/** Catalogue check plus "implemented by this VM", so a module never links against a missing function. */
export function checkImport(module: string, name: string, type: { params: NumType[]; results: NumType[] }): string | undefined {
  const problem = checkCatalogueImport(module, name, type);
  if (problem !== undefined) return problem;
  if (isCatalogued(name) && IMPLEMENTATIONS[name] === undefined) return 'not available in this VM version';
  return undefined;
}

export function policyFor(msg: Pick<ExecutionMessage, 'limits' | 'floats'>): ModulePolicy {
  const l = msg.limits;
  return {
    maxModuleBytes: l.maxModuleSize,
    maxFunctions: l.maxFunctions,
    maxLocalsPerFunction: l.maxLocalsPerFunction,
    maxTableSize: l.maxTableSize,
    maxDataBytes: l.maxDataBytes,
    maxMemoryPages: l.maxMemoryPages,
    maxStackHeight: Math.floor(l.maxStackSize / STACK_SLOT_BYTES),
    maxNestingDepth: l.maxNestingDepth,
    floats: msg.floats,
    checkImport,
  };
}

/** The part of a policy that changes prepareModule's output: a cache key. */
export function policyKey(p: ModulePolicy): string {
  return [p.maxModuleBytes, p.maxFunctions, p.maxLocalsPerFunction, p.maxTableSize, p.maxDataBytes, p.maxMemoryPages, p.maxStackHeight, p.floats, p.maxNestingDepth].join(',');
}
