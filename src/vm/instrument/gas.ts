import type { ByteWriter } from './bytes.js';
import { GAS_CLASS_NAMES } from './opcodes.js';

/**
 * Gas cost of one instruction of each class (opcodes.ts assigns the classes). One unit is roughly one simple
 * integer instruction; host functions use the same unit (protocol/gas-costs.json, HOST_FUNCTIONS[name].gas).
 * Changing a number changes results: bump INSTRUMENTATION_VERSION.
 */
export const GAS_COST: Readonly<Record<(typeof GAS_CLASS_NAMES)[number], number>> = {
  free: 0, // nop, block, loop, else, end: structure, no work of their own
  simple: 1, // constants, locals, globals, integer ALU, compares, conversions without rounding, br, br_if, if
  multiply: 2,
  memory: 2, // loads and stores
  float: 2, // float arithmetic, rounding, float<->int conversions
  divide: 8, // integer div/rem, float div and sqrt
  br_table: 2, // plus 1 per BR_TABLE_TARGETS_PER_GAS targets
  call: 4,
  call_indirect: 6,
  // The instructions below call into the engine's runtime: their base cost is that call, measured (a loop of
  // each with zero pages, bytes or elements, bench/gas-workloads.ts engineWorkloads) and priced at about one
  // gas per 0.04 ns, the plain WebAssembly median that defines the unit (bench/gas.ts).
  memory_grow: 16384, // plus GAS_PER_PAGE per requested page
  memory_fill: 4096, // plus GAS_PER_BYTE per byte
  memory_copy: 256, // memory.copy and memory.init: plus GAS_PER_BYTE per byte
  table_copy: 512, // plus GAS_PER_TABLE_ELEMENT per element
  table_init: 768, // plus GAS_PER_TABLE_ELEMENT per element
  drop: 8, // data.drop, elem.drop
};

/** Charged by memory.grow per requested page (64 KiB), whether or not the grow succeeds. */
export const GAS_PER_PAGE = 8192;
/**
 * Charged by memory.grow, whether or not it succeeds, per page of the memory it leaves (the size before it plus
 * the pages requested, these counted up to 65536): each grow hands V8 a new buffer of the whole memory, which
 * V8 counts as fresh external memory, and past its budget (64 MiB over what the last collection left) V8
 * collects garbage, a cost of the VM's heap. grow(0) repeated on a memory of 1,024 pages cost 9 us each in a
 * pool VM and 0.5 ms each beside a 44 MB heap, against the 16,384 gas of the instruction's base price.
 */
export const GAS_PER_PAGE_AFTER_GROW = 8192;
/**
 * The same, per page, when the memory it leaves is over LARGE_MEMORY_PAGES (64 MiB): every grow of it outruns
 * V8's budget and starts a collection. grow(0) on 2,048 pages cost 0.76 ms each in a pool VM, and on 1,100 pages
 * 7.9 ms each beside a 44 MB heap: 10,000 of them took a VM's call 6-8 s of CPU for 1.8e8 gas.
 */
export const GAS_PER_PAGE_AFTER_LARGE_GROW = 131072;
export const LARGE_MEMORY_PAGES = 1024;

/** Charged by memory.copy, memory.fill and memory.init per byte. */
export const GAS_PER_BYTE = 1;
/** Charged by table.copy and table.init per element: each copied reference costs the engine ~13 ns. */
export const GAS_PER_TABLE_ELEMENT = 384;
/** A br_table costs one more gas per this many targets: a long jump table costs the engine more per branch. */
export const BR_TABLE_TARGETS_PER_GAS = 64;

/** Cost per gas class id, for the rewriter's hot loop. */
export const COST_BY_CLASS = Uint32Array.from(GAS_CLASS_NAMES.map((n) => GAS_COST[n]));

/**
 * The charge at the start of a metered segment. The remaining gas travels with the calls: every defined
 * function receives it as an extra i64 parameter, keeps it in that local and returns what is left as an
 * extra result (index.ts, rewrite.ts). A segment subtracts its cost and branches to the function's
 * out-of-gas block, which calls the throwing import, when the result is negative. No memory is touched, so
 * the check costs a subtract, a compare and a branch that is never taken. It sits before the first instruction
 * of the segment: an execution always stops at the same segment for the same gas.
 */
export function writeCharge(w: ByteWriter, cost: number, gasLocal: number, outOfGasLabel: number): void {
  // Written in place with one capacity check (33 bytes at most): one charge per metered segment, the
  // instrumenter's commonest output, and a fresh VM runs this in V8's interpreter where each call costs.
  const buf = w.reserve(33);
  let o = w.length;
  buf[o++] = 0x20; o = putU32(buf, o, gasLocal); // local.get $gas
  buf[o++] = 0x42; o = putS64(buf, o, cost); // i64.const cost
  buf[o++] = 0x7d; // i64.sub
  buf[o++] = 0x22; o = putU32(buf, o, gasLocal); // local.tee $gas
  buf[o++] = 0x42; buf[o++] = 0x00; // i64.const 0
  buf[o++] = 0x53; // i64.lt_s
  buf[o++] = 0x0d; o = putU32(buf, o, outOfGasLabel); // br_if $out_of_gas
  w.length = o;
}

