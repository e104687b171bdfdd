import type { ByteWriter } from './bytes.js';

/**
 * NaN canonicalisation. x64 and ARM64 produce different NaN bit patterns for the same operation (sign bit,
 * payload propagation), and the bits become observable through stores and reinterpretations. After every
 * instruction that can create a NaN (opcodes.ts flags F_NAN32/F_NAN64) the rewriter inserts
 *
 *   local.tee $t; f32.const <canonical>; local.get $t; local.get $t; f32.eq; select
 *
 * which keeps x when x == x (not NaN) and otherwise yields the canonical quiet NaN: positive sign, quiet bit,
 * zero payload. abs, neg and copysign only move bits of their input, and loads, constants and
 * reinterpretations carry bits that are already deterministic, so they are left alone.
 */
export const CANONICAL_NAN_F32 = 0x7fc00000;
export const CANONICAL_NAN_F64 = 0x7ff8000000000000n;

const F32_NAN_BYTES = [0x00, 0x00, 0xc0, 0x7f];
const F64_NAN_BYTES = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x7f];

export function writeCanonicalizeF32(w: ByteWriter, temp: number): void {
  w.opU32(0x22, temp); // local.tee $t
  w.u8(0x43); for (const b of F32_NAN_BYTES) w.u8(b); // f32.const nan
  w.opU32(0x20, temp);
  w.opU32(0x20, temp);
  w.u8(0x5b); // f32.eq
  w.u8(0x1b); // select
}

export function writeCanonicalizeF64(w: ByteWriter, temp: number): void {
  w.opU32(0x22, temp);
  w.u8(0x44); for (const b of F64_NAN_BYTES) w.u8(b);
  w.opU32(0x20, temp);
  w.opU32(0x20, temp);
  w.u8(0x61); // f64.eq
  w.u8(0x1b);
}
