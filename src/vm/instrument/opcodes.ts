/**
 * The instruction set Hostlink accepts, as lookup tables indexed by opcode byte (and by sub-opcode for the
 * 0xFC prefix). Each accepted opcode has an immediate shape, a stack effect, a gas class and flags. Opcodes of
 * features outside the whitelist map to the rule that rejects them, so a rejection always names the feature.
 */

// Immediate shapes.
export const IMM_NONE = 0;
export const IMM_BLOCKTYPE = 1;
export const IMM_LABEL = 2;
export const IMM_BR_TABLE = 3;
export const IMM_FUNC = 4;
export const IMM_CALL_INDIRECT = 5;
export const IMM_LOCAL = 6;
export const IMM_GLOBAL = 7;
export const IMM_MEMARG = 8;
export const IMM_MEMIDX = 9; // memory.size / memory.grow: one memory index, must be 0
export const IMM_I32 = 10;
export const IMM_I64 = 11;
export const IMM_F32 = 12;
export const IMM_F64 = 13;
// 0xFC immediates
export const IMM_DATA_MEM = 15; // memory.init
export const IMM_DATA = 16; // data.drop
export const IMM_MEM_MEM = 17; // memory.copy
export const IMM_ELEM_TABLE = 18; // table.init
export const IMM_ELEM = 19; // elem.drop
export const IMM_TABLE_TABLE = 20; // table.copy

// Gas classes; costs live in gas.ts.
export const GAS_FREE = 0;
export const GAS_SIMPLE = 1;
export const GAS_MULTIPLY = 2;
export const GAS_MEMORY = 3;
export const GAS_FLOAT = 4;
export const GAS_DIVIDE = 5;
export const GAS_BR_TABLE = 6;
export const GAS_CALL = 7;
export const GAS_CALL_INDIRECT = 8;
export const GAS_MEMORY_GROW = 9;
export const GAS_MEMORY_FILL = 10;
export const GAS_MEMORY_COPY = 11;
export const GAS_TABLE_COPY = 12;
export const GAS_TABLE_INIT = 13;
export const GAS_DROP = 14;
export const GAS_CLASS_NAMES = [
  'free',
  'simple',
  'multiply',
  'memory',
  'float',
  'divide',
  'br_table',
  'call',
  'call_indirect',
  'memory_grow',
  'memory_fill',
  'memory_copy',
  'table_copy',
  'table_init',
  'drop',
] as const;

// Flags.
export const F_FLOAT = 1; // touches f32/f64 (rejected under floats: 'reject')
export const F_NAN32 = 2; // may produce an f32 NaN whose bits depend on the CPU
export const F_NAN64 = 4; // same for f64
export const F_SPECIAL = 8; // stack effect handled by the rewriter (control flow, calls)

/** Stack effect marker for opcodes whose effect depends on types (calls, control). */
const SPECIAL = -1;

export interface OpTable {
  readonly name: string[];
  readonly imm: Uint8Array;
  readonly pop: Int8Array;
  readonly push: Int8Array;
  readonly gas: Uint8Array;
  readonly flags: Uint8Array;
  /** 1 for opcodes we accept. */
  readonly defined: Uint8Array;
  /** Rejection rule for opcodes of a feature outside the whitelist. */
  readonly feature: (string | undefined)[];
}

function table(size: number): OpTable {
  return {
    name: new Array<string>(size).fill(''),
    imm: new Uint8Array(size),
    pop: new Int8Array(size),
    push: new Int8Array(size),
    gas: new Uint8Array(size),
    flags: new Uint8Array(size),
    defined: new Uint8Array(size),
    feature: new Array<string | undefined>(size).fill(undefined),
  };
}

/** Single-byte opcodes (0xFC is a prefix, described by FC). */
export const OP = table(256);
/** 0xFC-prefixed opcodes by sub-opcode. */
export const FC = table(32);

