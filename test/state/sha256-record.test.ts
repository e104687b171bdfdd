/** The tree's 65-byte record hasher is plain SHA-256: checked against node:crypto, byte for byte. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { sha256Record, sha256RecordInto } from '../../src/host/state/sha256-record.js';
import { Rng } from './stores.js';

const reference = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

test('sha256Record equals SHA-256 for every value of the last byte (each second-block table) and random records', () => {
  const rng = new Rng(65);
  for (let last = 0; last < 256; last++) {
    const rec = rng.bytes(65);
    rec[64] = last;
    assert.deepEqual(Buffer.from(sha256Record(rec)), reference(rec), `last byte ${last}`);
  }
  for (let i = 0; i < 2000; i++) {
    const rec = rng.bytes(65);
    assert.deepEqual(Buffer.from(sha256Record(rec)), reference(rec));
  }
  // Edge patterns: all zero, all 0xff, the record types.
  for (const fill of [0x00, 0xff, 0x01, 0x80]) {
    const rec = new Uint8Array(65).fill(fill);
    assert.deepEqual(Buffer.from(sha256Record(rec)), reference(rec));
  }
});

test('sha256RecordInto writes at the offset and nowhere else; a record of another length is refused', () => {
  const rec = new Rng(7).bytes(65);
  const out = new Uint8Array(96).fill(0xaa);
  sha256RecordInto(rec, out, 40);
  assert.deepEqual(Buffer.from(out.subarray(40, 72)), reference(rec));
  assert.ok(out.subarray(0, 40).every((b) => b === 0xaa) && out.subarray(72).every((b) => b === 0xaa));
  assert.throws(() => sha256Record(new Uint8Array(64)), /65/);
  assert.throws(() => sha256Record(new Uint8Array(66)), /65/);
});
