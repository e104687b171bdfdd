/**
 * Builds a guest's import object from the host-function table (protocol/host-functions.json). Each family's
 * implementations live in their own module here; this file only links names to implementations and wraps
 * each one with the bookkeeping every call needs (current function name, base gas from protocol/gas-costs.json).
 */
import type { Execution } from '../execution.js';
import { HOST_FUNCTIONS, HOST_MODULE, type HostFunctionName } from '../host-functions.generated.js';
import { blobs } from './blobs.js';
import { context } from './context.js';
import { crdt_counter } from './crdt-counter.js';
import { crdt_lww } from './crdt-lww.js';
import { crdt_map } from './crdt-map.js';
import { crdt_set } from './crdt-set.js';
import { crdt_vector } from './crdt-vector.js';
import { frozen_storage } from './frozen-storage.js';
import { contexts } from './contexts.js';
import { governance } from './governance.js';
import { io } from './io.js';
import { logging } from './logging.js';
import { nondet } from './nondet.js';
import { private_storage } from './private-storage.js';
import { registers } from './registers.js';
import { state } from './state.js';
import { storage } from './storage.js';
import { system } from './system.js';
import type { HostFnOf } from './types.js';
import { user_storage } from './user-storage.js';
import { utility } from './utility.js';

type AnyHostFn = (ex: Execution, ...args: (bigint | number)[]) => bigint | number | void;

/** Every implemented host function, by name. */
export const IMPLEMENTATIONS: { readonly [N in HostFunctionName]?: HostFnOf<N> } = {
  ...system,
  ...registers,
  ...context,
  ...io,
  ...logging,
  ...storage,
  ...state,
  ...crdt_map,
  ...crdt_vector,
  ...crdt_set,
  ...crdt_lww,
  ...crdt_counter,
  ...user_storage,
  ...frozen_storage,
  ...private_storage,
  ...contexts,
  ...blobs,
  ...governance,
  ...utility,
  ...nondet,
};

export function isCatalogued(name: string): name is HostFunctionName {
  return Object.prototype.hasOwnProperty.call(HOST_FUNCTIONS, name);
}

/** Why an import cannot be linked, or undefined when it can. */
export function importProblem(module: string, name: string, kind: string): string | undefined {
  if (module !== HOST_MODULE) return `import ${module}.${name} is not from module "${HOST_MODULE}"`;
  if (kind !== 'function') return `import ${module}.${name} is a ${kind}; only functions may be imported`;
  if (!isCatalogued(name)) return `import ${module}.${name} is not a host function (see docs/host-functions.md)`;
  if (IMPLEMENTATIONS[name] === undefined) {
    return `host function ${name} (family ${HOST_FUNCTIONS[name].family}) is not available in this VM version`;
  }
  return undefined;
}

/**
 * The import object for one execution. Only the functions the module imports are wrapped.
 * Assumes the imports were checked with importProblem.
 */
export function buildImports(ex: Execution, wanted: readonly WebAssembly.ModuleImportDescriptor[]): WebAssembly.Imports {
  const env: Record<string, (...args: (bigint | number)[]) => bigint | number | void> = {};
  for (const { module, name } of wanted) {
    if (module !== HOST_MODULE || !isCatalogued(name)) continue;
    const impl = IMPLEMENTATIONS[name] as AnyHostFn | undefined;
    if (impl === undefined) continue;
    env[name] = (...args) => {
      ex.enter(name);
      return impl(ex, ...args);
    };
  }
  return { [HOST_MODULE]: env };
}
