/**
 * Non-deterministic blocks and sandboxes (Hostlink extension; docs/nondet.md): run_nondet, sandbox and, in a
 * validator's sub-instance, nondet_leader_result. The block logic and the roles are in ../nondet-blocks.ts;
 * what a sub-instance may call is in ../sub-instance.ts.
 */
import type { BlockResult } from '../../protocol/nondet.js';
import { decodeBlockResult } from '../../protocol/nondet.js';
import { NONDET_LIMITS } from '../../protocol/nondet.generated.js';
import type { Execution } from '../execution.js';
import type { FamilyImpl } from './types.js';
import { reasonMessage } from '../../protocol/reasons.js';

const utf8 = new TextEncoder();
const CODE = { return: 0, user_error: 1, vm_error: 2 } as const;

function methodName(ex: Execution, ptr: bigint, what: string): string {
  return ex.readString(ptr, what, ex.limit('maxMethodNameLength', 'ValueLengthOverflow'));
}

function readInput(ex: Execution, ptr: bigint): Uint8Array {
  return ex.readBuffer(ptr, 'input', ex.limit('maxRegisterSize', 'ValueLengthOverflow')).slice();
}

/** Puts a block result's payload in the register and returns its code. */
function deliver(ex: Execution, registerId: bigint, r: BlockResult): number {
  ex.setRegister(registerId, r.code === 'return' ? r.data : utf8.encode(r.message));
  return CODE[r.code];
}

export const nondet: FamilyImpl<'nondet'> = {
  run_nondet(ex, leaderPtr, validatorPtr, inputPtr, registerId) {
    const leader = methodName(ex, leaderPtr, 'leader method');
    const validator = methodName(ex, validatorPtr, 'validator method');
    const input = readInput(ex, inputPtr);
    // enter() already refused this call in every sub-instance, so this is the main instance.
    const blocks = ex.nondet;
    if (blocks === null) return ex.fail('Forbidden', 'a non-deterministic block is forbidden here');
    return deliver(ex, registerId, blocks.run(ex, leader, validator, input));
  },
  sandbox(ex, methodPtr, inputPtr, allowWriteOps, registerId) {
    const method = methodName(ex, methodPtr, 'sandbox method');
    const input = readInput(ex, inputPtr);
    const depth = ex.rules.depth + 1;
    if (depth > NONDET_LIMITS.maxSubInstanceDepth) {
      // A value, not a trap: a fork bomb ends here and the contract can handle it.
      const message = reasonMessage('OOM', `sandbox_depth: sub-instances may nest at most ${NONDET_LIMITS.maxSubInstanceDepth} deep`);
      return deliver(ex, registerId, { code: 'vm_error', message });
    }
    const rules = {
      kind: 'sandbox' as const,
      deterministic: ex.rules.deterministic,
      writeOps: ex.rules.writeOps && allowWriteOps === 1,
      depth,
      leaderResult: null,
    };
    return deliver(ex, registerId, ex.spawn({ method, input, rules }));
  },
  nondet_leader_result(ex, registerId) {
    const proposal = ex.rules.leaderResult;
    if (proposal === null) return -1;
    const r = decodeBlockResult(proposal);
    // The proposal was checked (or replaced) before the validator started, so it always decodes.
    if (typeof r === 'string') return ex.fail('DeserializationError', `leader result: ${r}`);
    return deliver(ex, registerId, r);
  },
};
