/**
 * Builds a guest's import object from the host-function table (protocol/host-functions.json). Each family's
 * implementations live in their own module here; this file only links names to implementations and wraps
 * each one with the bookkeeping every call needs (current function name, base gas from protocol/gas-costs.json).
 */
import { HostlinkError } from '../../errors.js';
import type { Execution } from '../execution.js';
import { GAS_GLOBAL_NAME, HOSTLINK_MODULE, MEMORY_IMPORT_NAME, OUT_OF_GAS_NAME, STACK_OVERFLOW_NAME, stackOverflow, type Meter } from '../instrument/index.js';
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
 * The import functions of one compiled module, built once and linked into every fresh instance of it.
 *
 * Why: building a closure per import per execution, and instantiating against functions V8 has never seen,
 * cost about as much as the rest of the instantiation (a pooled VM spent ~130 us in instantiation with fresh
 * closures against ~60 us with reused ones). The closures here read the execution they serve from `active`,
 * which the runner sets around each instance's whole life (constructor with its start function, then the
 * method call) and restores afterwards, so a sub-instance of the same module run inside a host call of its
 * parent sees its own execution and the parent sees its own again when it resumes. Everything synchronous:
 * an instance's code can only run while its execution is the active one. Nothing else is shared: every
 * execution still gets a fresh instance, a fresh Execution (registers, overlay, budget) and a fresh meter,
 * whose gas global is, with the memory the runner lends the instance (zeroed: memory-pool.ts), the per-call
 * part of the import object.
 */
export class ModuleLink {
  private active: { ex: Execution; meter: Meter } | null = null;
  private readonly env: Record<string, (...args: (bigint | number)[]) => bigint | number | void> = {};
  private readonly outOfGas = (): never => this.current().meter.exhaust();

  constructor(wanted: readonly WebAssembly.ModuleImportDescriptor[]) {
    for (const { module, name } of wanted) {
      if (module !== HOST_MODULE || !isCatalogued(name)) continue;
      const impl = IMPLEMENTATIONS[name] as AnyHostFn | undefined;
      if (impl === undefined) continue;
      this.env[name] = (...args) => {
        const ex = this.current().ex;
        ex.enter(name);
        return impl(ex, ...args);
      };
    }
  }

  private current(): { ex: Execution; meter: Meter } {
    // Unreachable while the runner brackets every instance with run(): an import can only be called by an
    // instance whose execution is running. Fail closed rather than serve some other execution.
    if (this.active === null) throw new HostlinkError('internal', 'a host function was called outside its execution');
    return this.active;
  }

  /**
   * Runs `fn` (instantiate and call) with `ex` and `meter` as the ones the imports serve; `fn` gets the import
   * object, with `memory` as the instance's memory when the module imports it (the runner lends one per instance).
   */
  run<T>(ex: Execution, meter: Meter, fn: (imports: WebAssembly.Imports) => T, memory?: WebAssembly.Memory): T {
    const outer = this.active;
    this.active = { ex, meter };
    try {
      const hostlink: WebAssembly.ModuleImports = { [GAS_GLOBAL_NAME]: meter.gas, [OUT_OF_GAS_NAME]: this.outOfGas, [STACK_OVERFLOW_NAME]: stackOverflow };
      if (memory !== undefined) hostlink[MEMORY_IMPORT_NAME] = memory;
      return fn({ [HOST_MODULE]: this.env, [HOSTLINK_MODULE]: hostlink });
    } finally {
      this.active = outer;
    }
  }
}
