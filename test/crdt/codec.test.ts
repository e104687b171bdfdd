/**
 * The artifact format (version 1) and the hybrid logical clock: round trips, strict decoding of every
 * malformed shape, NTP64 conversion and stamp order.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeArtifact, encodeArtifact, frozenHash, type Action } from '../../src/vm/crdt/actions.js';
import { ByteWriter, CrdtFormatError } from '../../src/vm/crdt/bytes.js';
import { compareNodes, nextTime, ntp64FromUnixNanos, physicalTime } from '../../src/vm/crdt/hlc.js';
import { id32 } from '../helpers.js';

const A = id32('alice');
const B = id32('bob');
const ID = id32('collection');
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const [LOW, HIGH] = Buffer.compare(A, B) < 0 ? [A, B] : [B, A];

const EVERY_KIND: Action[] = [
  { type: 'create', id: ID, kind: 'vector', time: 7n },
  {
    type: 'member',
    id: ID,
    kind: 'map',
    member: bytes('key'),
    slots: [
      { executor: LOW, removed: 3n, live: null },
      { executor: HIGH, removed: 0n, live: { time: 9n, value: bytes('v') } },
    ],
  },
  { type: 'member', id: ID, kind: 'user', member: A, slots: [{ executor: A, removed: 2n, live: { time: 4n, value: bytes('d') } }] },
  { type: 'member', id: ID, kind: 'set', member: bytes('x'), slots: [{ executor: B, removed: 0n, live: { time: 1n, value: new Uint8Array(0) } }] },
  { type: 'element', id: ID, index: 5n, cell: { time: 11n, executor: A, value: null } },
  { type: 'lww', id: ID, cell: { time: 12n, executor: B, value: bytes('status') } },
  { type: 'counter', id: ID, executor: A, share: 3n },
  { type: 'frozen', id: ID, value: bytes('content') },
  { type: 'root', root: { created: 1n, updated: 2n, executor: A, doc: bytes('{}') } },
];

function rejects(artifact: Uint8Array, pattern: RegExp): void {
  assert.throws(() => decodeArtifact(artifact), (e) => e instanceof CrdtFormatError && pattern.test(e.message));
}

/** version 1, one action, then the action bytes written by `body`. */
function one(body: (w: ByteWriter) => void): Uint8Array {
  const w = new ByteWriter().u8(1).u32(1);
  body(w);
  return w.finish();
}

describe('artifact format v1', () => {
  test('every action kind round-trips', () => {
    const encoded = encodeArtifact(EVERY_KIND);
    assert.equal(encoded[0], 1, 'leading version byte');
    assert.deepEqual(decodeArtifact(encoded), EVERY_KIND);
    assert.deepEqual(decodeArtifact(encodeArtifact([])), []);
  });

  test('every truncation and any trailing byte is rejected', () => {
    const encoded = encodeArtifact(EVERY_KIND);
    for (let n = 0; n < encoded.length; n++) {
      assert.throws(() => decodeArtifact(encoded.subarray(0, n)), CrdtFormatError, `prefix of ${n} bytes`);
    }
    rejects(Uint8Array.from([...encoded, 0]), /1 trailing bytes/);
  });

  test('malformed shapes are rejected by name', () => {
    rejects(Uint8Array.of(2, 0, 0, 0, 0), /unsupported artifact version 2/);
    rejects(one((w) => w.u8(9).raw(ID)), /unknown action tag 9/);
    rejects(one((w) => w.u8(1).raw(ID).u8(8).u64(1n)), /unknown collection kind 8/);
    rejects(one((w) => w.u8(2).raw(ID).u8(2).bytes(bytes('k')).u32(0)), /kind 2 has no members/);
    const member = (kind: number, m: Uint8Array, slots: (w: ByteWriter) => void): Uint8Array =>
      one((w) => {
        w.u8(2).raw(ID).u8(kind).bytes(m);
        slots(w);
      });
    rejects(member(1, bytes('k'), (w) => w.u32(0)), /at least one slot/);
    rejects(member(1, bytes('k'), (w) => w.u32(1).raw(A).u64(0n).u8(2)), /live flag must be 0 or 1/);
    rejects(member(1, bytes('k'), (w) => w.u32(1).raw(A).u64(0n).u8(0)), /empty slot/);
    rejects(member(1, bytes('k'), (w) => w.u32(1).raw(A).u64(5n).u8(1).u64(5n).bytes(bytes('v'))), /at or below its removed time/);
    rejects(
      member(1, bytes('k'), (w) => w.u32(2).raw(HIGH).u64(1n).u8(0).raw(LOW).u64(1n).u8(0)),
      /not sorted by executor/,
    );
    rejects(member(1, bytes('k'), (w) => w.u32(2).raw(A).u64(1n).u8(0).raw(A).u64(2n).u8(0)), /not sorted by executor/);
    rejects(member(3, bytes('x'), (w) => w.u32(1).raw(A).u64(0n).u8(1).u64(1n).bytes(bytes('v'))), /set members carry no value/);
    rejects(member(6, bytes('short'), (w) => w.u32(1).raw(A).u64(1n).u8(0)), /32-byte executor id/);
    rejects(member(6, A, (w) => w.u32(1).raw(B).u64(0n).u8(1).u64(1n).bytes(bytes('v'))), /changed by another executor/);
    rejects(one((w) => w.u8(5).raw(ID).raw(A).u64(0n)), /share is at least 1/);
    rejects(one((w) => w.u8(4).raw(ID).u64(1n).raw(A).u8(7)), /present flag must be 0 or 1/);
    rejects(Uint8Array.of(1, 5, 0, 0, 0), /action tag needs 1 bytes/);
  });

  test('frozen keys are SHA-256(u32le(len) || bytes)', () => {
    assert.equal(Buffer.from(frozenHash(bytes('hello'))).toString('hex'), '963c97c1c13b5b35a92626c5c6dc96d2cda62779ed6f139f5f88a5277095ce1a');
  });
});

describe('hybrid logical clock', () => {
  test('NTP64 of Unix nanoseconds', () => {
    assert.equal(ntp64FromUnixNanos(1_000_000_000n), 1n << 32n);
    assert.equal(ntp64FromUnixNanos(1_500_000_000n), (1n << 32n) | (1n << 31n));
    assert.equal(ntp64FromUnixNanos(-5n), 0n);
    assert.equal(physicalTime(1_500_000_000n) & 0xffffn, 0n, 'the counter bits are cleared');
    assert.equal(physicalTime(1_000_000_000n + 1n), 1n << 32n, 'below the counter resolution');
  });

  test('the next time is after the clock and at least the physical time; it saturates', () => {
    assert.equal(nextTime(100n, 5n), 100n);
    assert.equal(nextTime(100n, 100n), 101n);
    assert.equal(nextTime(0n, (1n << 64n) - 1n), (1n << 64n) - 1n);
  });

  test('node order reads the first 16 bytes as a little-endian u128', () => {
    const x = new Uint8Array(32);
    const y = new Uint8Array(32);
    x[0] = 0xff; // low byte
    y[1] = 0x01; // a more significant byte
    assert.equal(compareNodes(x, y), -1);
    assert.equal(compareNodes(y, x), 1);
    const z = Uint8Array.from(x);
    z[31] = 1; // equal u128, decided by the last 16 bytes
    assert.equal(compareNodes(x, z), -1);
    assert.equal(compareNodes(x, Uint8Array.from(x)), 0);
  });
});
