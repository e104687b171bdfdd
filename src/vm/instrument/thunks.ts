import type { ByteWriter } from './bytes.js';

/**
 * Bridges between the original calling convention and the internal one, where every defined function takes
 * `(P, i64 gas, i32 height)` and returns `(R, i64 gas)` (rewrite.ts).
 */

/**
 * Entry thunk, with the original type `(P) -> (R)`: what callers outside the module call (exports, the start
 * function). It starts from the gas global and the height global (0, or the height at which a host function
 * called back in), and stores the gas left.
 */
export function writeEntryThunk(w: ByteWriter, paramCount: number, internalFunc: number, gasGlobal: number, heightGlobal: number): void {
  w.u8(0); // no locals
  for (let p = 0; p < paramCount; p++) { w.opU32(0x20, p); } // local.get p
  w.opU32(0x23, gasGlobal); // global.get $gas
  w.opU32(0x23, heightGlobal); // global.get $height
  w.opU32(0x10, internalFunc); // call
  w.opU32(0x24, gasGlobal); // global.set $gas (the extra result)
  w.u8(0x0b);
}

/**
 * Table thunk, with the internal type: stands for an imported function in a table, doing what a direct host
 * call does (hand over gas and height, call, take the gas back).
 */
export function writeTableThunk(w: ByteWriter, paramCount: number, importFunc: number, gasGlobal: number, heightGlobal: number): void {
  w.u8(0);
  w.opU32(0x20, paramCount); w.opU32(0x24, gasGlobal); // $gas -> global
  w.opU32(0x20, paramCount + 1); w.opU32(0x24, heightGlobal); // $height -> global
  for (let p = 0; p < paramCount; p++) { w.opU32(0x20, p); }
  w.opU32(0x10, importFunc);
  w.opU32(0x23, gasGlobal); // the gas left, as the extra result
  w.u8(0x0b);
}
