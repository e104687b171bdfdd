/**
 * What a sub-instance is allowed to do, and the end of an execution decided by a host function.
 *
 * A sub-instance is a fresh instance of the same module run inside the VM process for a non-deterministic
 * block (leader or validator method) or a sandbox call (docs/nondet.md). Its rules say which host functions
 * it may call (protocol/nondet.json lists each function's access class) and whether time and randomness come
 * from the message (deterministic) or from the machine (a non-deterministic block).
 */
import type { ExecutionResult } from '../protocol/result.js';
import { HOST_FUNCTION_ACCESS } from '../protocol/nondet.generated.js';
import type { HostFunctionName } from './host-functions.generated.js';

export type InstanceKind = 'main' | 'nondet' | 'sandbox';

export interface InstanceRules {
  kind: InstanceKind;
  /** False only in a non-deterministic block: time_now and random_bytes then come from the machine. */
  deterministic: boolean;
  /** May call the write functions (storage writes, emit, xcall). */
  writeOps: boolean;
  /** Sub-instances between this one and the main instance (main: 0). */
  depth: number;
  /** In a validator's sub-instance: the leader's proposal (block encoding) it judges. */
  leaderResult: Uint8Array | null;
}

export const MAIN_RULES: Readonly<InstanceRules> = Object.freeze({
  kind: 'main',
  deterministic: true,
  writeOps: true,
  depth: 0,
  leaderResult: null,
});

/** A sub-instance to run: a method of the same contract, its input, its rules. */
export interface SubInstanceRequest {
  method: string;
  input: Uint8Array;
  rules: InstanceRules;
}

const WHERE: Readonly<Record<InstanceKind, string>> = {
  main: 'the main instance',
  nondet: 'a non-deterministic block',
  sandbox: 'a sandbox',
};

/** Why `fn` may not be called under `rules` (a sentence containing "forbidden"), or undefined when it may. */
export function forbiddenReason(fn: HostFunctionName, rules: InstanceRules): string | undefined {
  if (rules.kind === 'main') return undefined;
  const where = WHERE[rules.kind];
  switch (HOST_FUNCTION_ACCESS[fn]) {
    case 'any':
      return undefined;
    case 'read':
      return `storage is forbidden in ${where}`;
    case 'write':
      if (rules.writeOps) return undefined;
      return rules.kind === 'sandbox'
        ? 'writes are forbidden in this sandbox (allow_write_ops is 0 or its caller may not write)'
        : `writes are forbidden in ${where}`;
    case 'start_nondet':
      return `a non-deterministic block is forbidden inside ${where}`;
    case 'main':
      return `${fn} is forbidden in ${where} (only the main instance may use it)`;
  }
}

/**
 * Thrown by a host function to end the whole execution with a given result (a leader's VMError, a validator's
 * disagreement, a missing proposal). It passes through the guest's frames like any trap; the runner turns it
 * into the result without a fingerprint (the error is the protocol's decision, not a trap in the code).
 * Internal control flow (src/errors.ts, INTERNAL_ERROR_CLASSES): it carries a result, never reaches a caller.
 */
export class EndExecution extends Error {
  constructor(readonly result: Exclude<ExecutionResult, { code: 'return' }>) {
    super(result.message);
  }
}

export const endWith = (message: string): EndExecution => new EndExecution({ code: 'vm_error', message, fingerprint: null });
