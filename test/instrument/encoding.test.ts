/**
 * The instrumenter's in-place encoders (ByteWriter.opU32, writeCharge) against the general ones they replace
 * on the hot path (u8 + u32, u8 + sleb): the same bytes at every LEB128 length boundary, starting from a buffer
 * too small for them so that the capacity checks are exercised too. The pinned-output test covers real modules;
 * this covers the values real modules rarely reach (indices and costs of 3 to 8 bytes).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteWriter } from '../../src/vm/instrument/bytes.js';
import { writeCharge } from '../../src/vm/instrument/gas.js';

/** 0, 1, and both sides of every 7-bit boundary up to 2^32 - 1. */
const U32_VALUES = [0, 1, 63, 64, 65, 127, 128, 129, 255, 256, 16383, 16384, 2 ** 21 - 1, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1];
/** Gas costs: both sides of every signed 7-bit boundary up to 2^53 - 1. */
const COSTS = [0, 1, 24, 63, 64, 65, 127, 128, 8191, 8192, 2 ** 20 - 1, 2 ** 20, 2 ** 27, 2 ** 31, 2 ** 32 + 5, 2 ** 41 + 3, 2 ** 48 - 1, Number.MAX_SAFE_INTEGER];

/** What writeCharge wrote before it was written in place: one ByteWriter call per field. */
function referenceCharge(w: ByteWriter, cost: number, gasLocal: number, label: number): void {
  w.u8(0x20); w.u32(gasLocal);
  w.u8(0x42); w.sleb(cost);
  w.u8(0x7d);
  w.u8(0x22); w.u32(gasLocal);
  w.u8(0x42); w.u8(0x00);
  w.u8(0x53);
  w.u8(0x0d); w.u32(label);
}

test('opU32 writes an opcode and its index as u8 then u32 do, growing the buffer as needed', () => {
  const fast = new ByteWriter(1);
  const reference = new ByteWriter(1);
  for (const v of U32_VALUES) {
    fast.opU32(0x20, v);
    reference.u8(0x20);
    reference.u32(v);
  }
  assert.deepEqual(fast.finish(), reference.finish());
});

test('writeCharge writes the same charge as the field-by-field encoding, at every LEB128 length', () => {
  let cases = 0;
  for (const cost of COSTS) {
    for (const local of [0, 127, 128, 2 ** 16, 2 ** 32 - 1]) {
      for (const label of [0, 1, 127, 128, 20000]) {
        // A small buffer with something in it already: the charge must land after it and grow it.
        const fast = new ByteWriter(2);
        const reference = new ByteWriter(2);
        fast.u8(0xaa);
        reference.u8(0xaa);
        writeCharge(fast, cost, local, label);
        referenceCharge(reference, cost, local, label);
        assert.deepEqual(fast.finish(), reference.finish(), `cost ${cost}, local ${local}, label ${label}`);
        cases++;
      }
    }
  }
  assert.equal(cases, COSTS.length * 25);
});
