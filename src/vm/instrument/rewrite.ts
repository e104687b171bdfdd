import { ENGINE_MAX_LOCALS, MAX_COMPILE_STATE_SLOTS, MAX_INSTRUMENTED_FUNCTION_BYTES } from '../../protocol/bounds.generated.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { BT_EMPTY, Instr, decodeInstr, type DecodeContext } from './code.js';
import { BR_TABLE_TARGETS_PER_GAS, COST_BY_CLASS, GAS_PER_BYTE, GAS_PER_PAGE, GAS_PER_TABLE_ELEMENT, writeCharge, writeDynamicCharge, writeGrowSizeCharge, writeLoad, writeStore } from './gas.js';
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
  /** Its compile state: locals times control points, plus operands (max_compile_state_slots). */
  stateSlots: number;
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
 * How the rewrite loop decodes each opcode byte inline (0: through decodeInstr, as are the undefined ones and
 * the 0xFC prefix): 1 no immediate, 2 one index or label, 3 an i32 constant, 4 a memarg, 5 a block type. The
 * loop switches on these literal values (a jump table in V8; named constants would be compared one by one).
 */
const OP_SHAPE = new Uint8Array(256);
/** What the rewrite loop does with an instruction that is not F_SPECIAL (0: copy it unchanged); literal values as above. */
const OP_ACTION = new Uint8Array(256);
for (let op = 0; op < 256; op++) {
  if (OP.defined[op] !== 1 || op === 0xfc) continue;
  const imm = OP.imm[op]!;
  OP_SHAPE[op] = imm === IMM_NONE ? 1
    : imm === IMM_LOCAL || imm === IMM_GLOBAL || imm === IMM_LABEL || imm === IMM_FUNC ? 2
    : imm === IMM_I32 ? 3
    : imm === IMM_MEMARG ? 4
    : imm === IMM_BLOCKTYPE ? 5
    : 0;
}
OP_ACTION[0x20] = OP_ACTION[0x21] = OP_ACTION[0x22] = 1; // local.get, local.set, local.tee
OP_ACTION[0x23] = OP_ACTION[0x24] = 2; // global.get, global.set
OP_ACTION[0x40] = 3; // memory.grow
OP_ACTION[0xfc] = 4; // the 0xFC prefix

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
    // V8's baseline compiler copies its state (every local and every operand on the stack) at each control
    // point (block, loop, if, else, branch, and the gas checks added here) and keeps the copies until the
    // function is compiled: 10,000 ifs with 4,095 locals, a 50 KB module, took 6.4 s and 1.1 GB to compile in a
    // VM's first call, outside gas. At each call (the contract's, and the charges added here) it walks that state
    // too (900,000 calls with 4,095 locals: 7.4 s), and at a local access that must free a register, part of it
    // (390,000 pairs: 1.4 s). Counted here: control points and calls, with the operands on the stack at each,
    // and local accesses at a sixteenth of a point. At a branch, return, call or block end V8's validator checks
    // every value the target takes, in unreachable code too, where the stack holds none of them: `unreachable`
    // then 1,000,000 `return`s of a function with 999 results (1 MB) took 9.6 s of a VM's CPU per call for 0 gas
    // when only the operands held were counted. Such a point counts the larger of the two.
    let points = 0;
    let stackSlots = 0;
    let localAccesses = 0;
    /** `n` control points (or calls) at the current operand-stack height, each checking `arity` values. */
    const controlPoints = (n: number, arity = 0): void => {
      points += n;
      stackSlots += (h > arity ? h : arity) * n;
    };
    /** Values a branch to `label` carries: a loop's parameters, any other block's results. */
    const labelArity = (label: number): number => {
      const d = depth - 1 - label;
      return kind[d] === K_LOOP ? nParams[d]! : nResults[d]!;
    };
    let pos = r.pos; // the reader's position, kept here: r.pos is set only around decodeInstr
    let pending = pos; // start of input bytes not yet copied to w

    const flush = (upTo: number): void => {
      if (upTo > pending) w.copy(bytes, pending, upTo);
      pending = upTo;
    };
    const temp = (t: number): number => {
      tempTypes.push(t);
      return nextTemp++;
    };
    const startSegment = (): void => {
      controlPoints(1); // its gas check branches
      flush(pos);
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
    /** Start of the instruction being rewritten, for rejections. */
    let insAt = 0;
    const invalid = (detail: string): never => {
      throw new ModuleRejected('invalid_module', detail, functionIndex, insAt);
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
        throw new ModuleRejected('too_deeply_nested', `more than ${maxNesting} nested blocks, loops and ifs`, functionIndex, insAt);
      }
      controlPoints(1, p);
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
      controlPoints(1, t.params.length + extraPops + t.results.length);
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
    const opShape = OP_SHAPE;
    const opAction = OP_ACTION;
    // Imported constants as locals: in the VM's start-up snapshot every module is CommonJS (see
    // scripts/build-vm-snapshot.mjs), where each use of an imported name is a property load from the exporting
    // module's object.
    const btEmpty = BT_EMPTY;
    const fFloat = F_FLOAT;
    const fSpecial = F_SPECIAL;
    const fNan32 = F_NAN32;
    const fNan = F_NAN32 | F_NAN64;
    const code = r.buf;
    const codeEnd = r.end;
    // The current instruction, in locals rather than in `ins` (which only decodeInstr fills): a fresh VM runs
    // this loop in V8's interpreter and baseline code, where every property access goes through an inline cache.
    let op = 0;
    let sub = 0;
    let a = 0;
    let insEnd = 0;
    while (depth > 0) {
      const at = pos;
      if (at >= codeEnd) r.fail('function body ends before its last `end`', at);
      insAt = at;
      // The commonest shapes decoded here, as decodeInstr would (no immediate, a one-byte index, label or
      // constant, a memarg of one-byte alignment and offset, an empty block type); a call per instruction was
      // most of this loop's cost. Everything else, and every rejection, goes through decodeInstr.
      const first = code[at]!;
      let next = 0x80;
      switch (opShape[first]) {
        case 1: // SHAPE_NONE
          op = first;
          sub = 0;
          insEnd = pos = at + 1;
          break;
        case 2: // SHAPE_INDEX
          if (at + 1 < codeEnd) next = code[at + 1]!;
          if (next < 0x80) {
            op = first;
            sub = 0;
            a = next;
            insEnd = pos = at + 2;
          }
          break;
        case 3: // SHAPE_I32
          if (at + 1 < codeEnd) next = code[at + 1]!;
          if (next < 0x80) {
            op = first;
            sub = 0;
            a = (next << 25) >> 25; // one-byte signed LEB128: sign-extend 7 bits
            insEnd = pos = at + 2;
          }
          break;
        case 4: // SHAPE_MEMARG: alignment below 0x40 (bit 6 would announce a memory index), a one-byte offset
          if (at + 2 < codeEnd && code[at + 2]! < 0x80) next = code[at + 1]!;
          if (next < 0x40) {
            op = first;
            sub = 0;
            a = next;
            insEnd = pos = at + 3;
          }
          break;
        case 5: // SHAPE_BLOCK: the empty block type
          if (at + 1 < codeEnd && code[at + 1] === 0x40) {
            op = first;
            sub = 0;
            a = btEmpty;
            insEnd = pos = at + 2;
          }
          break;
      }
      if (pos === at) {
        r.pos = at;
        decodeInstr(r, ins, ctx);
        op = ins.op;
        sub = ins.sub;
        a = ins.a;
        insEnd = pos = ins.end;
      }
      let flags: number;
      let gasClass: number;
      let pop: number;
      let push: number;
      if (op === 0xfc) {
        flags = FC.flags[sub]!;
        gasClass = FC.gas[sub]!;
        pop = FC.pop[sub]!;
        push = FC.push[sub]!;
      } else {
        flags = opFlags[op]!;
        gasClass = opGas[op]!;
        pop = opPop[op]!;
        push = opPush[op]!;
      }
      if (floatsRejected && (flags & fFloat)) {
        throw new ModuleRejected('float_instruction', undefined, functionIndex, at);
      }
      if (cur >= 0) segCost[cur] += costs[gasClass]!;

      if ((flags & fSpecial) === 0) {
        switch (opAction[op]) { // 0 for most instructions: copied as they are
          case 1: // ACT_LOCAL: local.get/set/tee; declared locals move past $gas and $height
            if (a >= localCount) invalid(`local ${a} does not exist`);
            localAccesses++;
            if (a >= paramCount) {
              flush(at);
              w.opU32(op, a + 2);
              pending = insEnd;
            }
            break;
          case 2: // ACT_GLOBAL: global.get/set
            if (a >= env.originalGlobalCount) invalid(`global ${a} does not exist`);
            flush(at);
            w.opU32(op, a + env.addedGlobals);
            pending = insEnd;
            break;
          case 3: // ACT_GROW: memory.grow: charge the requested pages, then the pages the memory will have
            controlPoints(2); // the charges are calls
            if (tempIndex < 0) tempIndex = temp(I32);
            flush(at);
            writeDynamicCharge(w, GAS_PER_PAGE, gasLocal, env.chargeUnitsFunc);
            writeGrowSizeCharge(w, tempIndex, gasLocal, env.chargeUnitsFunc);
            if (h + 4 > maxH) maxH = h + 4;
            break;
          case 4: // ACT_FC: bulk memory operations are charged per byte, table operations per element
            if (sub === 8 || sub === 10 || sub === 11 || sub === 12 || sub === 14) {
              controlPoints(1); // the charge is a call
              flush(at);
              writeDynamicCharge(w, sub >= 12 ? GAS_PER_TABLE_ELEMENT : GAS_PER_BYTE, gasLocal, env.chargeUnitsFunc);
            }
            break;
        }
        h -= pop;
        if (h < curBase) h = curBase;
        h += push;
        if (h > maxH) maxH = h;
        if (flags & fNan) {
          flush(insEnd);
          if (flags & fNan32) {
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
          blockArity(a);
          h -= arityParams;
          if (h < curBase) h = curBase;
          pushControl(K_BLOCK, arityParams, arityResults);
          break;
        case 0x03: // loop: a back-edge target, so it starts a segment
          blockArity(a);
          h -= arityParams;
          if (h < curBase) h = curBase;
          pushControl(K_LOOP, arityParams, arityResults);
          startSegment();
          break;
        case 0x04: // if
          blockArity(a);
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
          controlPoints(1, nResults[d]!); // the then arm's results are checked
          h = base[d]! + nParams[d]!;
          thenState[d] = armState(d);
          thenSeg[d] = armSeg[d]!;
          startArm(d);
          break;
        }
        case 0x0b: { // end
          const d = depth - 1;
          const k = kind[d]!;
          if (h - base[d]! < nResults[d]!) stackSlots += nResults[d]!; // results checked that the stack does not hold
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
          target(a);
          controlPoints(1, labelArity(a));
          markUnreachable();
          break;
        case 0x0d: // br_if
          branches++;
          target(a);
          controlPoints(1, labelArity(a) + 1);
          h -= 1;
          if (h < curBase) h = curBase;
          break;
        case 0x0e: // br_table
          branches++;
          for (let i = 0; i <= ins.count; i++) target(ins.targets[i]!);
          controlPoints(ins.count + 1, labelArity(ins.targets[ins.count]!) + 1);
          if (cur >= 0) segCost[cur] += Math.floor(ins.count / BR_TABLE_TARGETS_PER_GAS);
          markUnreachable();
          break;
        case 0x0f: // return: a branch to the body block, so that the epilogue runs
          branches++;
          controlPoints(1, nResults[0]!);
          flush(at);
          w.opU32(0x0c, depth - 1);
          pending = insEnd;
          targeted[0] = true;
          markUnreachable();
          break;
        case 0x10: { // call
          const f = a;
          if (f >= env.functionTypes.length) invalid(`function ${f} does not exist`);
          callEffect(env.types[env.functionTypes[f]!]!, 0);
          flush(at);
          if (f < env.importedFunctions) {
            // A host function charges the gas global; it also learns the height, should it call back in.
            writeStore(w, gasLocal, env.gasGlobal);
            w.opU32(0x20, heightLocal); // local.get $height
            w.opU32(0x24, env.heightGlobal); // global.set $height
            w.opU32(0x10, f);
            writeLoad(w, gasLocal, env.gasGlobal);
          } else {
            w.opU32(0x20, gasLocal);
            w.opU32(0x20, heightLocal);
            w.opU32(0x10, f + env.addedImports);
            w.opU32(0x21, gasLocal); // local.set $gas (the callee's extra result)
          }
          pending = insEnd;
          break;
        }
        case 0x11: { // call_indirect: the table index is on top; slip $gas and $height under it
          if (a >= env.originalTypeCount) invalid(`type ${a} does not exist`);
          callEffect(env.types[a]!, 1);
          if (tempIndex < 0) tempIndex = temp(I32);
          flush(at);
          w.opU32(0x21, tempIndex);
          w.opU32(0x20, gasLocal);
          w.opU32(0x20, heightLocal);
          w.opU32(0x20, tempIndex);
          w.opU32(0x11, env.internalType(a)); w.u8(0x00);
          w.opU32(0x21, gasLocal);
          pending = insEnd;
          break;
        }
        default:
          invalid('unexpected opcode');
      }
    }
    r.pos = pos;
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
    const locals = paramCount + 2 + declared + tempTypes.length;
    if (locals > ENGINE_MAX_LOCALS) {
      throw new ModuleRejected('too_many_locals', `${locals} locals once instrumented (${paramCount + declared} of its own), the engine's limit ${ENGINE_MAX_LOCALS}`, functionIndex, body.codeOffset);
    }
    const stateSlots = points * locals + stackSlots + Math.floor((localAccesses * locals) / 16);
    if (stateSlots > MAX_COMPILE_STATE_SLOTS) {
      throw new ModuleRejected('too_complex_to_compile', `${stateSlots} compile state slots (locals times control points and calls, plus operands and local accesses), limit ${MAX_COMPILE_STATE_SLOTS}`, functionIndex, body.codeOffset);
    }
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
    tail.opU32(0x20, gasLocal);
    tail.u8(0x0f); // return
    tail.u8(0x0b); // end $out_of_gas
    tail.opU32(0x10, env.outOfGasFunc);
    tail.u8(0x00); // unreachable: the import throws
    if (counted) {
      tail.u8(0x0b); // end $stack_overflow
      writeStore(tail, gasLocal, env.gasGlobal); // gas used stays exact
      tail.opU32(0x10, env.stackOverflowFunc);
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
      if (at > prev) out.copy(w.buf, prev, at);
      const c0 = chargeAt[i]!;
      const c1 = chargeAt[i + 1]!;
      if (c1 > c0) out.copy(charges.buf, c0, c1);
      prev = at;
    }
    out.copy(w.buf, prev, w.length);
    out.copy(tail.buf, 0, tail.length);
    return { frameCost: cost, counted, stateSlots };
  }
}
