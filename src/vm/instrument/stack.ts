import type { ByteWriter } from './bytes.js';

/**
 * Deterministic stack accounting. V8's own stack limit depends on the JIT tier, the caller's JS stack and
 * the Node version, so a recursion must stop on our counter, long before V8's.
 *
 * The stack height travels with the calls like the gas: every defined function receives the height of its
 * callers as an extra i32 parameter, adds its own frame cost on entry and passes the sum to its callees;
 * when the sum exceeds policy.maxStackHeight the function branches to its stack-overflow block, which calls
 * the throwing import. Returning needs no bookkeeping (the caller still holds its own height). The frame
 * cost, in 8-byte slots, is params + declared locals + maximum operand-stack height + FRAME_OVERHEAD
 * (return address, frame pointer, instance, the two added parameters and the instrumentation's temporaries).
 */
export const FRAME_OVERHEAD = 8;

/**
 * Functions that call nothing cannot recurse; if their frame is at most this many slots they are not counted,
 * which removes the accounting from small hot helpers. The native stack must therefore hold
 * maxStackHeight + LEAF_FRAME_ALLOWANCE slots.
 */
export const LEAF_FRAME_ALLOWANCE = 1024;

export function frameCost(params: number, locals: number, maxOperandHeight: number): number {
  return params + locals + maxOperandHeight + FRAME_OVERHEAD;
}

/** Entry: height += cost; if height > max: br $stack_overflow. */
export function writeStackEnter(w: ByteWriter, cost: number, max: number, heightLocal: number, overflowLabel: number): void {
  w.opU32(0x20, heightLocal); // local.get $height
  w.u8(0x41); w.sleb(cost); // i32.const cost
  w.u8(0x6a); // i32.add
  w.opU32(0x22, heightLocal); // local.tee $height
  w.u8(0x41); w.sleb(max | 0); // i32.const max
  w.u8(0x4b); // i32.gt_u
  w.opU32(0x0d, overflowLabel); // br_if $stack_overflow
}
