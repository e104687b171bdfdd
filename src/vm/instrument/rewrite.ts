import { MAX_INSTRUMENTED_FUNCTION_BYTES } from '../../protocol/bounds.generated.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { BT_EMPTY, Instr, decodeInstr, type DecodeContext } from './code.js';
import { COST_BY_CLASS, GAS_PER_BYTE, GAS_PER_PAGE, writeCharge, writeDynamicCharge, writeLoad, writeStore } from './gas.js';
import { F32, F64, I32, type FuncType, type FunctionBody } from './module.js';
import { writeCanonicalizeF32, writeCanonicalizeF64 } from './nan.js';
import { OP, FC, F_FLOAT, F_NAN32, F_NAN64, F_SPECIAL, IMM_BLOCKTYPE, IMM_FUNC, IMM_GLOBAL, IMM_I32, IMM_LABEL, IMM_LOCAL, IMM_MEMARG, IMM_NONE } from './opcodes.js';
import { DEFAULT_MAX_NESTING_DEPTH, type ModulePolicy } from './policy.js';
import { ModuleRejected } from './rejected.js';
import { LEAF_FRAME_ALLOWANCE, frameCost, writeStackEnter } from './stack.js';

/** What the rewriter needs to know about the module being instrumented. */
export interface RewriteEnv {
  bytes: Uint8Array;
  policy: ModulePolicy;
  /** Type section; original types first (indices below originalTypeCount). */
  types: readonly FuncType[];
  originalTypeCount: number;
  importedFunctions: number;
  /** Original type index of every original function, imports first. */
  functionTypes: readonly number[];
  originalGlobalCount: number;
  /** Function imports inserted after the original ones (defined functions move up by this much). */
  addedImports: number;
  /** Imported globals inserted before the original globals (which move up by this much). */
  addedGlobals: number;
  gasGlobal: number;
  heightGlobal: number;
  chargeUnitsFunc: number;
  outOfGasFunc: number;
  stackOverflowFunc: number;
  /** Index of the internal type `(P, i64 gas, i32 height) -> (R, i64 gas)` of original type t. */
  internalType(t: number): number;
  /** Block type (BT_EMPTY, negative value type, or a type index) for `[] -> results`. */
  blockTypeFor(results: readonly number[]): number;
}

export interface RewrittenFunction {
  frameCost: number;
  counted: boolean;
}

const K_BLOCK = 0;
const K_LOOP = 1;
const K_IF = 2;
const K_ELSE = 3;
const K_FUNC = 4;

/**
 * An `if` arm that is one straight segment costing at most this much is charged with the segment before the
 * `if` instead of by a check of its own (for if/else: the dearer arm). This removes one check per iteration
 * from the common `loop { if (cond) { ...; br loop } }` shape, at the price of overcharging at most this
 * much when the arm is skipped. Arms that end in `unreachable` (assertion failures) are never merged, so
 * bounds checks do not pay for their failure path.
 */
export const MERGE_ARM_LIMIT = 24;

// Arm outcomes (see armState).
const ARM_SEPARATE = 0; // keeps its own check
const ARM_MERGEABLE = 1; // can be charged with the parent segment
const ARM_CLEAN = 2; // mergeable, and falls through to the `end` without branching: code after may continue the parent

/**
 * Rewrites one function body into the internal calling convention and appends it (size-prefixed) to `out`.
 *
 * Locals: the original parameters, then `$gas` (i64) and `$height` (i32), then the declared locals (so their
 * indices move up by two), then the instrumentation's temporaries.
 *
 * - gas: the body is cut into metered segments, each charged in full at its start. A segment starts at the
 *   function entry, after `loop` (back-edge target), after `if` and `else` (conditional), after `end` of a loop
 *   or an `if`, and after `end` of a block that some branch targets. Code after an unconditional branch is
 *   unreachable and not charged. Every cycle passes a loop header and contains a branch (cost >= 1), so an
 *   infinite loop always runs out of gas. Small `if` arms are merged into the segment before them.
 * - stack: `$height += frame cost` on entry, checked against the limit (functions that call nothing and have
 *   a small frame are not counted).
 * - calls pass `$gas` and `$height` and take the remaining gas back; host calls go through the gas global.
 * - memory.grow and bulk operations: dynamic charge of their top operand before the instruction.
 * - NaN canonicalisation after every instruction that can produce a NaN.
 * - global indices move past the added imported global; `return` becomes a branch to the body block so that
 *   every exit leaves through the epilogue, which returns the gas.
 */