function def(t: OpTable, op: number, name: string, imm: number, pop: number, push: number, gas: number, flags = 0): void {
  t.name[op] = name;
  t.imm[op] = imm;
  t.pop[op] = pop;
  t.push[op] = push;
  t.gas[op] = gas;
  t.flags[op] = flags | (pop === SPECIAL ? F_SPECIAL : 0);
  t.defined[op] = 1;
}

function reject(t: OpTable, ops: number[], rule: string): void {
  for (const op of ops) t.feature[op] = rule;
}

// Control.
def(OP, 0x00, 'unreachable', IMM_NONE, SPECIAL, 0, GAS_SIMPLE);
def(OP, 0x01, 'nop', IMM_NONE, 0, 0, GAS_FREE);
def(OP, 0x02, 'block', IMM_BLOCKTYPE, SPECIAL, 0, GAS_FREE);
def(OP, 0x03, 'loop', IMM_BLOCKTYPE, SPECIAL, 0, GAS_FREE);
def(OP, 0x04, 'if', IMM_BLOCKTYPE, SPECIAL, 0, GAS_SIMPLE);
def(OP, 0x05, 'else', IMM_NONE, SPECIAL, 0, GAS_FREE);
def(OP, 0x0b, 'end', IMM_NONE, SPECIAL, 0, GAS_FREE);
def(OP, 0x0c, 'br', IMM_LABEL, SPECIAL, 0, GAS_SIMPLE);
def(OP, 0x0d, 'br_if', IMM_LABEL, SPECIAL, 0, GAS_SIMPLE);
def(OP, 0x0e, 'br_table', IMM_BR_TABLE, SPECIAL, 0, GAS_BR_TABLE);
def(OP, 0x0f, 'return', IMM_NONE, SPECIAL, 0, GAS_SIMPLE);
def(OP, 0x10, 'call', IMM_FUNC, SPECIAL, 0, GAS_CALL);
def(OP, 0x11, 'call_indirect', IMM_CALL_INDIRECT, SPECIAL, 0, GAS_CALL_INDIRECT);
// Parametric.
def(OP, 0x1a, 'drop', IMM_NONE, 1, 0, GAS_SIMPLE);
def(OP, 0x1b, 'select', IMM_NONE, 3, 1, GAS_SIMPLE);
// Variables.
def(OP, 0x20, 'local.get', IMM_LOCAL, 0, 1, GAS_SIMPLE);
def(OP, 0x21, 'local.set', IMM_LOCAL, 1, 0, GAS_SIMPLE);
def(OP, 0x22, 'local.tee', IMM_LOCAL, 1, 1, GAS_SIMPLE);
def(OP, 0x23, 'global.get', IMM_GLOBAL, 0, 1, GAS_SIMPLE);
def(OP, 0x24, 'global.set', IMM_GLOBAL, 1, 0, GAS_SIMPLE);
// Memory.
const LOADS = ['i32.load', 'i64.load', 'f32.load', 'f64.load', 'i32.load8_s', 'i32.load8_u', 'i32.load16_s', 'i32.load16_u',
  'i64.load8_s', 'i64.load8_u', 'i64.load16_s', 'i64.load16_u', 'i64.load32_s', 'i64.load32_u'];
LOADS.forEach((n, i) => def(OP, 0x28 + i, n, IMM_MEMARG, 1, 1, GAS_MEMORY, n.startsWith('f') ? F_FLOAT : 0));
const STORES = ['i32.store', 'i64.store', 'f32.store', 'f64.store', 'i32.store8', 'i32.store16', 'i64.store8', 'i64.store16', 'i64.store32'];
STORES.forEach((n, i) => def(OP, 0x36 + i, n, IMM_MEMARG, 2, 0, GAS_MEMORY, n.startsWith('f') ? F_FLOAT : 0));
def(OP, 0x3f, 'memory.size', IMM_MEMIDX, 0, 1, GAS_SIMPLE);
def(OP, 0x40, 'memory.grow', IMM_MEMIDX, 1, 1, GAS_MEMORY_GROW);
// Constants.
def(OP, 0x41, 'i32.const', IMM_I32, 0, 1, GAS_SIMPLE);
def(OP, 0x42, 'i64.const', IMM_I64, 0, 1, GAS_SIMPLE);
def(OP, 0x43, 'f32.const', IMM_F32, 0, 1, GAS_SIMPLE, F_FLOAT);
def(OP, 0x44, 'f64.const', IMM_F64, 0, 1, GAS_SIMPLE, F_FLOAT);