/** Unsigned LEB128 of v (< 2^32) at buf[o]; returns the offset after it. */
function putU32(buf: Uint8Array, o: number, v: number): number {
  v >>>= 0;
  while (v >= 0x80) {
    buf[o++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[o++] = v;
  return o;
}

/** Signed LEB128 of a safe integer at buf[o] (as ByteWriter.sleb); returns the offset after it. */
function putS64(buf: Uint8Array, o: number, v: number): number {
  for (;;) {
    const b = v & 0x7f;
    v = Math.floor(v / 128);
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      buf[o++] = b;
      return o;
    }
    buf[o++] = b | 0x80;
  }
}

/**
 * Body of the helper `(param $n i32) (param $unit i64) (param $gas i64) (result i32 i64)` that charges
 * n * unit and returns n and the gas left. Inserted before memory.grow and the bulk operations, whose amount
 * is only known at run time.
 */
export function writeChargeUnitsBody(w: ByteWriter, outOfGasFunc: number): void {
  w.u8(0); // no locals
  w.u8(0x20); w.u8(2); // local.get $gas
  w.u8(0x20); w.u8(0); // local.get $n
  w.u8(0xad); // i64.extend_i32_u
  w.u8(0x20); w.u8(1); // local.get $unit
  w.u8(0x7e); // i64.mul  (n < 2^32 and unit < 2^31: no overflow)
  w.u8(0x7d); // i64.sub
  w.u8(0x22); w.u8(2); // local.tee $gas
  w.u8(0x42); w.u8(0x00);
  w.u8(0x53); // i64.lt_s
  w.u8(0x04); w.u8(0x40); // if
  w.opU32(0x10, outOfGasFunc); // call $out_of_gas (throws)
  w.u8(0x0b);
  w.u8(0x20); w.u8(0); // local.get $n
  w.u8(0x20); w.u8(2); // local.get $gas
  w.u8(0x0b); // end
}

/** Inserted right before an instruction whose top operand is the dynamic amount (pages, bytes, elements). */
export function writeDynamicCharge(w: ByteWriter, unitCost: number, gasLocal: number, chargeUnitsFunc: number): void {
  w.u8(0x42); w.sleb(unitCost); // i64.const unit
  w.opU32(0x20, gasLocal); // local.get $gas
  w.opU32(0x10, chargeUnitsFunc); // call $charge_units
  w.opU32(0x21, gasLocal); // local.set $gas
}

/**
 * Inserted right before memory.grow, after the per-page charge of the pages requested (writeDynamicCharge): the
 * charge per page of the memory the grow leaves. With the requested count n on top of the stack (kept there):
 *   temp = n; after = memory.size + min(n, 65536); unit = after > LARGE_MEMORY_PAGES ? large : small;
 *   charge after * unit
 * Four operands above n at most.
 */
export function writeGrowSizeCharge(w: ByteWriter, tempI32: number, gasLocal: number, chargeUnitsFunc: number): void {
  w.opU32(0x22, tempI32); // local.tee $t (n stays on the stack)
  w.u8(0x3f); w.u8(0x00); // memory.size
  w.opU32(0x20, tempI32);
  w.u8(0x41); w.sleb(65536); // i32.const 65536
  w.opU32(0x20, tempI32);
  w.u8(0x41); w.sleb(65536);
  w.u8(0x49); // i32.lt_u
  w.u8(0x1b); // select: min(n, 65536)
  w.u8(0x6a); // i32.add: the pages after the grow (at most 131072: no wrap)
  w.opU32(0x22, tempI32); // local.tee $t
  w.u8(0x42); w.sleb(GAS_PER_PAGE_AFTER_LARGE_GROW); // i64.const large
  w.u8(0x42); w.sleb(GAS_PER_PAGE_AFTER_GROW); // i64.const small
  w.opU32(0x20, tempI32);
  w.u8(0x41); w.sleb(LARGE_MEMORY_PAGES);
  w.u8(0x4b); // i32.gt_u
  w.u8(0x1b); // select: the unit
  w.opU32(0x20, gasLocal);
  w.opU32(0x10, chargeUnitsFunc); // call $charge_units: after * unit
  w.opU32(0x21, gasLocal); // local.set $gas
  w.u8(0x1a); // drop `after`
}

/** Hands the remaining gas to the global (before a host call, a throwing import, or on leaving a thunk). */
export function writeStore(w: ByteWriter, gasLocal: number, gasGlobal: number): void {
  w.opU32(0x20, gasLocal); // local.get $gas
  w.opU32(0x24, gasGlobal); // global.set $gas
}

/** Takes it back after a host call (the host function charged the global). */
export function writeLoad(w: ByteWriter, gasLocal: number, gasGlobal: number): void {
  w.opU32(0x23, gasGlobal); // global.get $gas
  w.opU32(0x21, gasLocal); // local.set $gas
}
