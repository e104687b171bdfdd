import type { ModulePolicy } from './policy.js';
import { FRAME_OVERHEAD } from './stack.js';
import { reasonMessage } from '../../protocol/reasons.js';

/**
 * The instrumented code or a host function ran out of gas. gasUsed() is then the whole limit. Internal control
 * flow (src/errors.ts, INTERNAL_ERROR_CLASSES): it unwinds the guest and becomes the result reason out_of_gas.
 */
export class OutOfGas extends Error {
  override readonly name = 'OutOfGas';
  constructor() {
    super(reasonMessage('out_of_gas'));
  }
}

/**
 * The deterministic stack-height counter passed policy.maxStackHeight. Internal control flow (src/errors.ts,
 * INTERNAL_ERROR_CLASSES): it unwinds the guest and becomes the result reason stack_overflow.
 */
export class StackOverflow extends Error {
  override readonly name = 'StackOverflow';
  constructor() {
    super(reasonMessage('stack_overflow'));
  }
}

export interface Meter {
  /** `{ hostlink: {...} }`: merge with the guest's "env" imports when instantiating. */
  readonly imports: WebAssembly.Imports;
  /** The remaining-gas global the instrumented code decrements (fresh per meter). */
  readonly gas: WebAssembly.Global;
  /** What the instrumented code's out_of_gas import does: leaves no gas and throws OutOfGas. */
  exhaust(): never;
  /** Charges a host function's cost; throws OutOfGas (leaving no gas) if the remaining gas is smaller. */
  charge(amount: bigint): void;
  /**
   * Gas used so far. Exact after a return, out_of_gas, stack_overflow and any error thrown by a host function
   * (the counter is synchronised before every host call). Pass the error that ended the execution: after a
   * WebAssembly trap (a WebAssembly.RuntimeError, or V8's RangeError) the whole limit is used, because the
   * instrumented code keeps the counter in locals between host calls.
   */
  gasUsed(failure?: unknown): bigint;
}

/** Names of the imports the instrumented module expects from module "hostlink". */
export const HOSTLINK_MODULE = 'hostlink';
export const GAS_GLOBAL_NAME = 'gas';
/** The memory a VM supplies to a module prepared with `importMemory`. */
export const MEMORY_IMPORT_NAME = 'memory';
export const OUT_OF_GAS_NAME = 'out_of_gas';
export const STACK_OVERFLOW_NAME = 'stack_overflow';

const MAX_GAS = (1n << 63n) - 1n;

/**
 * One execution's gas counter. The remaining gas lives in an imported mutable i64 global that the instrumented
 * code decrements per segment; host functions charge the same global through charge(), so both draw from one
 * counter. Also raises Error.stackTraceLimit so that a trap's backtrace holds every wasm frame the stack
 * limit allows (the fingerprint must never be a truncated, tier-dependent prefix).
 */
export function createMeter(gasLimit: bigint, policy: ModulePolicy): Meter {
  if (gasLimit < 0n || gasLimit > MAX_GAS) throw new RangeError(`gas limit out of range: ${gasLimit}`);
  const gas = new WebAssembly.Global({ value: 'i64', mutable: true }, gasLimit);
  ensureStackTraceLimit(policy);
  const outOfGas = (): never => {
    gas.value = 0n;
    throw new OutOfGas();
  };
  return {
    get imports(): WebAssembly.Imports {
      return { [HOSTLINK_MODULE]: { [GAS_GLOBAL_NAME]: gas, [OUT_OF_GAS_NAME]: outOfGas, [STACK_OVERFLOW_NAME]: stackOverflow } };
    },
    gas,
    exhaust: outOfGas,
    charge(amount: bigint): void {
      const left = gas.value as bigint;
      if (amount < 0n) throw new RangeError(`negative gas charge: ${amount}`);
      if (amount > left) outOfGas();
      gas.value = left - amount;
    },
    gasUsed(failure?: unknown): bigint {
      if (failure instanceof WebAssembly.RuntimeError || failure instanceof RangeError) return gasLimit;
      return gasLimit - (gas.value as bigint);
    },
  };
}

/** The stack_overflow import: it holds no state, so every instance can share it. */
export function stackOverflow(): never {
  throw new StackOverflow();
}

/**
 * Frames a backtrace can hold: every counted frame costs at least FRAME_OVERHEAD, plus one uncounted leaf or
 * helper on top and the JS frames between the throw and the wasm code (a margin of 64).
 */
export function stackTraceFramesNeeded(policy: ModulePolicy): number {
  return Math.ceil(policy.maxStackHeight / FRAME_OVERHEAD) + 64;
}

export function ensureStackTraceLimit(policy: ModulePolicy): void {
  const need = stackTraceFramesNeeded(policy);
  if (!(Error.stackTraceLimit >= need)) Error.stackTraceLimit = need;
}
