import { ByteReader } from './bytes.js';
import {
  OP, FC,
  IMM_NONE, IMM_BLOCKTYPE, IMM_LABEL, IMM_BR_TABLE, IMM_FUNC, IMM_CALL_INDIRECT, IMM_LOCAL, IMM_GLOBAL, IMM_MEMARG,
  IMM_MEMIDX, IMM_I32, IMM_I64, IMM_F32, IMM_F64, IMM_DATA_MEM, IMM_DATA, IMM_MEM_MEM, IMM_ELEM_TABLE,
  IMM_ELEM, IMM_TABLE_TABLE,
} from './opcodes.js';
import { ModuleRejected } from './rejected.js';

/** Block type: BT_EMPTY, a negative value-type code (-1 = i32 ...), or a type index >= 0. */
export const BT_EMPTY = -64;

/**
 * One decoded instruction. The rewriter reuses a single instance, so nothing here allocates except the
 * br_table target list, which is reused as well.
 */
export class Instr {
  /** Opcode byte; 0xFC for prefixed ones, with `sub` the sub-opcode. */
  op = 0;
  sub = 0;
  /** Byte offsets of the instruction in the module (end exclusive). */
  start = 0;
  end = 0;
  /** First immediate: index, label, block type, memarg alignment, i32 constant value. */
  a = 0;
  /** Second immediate: memarg offset, table index of call_indirect, second index of the 0xFC forms. */
  b = 0;
  /** br_table: `count` label targets followed by the default. */
  targets: number[] = [];
  count = 0;
  /** i64.const value, decoded only when `decodeI64` is set (round-trip tests). */
  i64 = 0n;
}

/** Where a rejected instruction is reported: the function index in the original module. */
export interface DecodeContext {
  functionIndex: number;
  decodeI64: boolean;
}

function rejectAt(rule: string, ctx: DecodeContext, at: number, detail?: string): never {
  throw new ModuleRejected(rule, detail, ctx.functionIndex, at);
}

/** Reads a 0x00 byte where the MVP reserves a memory or table index; anything else is multi-memory. */
function zeroIndex(r: ByteReader, ctx: DecodeContext, rule: string): number {
  const at = r.pos;
  const v = r.u32();
  if (v !== 0) rejectAt(rule, ctx, at);
  return v;
}

/** Decodes the instruction at r.pos into `ins`, rejecting opcodes outside the whitelist. */
export function decodeInstr(r: ByteReader, ins: Instr, ctx: DecodeContext): void {
  const start = r.pos;
  ins.start = start;
  const op = r.u8();
  ins.op = op;
  ins.sub = 0;
  let imm: number;
  if (op === 0xfc) {
    const sub = r.u32();
    ins.sub = sub;
    if (sub >= 32 || FC.defined[sub] !== 1) {
      rejectAt((sub < 32 && FC.feature[sub]) || 'unknown_opcode', ctx, start, `0xfc ${sub}`);
    }
    imm = FC.imm[sub]!;
  } else {
    if (OP.defined[op] !== 1) rejectAt(OP.feature[op] ?? 'unknown_opcode', ctx, start, `0x${op.toString(16)}`);
    imm = OP.imm[op]!;
  }
  switch (imm) {
    case IMM_NONE:
      break;
    case IMM_BLOCKTYPE: {
      const b = r.buf[r.pos];
      if (b === undefined || r.pos >= r.end) r.fail('unexpected end');
      if (b === 0x40) {
        r.pos++;
        ins.a = BT_EMPTY;
      } else if ((b & 0xc0) === 0x40) {
        // A one-byte negative number: a value type.
        r.pos++;
        if (b < 0x7c) rejectAt(b === 0x7b ? 'feature_simd' : 'feature_reference_types', ctx, start);
        ins.a = b - 0x80;
      } else {
        const at = r.pos;
        const idx = r.s33();
        if (idx < 0) rejectAt('malformed', ctx, at, 'block type');
        ins.a = idx;
      }
      break;
    }
    case IMM_LABEL:
    case IMM_FUNC:
    case IMM_LOCAL:
    case IMM_GLOBAL:
    case IMM_DATA:
    case IMM_ELEM:
      ins.a = r.u32();
      break;
    case IMM_BR_TABLE: {
      const n = r.u32();
      // Each target takes at least one byte; checking first keeps a forged count from allocating.
      if (n > r.end - r.pos) r.fail('br_table too long');
      const t = ins.targets;
      for (let i = 0; i <= n; i++) t[i] = r.u32();
      ins.count = n;
      break;
    }
    case IMM_CALL_INDIRECT:
      ins.a = r.u32();
      ins.b = zeroIndex(r, ctx, 'feature_reference_types');
      break;
    case IMM_MEMARG: {
      const at = r.pos;
      const align = r.u32();
      // Bit 6 of the alignment announces a memory index (multi-memory).
      if (align & 0x40) rejectAt('feature_multi_memory', ctx, at);
      ins.a = align;
      ins.b = r.u32();
      break;
    }
    case IMM_MEMIDX:
      ins.a = zeroIndex(r, ctx, 'feature_multi_memory');
      break;
    case IMM_I32: {
      const at = r.pos;
      const b0 = r.buf[at];
      if (b0 !== undefined && b0 < 0x80 && at < r.end) {
        // One-byte constants (most of them): sign-extend 7 bits.
        r.pos++;
        ins.a = (b0 << 25) >> 25;
        break;
      }
      const v = r.s33();
      if (v < -0x80000000 || v > 0x7fffffff) rejectAt('malformed', ctx, at, 'i32 constant');
      ins.a = v;
      break;
    }
    case IMM_I64:
      if (ctx.decodeI64) ins.i64 = readS64(r);
      else r.skipLeb(10);
      break;
    case IMM_F32:
      r.skip(4);
      break;
    case IMM_F64:
      r.skip(8);
      break;
    case IMM_DATA_MEM:
      ins.a = r.u32();
      ins.b = zeroIndex(r, ctx, 'feature_multi_memory');
      break;
    case IMM_MEM_MEM:
      ins.a = zeroIndex(r, ctx, 'feature_multi_memory');
      ins.b = zeroIndex(r, ctx, 'feature_multi_memory');
      break;
    case IMM_ELEM_TABLE:
      ins.a = r.u32();
      ins.b = zeroIndex(r, ctx, 'feature_reference_types');
      break;
    case IMM_TABLE_TABLE:
      ins.a = zeroIndex(r, ctx, 'feature_reference_types');
      ins.b = zeroIndex(r, ctx, 'feature_reference_types');
      break;
    default:
      rejectAt('unknown_opcode', ctx, start);
  }
  ins.end = r.pos;
}

/** Signed 64-bit LEB128 as a bigint. */
export function readS64(r: ByteReader): bigint {
  const start = r.pos;
  let result = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    const b = r.u8();
    result |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if ((b & 0x80) === 0) {
      if (b & 0x40) result -= 1n << shift;
      return BigInt.asIntN(64, result);
    }
  }
  return r.fail('integer representation too long', start);
}