// Numeric: [first opcode, names, pop, gas class per name (default simple), flags].
function numeric(first: number, names: string, pop: number, gas: Record<string, number> = {}, flags: Record<string, number> = {}, allFlags = 0): void {
  names.split(' ').forEach((n, i) => def(OP, first + i, n, IMM_NONE, pop, 1, gas[n] ?? GAS_SIMPLE, (flags[n] ?? 0) | allFlags));
}
const intDiv = (p: string) => ({ [`${p}.mul`]: GAS_MULTIPLY, [`${p}.div_s`]: GAS_DIVIDE, [`${p}.div_u`]: GAS_DIVIDE, [`${p}.rem_s`]: GAS_DIVIDE, [`${p}.rem_u`]: GAS_DIVIDE });
numeric(0x45, 'i32.eqz', 1);
numeric(0x46, 'i32.eq i32.ne i32.lt_s i32.lt_u i32.gt_s i32.gt_u i32.le_s i32.le_u i32.ge_s i32.ge_u', 2);
numeric(0x50, 'i64.eqz', 1);
numeric(0x51, 'i64.eq i64.ne i64.lt_s i64.lt_u i64.gt_s i64.gt_u i64.le_s i64.le_u i64.ge_s i64.ge_u', 2);
numeric(0x5b, 'f32.eq f32.ne f32.lt f32.gt f32.le f32.ge', 2, {}, {}, F_FLOAT);
numeric(0x61, 'f64.eq f64.ne f64.lt f64.gt f64.le f64.ge', 2, {}, {}, F_FLOAT);
numeric(0x67, 'i32.clz i32.ctz i32.popcnt', 1);
numeric(0x6a, 'i32.add i32.sub i32.mul i32.div_s i32.div_u i32.rem_s i32.rem_u i32.and i32.or i32.xor i32.shl i32.shr_s i32.shr_u i32.rotl i32.rotr', 2, intDiv('i32'));
numeric(0x79, 'i64.clz i64.ctz i64.popcnt', 1);
numeric(0x7c, 'i64.add i64.sub i64.mul i64.div_s i64.div_u i64.rem_s i64.rem_u i64.and i64.or i64.xor i64.shl i64.shr_s i64.shr_u i64.rotl i64.rotr', 2, intDiv('i64'));
for (const [first, p, nan] of [[0x8b, 'f32', F_NAN32], [0x99, 'f64', F_NAN64]] as const) {
  // abs, neg and copysign only move bits, so they never create a NaN.
  numeric(first, `${p}.abs ${p}.neg ${p}.ceil ${p}.floor ${p}.trunc ${p}.nearest ${p}.sqrt`, 1,
    { [`${p}.ceil`]: GAS_FLOAT, [`${p}.floor`]: GAS_FLOAT, [`${p}.trunc`]: GAS_FLOAT, [`${p}.nearest`]: GAS_FLOAT, [`${p}.sqrt`]: GAS_DIVIDE },
    { [`${p}.ceil`]: nan, [`${p}.floor`]: nan, [`${p}.trunc`]: nan, [`${p}.nearest`]: nan, [`${p}.sqrt`]: nan }, F_FLOAT);
  numeric(first + 7, `${p}.add ${p}.sub ${p}.mul ${p}.div ${p}.min ${p}.max ${p}.copysign`, 2,
    { [`${p}.add`]: GAS_FLOAT, [`${p}.sub`]: GAS_FLOAT, [`${p}.mul`]: GAS_FLOAT, [`${p}.div`]: GAS_DIVIDE, [`${p}.min`]: GAS_FLOAT, [`${p}.max`]: GAS_FLOAT },
    { [`${p}.add`]: nan, [`${p}.sub`]: nan, [`${p}.mul`]: nan, [`${p}.div`]: nan, [`${p}.min`]: nan, [`${p}.max`]: nan }, F_FLOAT);
}
numeric(0xa7, 'i32.wrap_i64', 1);
numeric(0xa8, 'i32.trunc_f32_s i32.trunc_f32_u i32.trunc_f64_s i32.trunc_f64_u', 1, {}, {}, F_FLOAT);
numeric(0xac, 'i64.extend_i32_s i64.extend_i32_u', 1);
numeric(0xae, 'i64.trunc_f32_s i64.trunc_f32_u i64.trunc_f64_s i64.trunc_f64_u', 1, {}, {}, F_FLOAT);
for (let op = 0xa8; op <= 0xb1; op++) if (OP.flags[op]! & F_FLOAT) OP.gas[op] = GAS_FLOAT;
numeric(0xb2, 'f32.convert_i32_s f32.convert_i32_u f32.convert_i64_s f32.convert_i64_u f32.demote_f64', 1,
  {}, { 'f32.demote_f64': F_NAN32 }, F_FLOAT);