export class FunctionRewriter {
  private readonly ins = new Instr();
  private readonly w = new ByteWriter(1 << 16);
  private readonly head = new ByteWriter(256);
  private readonly tail = new ByteWriter(64);
  private readonly charges = new ByteWriter(4096);
  private readonly chargeAt: number[] = [];
  private readonly ctx: DecodeContext = { functionIndex: 0, decodeI64: false };
  // Control stack, as parallel arrays reused across functions.
  private kind: number[] = [];
  private base: number[] = [];
  private nParams: number[] = [];
  private nResults: number[] = [];
  private targeted: boolean[] = [];
  // Segments: position of the charge in the rewritten body, cost, control depth at the start.
  private segPos: number[] = [];
  private segCost: number[] = [];
  private segDepth: number[] = [];
  // Per `if` frame: the segment before it, the current arm's segment and counters at the arm's start, and
  // the then-arm's outcome once `else` is reached.
  private parentSeg: number[] = [];
  private armSeg: number[] = [];
  private armSplits: number[] = [];
  private armBranches: number[] = [];
  private thenSeg: number[] = [];
  private thenState: number[] = [];

  constructor(private readonly env: RewriteEnv) {}

  rewrite(definedIndex: number, body: FunctionBody, out: ByteWriter): RewrittenFunction {
    const env = this.env;
    const { bytes, policy } = env;
    const floatsRejected = policy.floats === 'reject';
    const functionIndex = env.importedFunctions + definedIndex;
    const ctx = this.ctx;
    ctx.functionIndex = functionIndex;
    const type = env.types[env.functionTypes[functionIndex]!]!;
    const paramCount = type.params.length;
    let declared = 0;
    for (const g of body.locals) declared += g.count;
    if (paramCount + declared > policy.maxLocalsPerFunction) {
      throw new ModuleRejected('too_many_locals', `${paramCount + declared} locals, limit ${policy.maxLocalsPerFunction}`,
        functionIndex, body.codeOffset);
    }
    const maxNesting = policy.maxNestingDepth ?? DEFAULT_MAX_NESTING_DEPTH;
    const gasLocal = paramCount;
    const heightLocal = paramCount + 1;
    const localCount = paramCount + declared; // original index space
    let nextTemp = paramCount + 2 + declared;
    const tempTypes: number[] = [];
    let tempF32 = -1;
    let tempF64 = -1;
    let tempIndex = -1;

    const w = this.w;
    w.length = 0;
    const ins = this.ins;
    const r = new ByteReader(bytes, body.codeOffset, body.codeOffset + body.code.length);
    const { kind, base, nParams, nResults, targeted, segPos, segCost, segDepth, parentSeg, armSeg, armSplits, armBranches, thenSeg, thenState } = this;
    segPos.length = 0;
    segCost.length = 0;
    segDepth.length = 0;
    let depth = 0;
    let h = 0;
    let maxH = 0;
    let curBase = 0;
    let cur = -1;
    let liveSplits = 0; // segments started and not merged away
    let branches = 0; // branch instructions seen so far
    let deadByTrap = false; // the current code is dead because of an `unreachable`
    let hasCalls = false;
    let pending = r.pos; // start of input bytes not yet copied to w

    const flush = (upTo: number): void => {
      if (upTo > pending) w.copy(bytes, pending, upTo);
      pending = upTo;
    };
    const temp = (t: number): number => {
      tempTypes.push(t);
      return nextTemp++;
    };
    const startSegment = (): void => {
      flush(r.pos);
      segPos.push(w.length);
      segCost.push(0);
      segDepth.push(depth);
      cur = segPos.length - 1;
      liveSplits++;
      deadByTrap = false;
    };
    const startArm = (d: number): void => {
      startSegment();
      armSeg[d] = cur;
      armSplits[d] = liveSplits;
      armBranches[d] = branches;
    };
    /** Outcome of the arm of frame d that just ended. */
    const armState = (d: number): number => {
      const a = armSeg[d]!;
      if (liveSplits !== armSplits[d] || segCost[a]! > MERGE_ARM_LIMIT) return ARM_SEPARATE;
      if (cur < 0 && deadByTrap) return ARM_SEPARATE;
      return cur === a && branches === armBranches[d] ? ARM_CLEAN : ARM_MERGEABLE;
    };
    /**
     * At the `end` of an if: charge mergeable arms with the parent segment; continue the parent after the
     * `end` when every path through the if falls through, otherwise start a new segment there.
     */
    const mergeArms = (d: number, k: number): void => {
      const p = parentSeg[d]!;
      const last = armState(d);
      const first = k === K_ELSE ? thenState[d]! : ARM_CLEAN; // a missing else is an empty, clean arm
      if (p >= 0 && last !== ARM_SEPARATE && first !== ARM_SEPARATE) {
        const lastSeg = armSeg[d]!;
        let cost = segCost[lastSeg]!;
        segCost[lastSeg] = 0;
        liveSplits--;
        if (k === K_ELSE) {
          const t = thenSeg[d]!;
          if (segCost[t]! > cost) cost = segCost[t]!;
          segCost[t] = 0;
          liveSplits--;
        }
        segCost[p] += cost;
        if (last === ARM_CLEAN && first === ARM_CLEAN) {
          cur = p;
          deadByTrap = false;
          return;
        }
      }
      startSegment();
    };
    const invalid = (detail: string): never => {
      throw new ModuleRejected('invalid_module', detail, functionIndex, ins.start);
    };
    let arityParams = 0;
    let arityResults = 0;
    const blockArity = (bt: number): void => {
      if (bt === BT_EMPTY) {
        arityParams = 0;
        arityResults = 0;
      } else if (bt < 0) {
        arityParams = 0;
        arityResults = 1;
      } else {
        if (bt >= env.originalTypeCount) invalid(`block type ${bt} does not exist`);
        const t = env.types[bt]!;
        arityParams = t.params.length;
        arityResults = t.results.length;
      }
    };
    const pushControl = (k: number, p: number, res: number): void => {
      // V8's compilers keep state per open block (about 1.5 KB each in Liftoff): 300k nested blocks took a VM
      // past 1 GB while compiling. The function's own frame is level 0, so the guest may open maxNestingDepth.
      if (depth > maxNesting) {
        throw new ModuleRejected('too_deeply_nested', `more than ${maxNesting} nested blocks, loops and ifs`, functionIndex, ins.start);
      }
      kind[depth] = k;
      base[depth] = h;
      nParams[depth] = p;
      nResults[depth] = res;
      targeted[depth] = false;
      depth++;
      curBase = h;
      h += p;
      if (h > maxH) maxH = h;
    };
    const markUnreachable = (): void => {
      h = curBase;
      cur = -1;
    };
    const target = (label: number): void => {
      if (label >= depth) invalid(`branch depth ${label} out of range`);
      targeted[depth - 1 - label] = true;
    };
    const callEffect = (t: FuncType, extraPops: number): void => {
      h -= t.params.length + extraPops;
      if (h < curBase) h = curBase;
      h += t.results.length;
      if (h > maxH) maxH = h;
      hasCalls = true;
    };

    // The function body is an implicit block with the function's results.
    pushControl(K_FUNC, 0, type.results.length);
    startSegment();

    const costs = COST_BY_CLASS;
    const opGas = OP.gas;
    const opFlags = OP.flags;
    const opPop = OP.pop;
    const opPush = OP.push;
    const opDefined = OP.defined;
    const opImm = OP.imm;
    const code = r.buf;
    const codeEnd = r.end;
    while (depth > 0) {
      const at = r.pos;
      if (at >= codeEnd) r.fail('function body ends before its last `end`');
      // The commonest shapes decoded here, as decodeInstr would (a one-byte index or label, no immediate, an
      // empty block type): a fresh VM runs this loop in V8's interpreter, where a call per instruction is
      // most of its cost. Everything else, and every rejection, goes through decodeInstr.
      const first = code[at]!;
      const imm = opDefined[first] === 1 ? opImm[first]! : -1;
      const next = at + 1 < codeEnd ? code[at + 1]! : 0x80;
      if (imm === IMM_NONE) {
        ins.start = at;
        ins.op = first;
        ins.sub = 0;
        ins.end = r.pos = at + 1;
      } else if (next < 0x80 && (imm === IMM_LOCAL || imm === IMM_GLOBAL || imm === IMM_LABEL || imm === IMM_FUNC)) {
        ins.start = at;
        ins.op = first;
        ins.sub = 0;
        ins.a = next;
        ins.end = r.pos = at + 2;
      } else if (next < 0x80 && imm === IMM_I32) {
        ins.start = at;
        ins.op = first;
        ins.sub = 0;
        ins.a = (next << 25) >> 25; // one-byte signed LEB128: sign-extend 7 bits
        ins.end = r.pos = at + 2;
      } else if (next < 0x40 && imm === IMM_MEMARG && at + 2 < codeEnd && code[at + 2]! < 0x80) {
        // alignment below 0x40 (bit 6 would announce a memory index) and a one-byte offset
        ins.start = at;
        ins.op = first;
        ins.sub = 0;
        ins.a = next;
        ins.b = code[at + 2]!;
        ins.end = r.pos = at + 3;
      } else if (next === 0x40 && imm === IMM_BLOCKTYPE) {
        ins.start = at;
        ins.op = first;
        ins.sub = 0;
        ins.a = BT_EMPTY;
        ins.end = r.pos = at + 2;
      } else {
        decodeInstr(r, ins, ctx);
      }
      const op = ins.op;
      let flags: number;
      let gasClass: number;
      let pop: number;
      let push: number;
      if (op === 0xfc) {
        flags = FC.flags[ins.sub]!;
        gasClass = FC.gas[ins.sub]!;
        pop = FC.pop[ins.sub]!;
        push = FC.push[ins.sub]!;
      } else {
        flags = opFlags[op]!;
        gasClass = opGas[op]!;
        pop = opPop[op]!;
        push = opPush[op]!;
      }
      if (floatsRejected && (flags & F_FLOAT)) {
        throw new ModuleRejected('float_instruction', undefined, functionIndex, ins.start);
      }
      if (cur >= 0) segCost[cur] += costs[gasClass]!;

      if ((flags & F_SPECIAL) === 0) {
        switch (op) {
          case 0x20: case 0x21: case 0x22: // locals: declared ones move past $gas and $height
            if (ins.a >= localCount) invalid(`local ${ins.a} does not exist`);
            if (ins.a >= paramCount) {
              flush(ins.start);
              w.u8(op);
              w.u32(ins.a + 2);
              pending = ins.end;
            }
            break;
          case 0x23: case 0x24:
            if (ins.a >= env.originalGlobalCount) invalid(`global ${ins.a} does not exist`);
            flush(ins.start);
            w.u8(op);
            w.u32(ins.a + env.addedGlobals);
            pending = ins.end;
            break;
          case 0x40: // memory.grow: charge the requested pages
            flush(ins.start);
            writeDynamicCharge(w, GAS_PER_PAGE, gasLocal, env.chargeUnitsFunc);
            break;
          case 0xfc:
            if (ins.sub === 8 || ins.sub === 10 || ins.sub === 11 || ins.sub === 12 || ins.sub === 14) {
              flush(ins.start);
              writeDynamicCharge(w, GAS_PER_BYTE, gasLocal, env.chargeUnitsFunc);
            }
            break;
        }
        h -= pop;
        if (h < curBase) h = curBase;
        h += push;
        if (h > maxH) maxH = h;
        if (flags & (F_NAN32 | F_NAN64)) {
          flush(ins.end);
          if (flags & F_NAN32) {
            if (tempF32 < 0) tempF32 = temp(F32);
            writeCanonicalizeF32(w, tempF32);
          } else {
            if (tempF64 < 0) tempF64 = temp(F64);
            writeCanonicalizeF64(w, tempF64);
          }
          // The canonicalisation needs three more operand slots on top of the result.
          if (h + 3 > maxH) maxH = h + 3;
        }
        continue;
      }

      switch (op) {
        case 0x00: // unreachable
          if (cur >= 0) deadByTrap = true;
          markUnreachable();
          break;
        case 0x02: // block
          blockArity(ins.a);
          h -= arityParams;
          if (h < curBase) h = curBase;
          pushControl(K_BLOCK, arityParams, arityResults);
          break;
        case 0x03: // loop: a back-edge target, so it starts a segment
          blockArity(ins.a);
          h -= arityParams;
          if (h < curBase) h = curBase;
          pushControl(K_LOOP, arityParams, arityResults);
          startSegment();
          break;
        case 0x04: // if
          blockArity(ins.a);
          h -= 1 + arityParams;
          if (h < curBase) h = curBase;
          parentSeg[depth] = cur;
          pushControl(K_IF, arityParams, arityResults);
          startArm(depth - 1);
          break;
        case 0x05: { // else
          const d = depth - 1;
          if (kind[d] !== K_IF) invalid('else without if');
          kind[d] = K_ELSE;
          h = base[d]! + nParams[d]!;
          thenState[d] = armState(d);
          thenSeg[d] = armSeg[d]!;
          startArm(d);
          break;
        }
        case 0x0b: { // end
          const d = depth - 1;
          const k = kind[d]!;
          h = base[d]! + nResults[d]!;
          if (h > maxH) maxH = h;
          depth--;
          curBase = depth > 0 ? base[depth - 1]! : 0;
          if (depth === 0) break;
          // Code after the end of a loop would otherwise be charged on every iteration; after an if it is
          // reached from both arms; after a targeted block it is reached by branches.
          if (k === K_LOOP) {
            if (cur >= 0) startSegment();
          } else if (k === K_IF || k === K_ELSE) {
            mergeArms(d, k);
          } else if (targeted[d]) {
            startSegment();
          }
          break;
        }
        case 0x0c: // br
          branches++;
          target(ins.a);
          markUnreachable();
          break;
        case 0x0d: // br_if
          branches++;
          target(ins.a);
          h -= 1;
          if (h < curBase) h = curBase;
          break;
        case 0x0e: // br_table
          branches++;
          for (let i = 0; i <= ins.count; i++) target(ins.targets[i]!);
          markUnreachable();
          break;
        case 0x0f: // return: a branch to the body block, so that the epilogue runs
          branches++;
          flush(ins.start);
          w.u8(0x0c);
          w.u32(depth - 1);
          pending = ins.end;
          targeted[0] = true;
          markUnreachable();
          break;
        case 0x10: { // call
          const f = ins.a;
          if (f >= env.functionTypes.length) invalid(`function ${f} does not exist`);
          callEffect(env.types[env.functionTypes[f]!]!, 0);
          flush(ins.start);
          if (f < env.importedFunctions) {
            // A host function charges the gas global; it also learns the height, should it call back in.
            writeStore(w, gasLocal, env.gasGlobal);
            w.u8(0x20); w.u32(heightLocal); // local.get $height
            w.u8(0x24); w.u32(env.heightGlobal); // global.set $height
            w.u8(0x10); w.u32(f);
            writeLoad(w, gasLocal, env.gasGlobal);
          } else {
            w.u8(0x20); w.u32(gasLocal);
            w.u8(0x20); w.u32(heightLocal);
            w.u8(0x10); w.u32(f + env.addedImports);
            w.u8(0x21); w.u32(gasLocal); // local.set $gas (the callee's extra result)
          }
          pending = ins.end;
          break;
        }
        case 0x11: { // call_indirect: the table index is on top; slip $gas and $height under it
          if (ins.a >= env.originalTypeCount) invalid(`type ${ins.a} does not exist`);
          callEffect(env.types[ins.a]!, 1);
          if (tempIndex < 0) tempIndex = temp(I32);
          flush(ins.start);
          w.u8(0x21); w.u32(tempIndex);
          w.u8(0x20); w.u32(gasLocal);
          w.u8(0x20); w.u32(heightLocal);
          w.u8(0x20); w.u32(tempIndex);
          w.u8(0x11); w.u32(env.internalType(ins.a)); w.u8(0x00);
          w.u8(0x21); w.u32(gasLocal);
          pending = ins.end;
          break;
        }
        default:
          invalid('unexpected opcode');
      }
    }
    if (r.pos !== r.end) r.fail('code after the end of the function body');
    flush(r.pos);

    // Assemble:
    //   locals (declared + temporaries; $gas and $height are parameters)
    //   block $stack_overflow                      (counted functions only)
    //     $height += frame cost; br_if $stack_overflow when over the limit
    //     block $out_of_gas
    //       block $body (result R)                 every exit of the original body arrives after this block
    //         original body, with the segment charges (br_if $out_of_gas) spliced in
    //       end
    //       local.get $gas  return                 results: R, then the gas left
    //     end
    //     call $out_of_gas  unreachable
    //   end
    //   store gas; call $stack_overflow  unreachable
    // The throwing calls sit outside the body, so V8 keeps them out of the hot path.
    const cost = frameCost(paramCount + 2, declared, maxH);
    const counted = hasCalls || cost > LEAF_FRAME_ALLOWANCE;
    const head = this.head;
    head.length = 0;
    head.u32(body.locals.length + tempTypes.length);
    for (const g of body.locals) {
      head.u32(g.count);
      head.u8(g.type);
    }
    for (const t of tempTypes) {
      head.u32(1);
      head.u8(t);
    }
    if (counted) {
      head.u8(0x02);
      head.u8(0x40);
      writeStackEnter(head, cost, policy.maxStackHeight, heightLocal, 0);
    }
    head.u8(0x02);
    head.u8(0x40);
    head.u8(0x02);
    const bt = env.blockTypeFor(type.results);
    if (bt === BT_EMPTY) head.u8(0x40);
    else if (bt < 0) head.u8(0x80 + bt);
    else head.sleb(bt);
    const tail = this.tail;
    tail.length = 0;
    tail.u8(0x20); tail.u32(gasLocal);
    tail.u8(0x0f); // return
    tail.u8(0x0b); // end $out_of_gas
    tail.u8(0x10); tail.u32(env.outOfGasFunc);
    tail.u8(0x00); // unreachable: the import throws
    if (counted) {
      tail.u8(0x0b); // end $stack_overflow
      writeStore(tail, gasLocal, env.gasGlobal); // gas used stays exact
      tail.u8(0x10); tail.u32(env.stackOverflowFunc);
      tail.u8(0x00);
    }
    tail.u8(0x0b);

    const charges = this.charges;
    charges.length = 0;
    const chargeAt = this.chargeAt;
    chargeAt.length = 0;
    for (let i = 0; i < segPos.length; i++) {
      chargeAt.push(charges.length);
      if (segCost[i]! > 0) writeCharge(charges, segCost[i]!, gasLocal, segDepth[i]!);
    }
    chargeAt.push(charges.length);
    const size = head.length + w.length + charges.length + tail.length;
    // V8 refuses a larger function at compile time; refusing it here names the rule and is cached like any rejection.
    if (size > MAX_INSTRUMENTED_FUNCTION_BYTES) {
      throw new ModuleRejected('function_too_large', `${size} bytes once instrumented, limit ${MAX_INSTRUMENTED_FUNCTION_BYTES}`, functionIndex, body.codeOffset);
    }
    out.u32(size);
    out.copy(head.buf, 0, head.length);
    let prev = 0;
    for (let i = 0; i < segPos.length; i++) {
      const at = segPos[i]!;
      out.copy(w.buf, prev, at);
      out.copy(charges.buf, chargeAt[i]!, chargeAt[i + 1]!);
      prev = at;
    }
    out.copy(w.buf, prev, w.length);
    out.copy(tail.buf, 0, tail.length);
    return { frameCost: cost, counted };
  }
}