numeric(0xb7, 'f64.convert_i32_s f64.convert_i32_u f64.convert_i64_s f64.convert_i64_u f64.promote_f32', 1,
  {}, { 'f64.promote_f32': F_NAN64 }, F_FLOAT);
for (let op = 0xb2; op <= 0xbb; op++) OP.gas[op] = GAS_FLOAT;
numeric(0xbc, 'i32.reinterpret_f32 i64.reinterpret_f64 f32.reinterpret_i32 f64.reinterpret_i64', 1, {}, {}, F_FLOAT);
// Sign extension.
numeric(0xc0, 'i32.extend8_s i32.extend16_s i64.extend8_s i64.extend16_s i64.extend32_s', 1);

// 0xFC: saturating truncation and bulk memory.
'i32.trunc_sat_f32_s i32.trunc_sat_f32_u i32.trunc_sat_f64_s i32.trunc_sat_f64_u i64.trunc_sat_f32_s i64.trunc_sat_f32_u i64.trunc_sat_f64_s i64.trunc_sat_f64_u'
  .split(' ').forEach((n, i) => def(FC, i, n, IMM_NONE, 1, 1, GAS_FLOAT, F_FLOAT));
def(FC, 8, 'memory.init', IMM_DATA_MEM, 3, 0, GAS_MEMORY_COPY);
def(FC, 9, 'data.drop', IMM_DATA, 0, 0, GAS_DROP);
def(FC, 10, 'memory.copy', IMM_MEM_MEM, 3, 0, GAS_MEMORY_COPY);
def(FC, 11, 'memory.fill', IMM_MEMIDX, 3, 0, GAS_MEMORY_FILL);
def(FC, 12, 'table.init', IMM_ELEM_TABLE, 3, 0, GAS_TABLE_INIT);
def(FC, 13, 'elem.drop', IMM_ELEM, 0, 0, GAS_DROP);
def(FC, 14, 'table.copy', IMM_TABLE_TABLE, 3, 0, GAS_TABLE_COPY);

// Features outside the whitelist.
reject(OP, [0x06, 0x07, 0x08, 0x09, 0x0a, 0x18, 0x19, 0x1f], 'feature_exceptions');
reject(OP, [0x12, 0x13, 0x15], 'feature_tail_call');
reject(OP, [0x14, 0xd3, 0xd4, 0xd5, 0xd6, 0xfb], 'feature_gc');
reject(OP, [0x1c, 0x25, 0x26, 0xd0, 0xd1, 0xd2], 'feature_reference_types');
reject(OP, [0xfd], 'feature_simd');
reject(OP, [0xfe], 'feature_threads');
reject(FC, [15, 16, 17], 'feature_reference_types');

/** Whether an opcode (after the prefix, if any) is one we accept. */
export function isDefined(t: OpTable, op: number): boolean {
  return t.defined[op] === 1;
}
