/**
 * The collection host functions one by one (js_crdt_*, js_user_storage_*, js_frozen_storage_*): success
 * paths, absent items, bad id lengths (-1 with the message in the register, register 0 for functions without
 * one), ids of another kind, out-of-bounds descriptors and the storage size limits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lwwTimestampBytes } from '../../src/vm/crdt/hlc.js';
import { id32 } from '../helpers.js';
import { GuestRun, listing, MemoryState, u64 } from './harness.js';

const R = 7n; // a register other than 0, to see that results go where the guest asked
const BAD_ID = new Uint8Array(31);
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');

function newCollection(g: GuestRun, fn: Parameters<GuestRun['call']>[0]): bigint {
  assert.equal(g.call(fn, R), 0, `${fn} returns 0`);
  const id = g.reg(R);
  assert.equal(id?.length, 32);
  return g.buf(id!);
}

/** -1 and the message in `register`. */
function domainError(g: GuestRun, register: bigint, pattern: RegExp, fn: Parameters<GuestRun["call"]>[0], ...args: (bigint | number)[]): void {
  assert.equal(g.call(fn, ...args), -1, `${fn} answers -1`);
  assert.match(g.text(register) ?? '', pattern);
}

describe('js_crdt_map_*', () => {
  test('insert, get, contains, remove and iter', () => {
    const g = new GuestRun(new MemoryState());
    const m = newCollection(g, 'js_crdt_map_new');
    assert.equal(g.call('js_crdt_map_get', m, g.buf('a'), R), 0, 'absent key');
    assert.equal(g.reg(R)?.length, 0, 'absent: the register is emptied');
    assert.equal(g.call('js_crdt_map_insert', m, g.buf('b'), g.buf('2'), R), 0, 'new key');
    assert.equal(g.call('js_crdt_map_insert', m, g.buf('a'), g.buf('1'), R), 0);
    assert.equal(g.call('js_crdt_map_insert', m, g.buf('a'), g.buf('one'), R), 1, 'replaced');
    assert.equal(g.text(R), '1', 'the previous value');
    assert.equal(g.call('js_crdt_map_get', m, g.buf('a'), R), 1);
    assert.equal(g.text(R), 'one');
    assert.equal(g.call('js_crdt_map_contains', m, g.buf('a')), 1);
    assert.equal(g.call('js_crdt_map_contains', m, g.buf('zz')), 0);
    assert.equal(g.call('js_crdt_map_iter', m, R), 1);
    assert.deepEqual(listing(g.reg(R), 2), [['a', 'one'], ['b', '2']], 'entries in key order');
    assert.equal(g.call('js_crdt_map_remove', m, g.buf('a'), R), 1);
    assert.equal(g.text(R), 'one');
    assert.equal(g.call('js_crdt_map_remove', m, g.buf('a'), R), 0, 'already removed');
    assert.equal(g.call('js_crdt_map_contains', m, g.buf('a')), 0);
    assert.equal(g.call('js_crdt_map_iter', m, R), 1);
    assert.deepEqual(listing(g.reg(R), 2), [['b', '2']]);
  });

  test('empty keys and values are valid; an unknown 32-byte id is an empty map', () => {
    const g = new GuestRun(new MemoryState());
    const unknown = g.buf(id32('never created'));
    assert.equal(g.call('js_crdt_map_iter', unknown, R), 1);
    assert.deepEqual(listing(g.reg(R), 2), []);
    assert.equal(g.call('js_crdt_map_insert', unknown, g.buf(''), g.buf(''), R), 0);
    assert.equal(g.call('js_crdt_map_get', unknown, g.buf(''), R), 1);
    assert.equal(g.reg(R)?.length, 0);
  });

  test('a bad id length or an id of another kind answers -1 with a message', () => {
    const g = new GuestRun(new MemoryState());
    const bad = g.buf(BAD_ID);
    domainError(g, R, /collection id must be 32 bytes, got 31/, 'js_crdt_map_get', bad, g.buf('k'), R);
    domainError(g, R, /32 bytes/, 'js_crdt_map_insert', bad, g.buf('k'), g.buf('v'), R);
    domainError(g, R, /32 bytes/, 'js_crdt_map_remove', bad, g.buf('k'), R);
    domainError(g, R, /32 bytes/, 'js_crdt_map_iter', bad, R);
    domainError(g, 0n, /32 bytes/, 'js_crdt_map_contains', bad, g.buf('k'));
    const set = newCollection(g, 'js_crdt_set_new');
    domainError(g, R, /is a set, not a map/, 'js_crdt_map_insert', set, g.buf('k'), g.buf('v'), R);
    assert.equal(g.ex.storage.delta().length > 0, true);
  });

  test('out-of-bounds descriptors trap; keys and values obey the storage limits', () => {
    const g = new GuestRun(new MemoryState(), { limits: { maxStorageKeySize: 4, maxStorageValueSize: 8 } });
    const m = newCollection(g, 'js_crdt_map_new');
    g.traps('InvalidMemoryAccess', 'js_crdt_map_get', g.outOfBounds(), g.buf('k'), R);
    g.traps('InvalidMemoryAccess', 'js_crdt_map_get', 1n << 40n, g.buf('k'), R);
    g.traps('InvalidMemoryAccess', 'js_crdt_map_insert', m, g.buf('k'), g.outOfBounds(), R);
    g.traps('InvalidMemoryAccess', 'js_crdt_map_remove', m, g.outOfBounds(), R);
    g.traps('InvalidMemoryAccess', 'js_crdt_map_contains', m, -16n);
    g.traps('InvalidMemoryAccess', 'js_crdt_map_iter', g.outOfBounds(), R);
    g.traps('KeyLengthOverflow', 'js_crdt_map_insert', m, g.buf('12345'), g.buf('v'), R);
    g.traps('ValueLengthOverflow', 'js_crdt_map_insert', m, g.buf('k'), g.buf('123456789'), R);
  });
});

describe('js_crdt_vector_*', () => {
  test('push, len, get, pop', () => {
    const g = new GuestRun(new MemoryState());
    const v = newCollection(g, 'js_crdt_vector_new');
    assert.equal(g.call('js_crdt_vector_len', v, R), 1);
    assert.equal(u64(g.reg(R)), 0n);
    assert.equal(g.call('js_crdt_vector_pop', v, R), 0, 'pop on empty');
    assert.equal(g.call('js_crdt_vector_get', v, 0n, R), 0, 'get on empty');
    for (const s of ['a', 'b', 'c']) assert.equal(g.call('js_crdt_vector_push', v, g.buf(s)), 1);
    assert.equal(g.call('js_crdt_vector_len', v, R), 1);
    assert.equal(u64(g.reg(R)), 3n);
    assert.equal(g.call('js_crdt_vector_get', v, 1n, R), 1);
    assert.equal(g.text(R), 'b');
    assert.equal(g.call('js_crdt_vector_get', v, 3n, R), 0, 'past the end');
    assert.equal(g.call('js_crdt_vector_get', v, -1n, R), 0, 'u64::MAX');
    assert.equal(g.call('js_crdt_vector_pop', v, R), 1);
    assert.equal(g.text(R), 'c');
    assert.equal(g.call('js_crdt_vector_push', v, g.buf('d')), 1, 'push reuses the popped position');
    assert.deepEqual([0n, 1n, 2n].map((i) => (g.call('js_crdt_vector_get', v, i, R), g.text(R))), ['a', 'b', 'd']);
  });

  test('bad ids answer -1; out-of-bounds descriptors trap; values obey the limit', () => {
    const g = new GuestRun(new MemoryState(), { limits: { maxStorageValueSize: 4 } });
    const bad = g.buf(BAD_ID);
    domainError(g, R, /32 bytes/, 'js_crdt_vector_len', bad, R);
    domainError(g, 0n, /32 bytes/, 'js_crdt_vector_push', bad, g.buf('x'));
    domainError(g, R, /32 bytes/, 'js_crdt_vector_get', bad, 0n, R);
    domainError(g, R, /32 bytes/, 'js_crdt_vector_pop', bad, R);
    const map = newCollection(g, 'js_crdt_map_new');
    domainError(g, 0n, /is a map, not a vector/, 'js_crdt_vector_push', map, g.buf('x'));
    const v = newCollection(g, 'js_crdt_vector_new');
    g.traps('InvalidMemoryAccess', 'js_crdt_vector_push', v, g.outOfBounds());
    g.traps('InvalidMemoryAccess', 'js_crdt_vector_len', g.outOfBounds(), R);
    g.traps('InvalidMemoryAccess', 'js_crdt_vector_get', g.outOfBounds(), 0n, R);
    g.traps('InvalidMemoryAccess', 'js_crdt_vector_pop', g.outOfBounds(), R);
    g.traps('ValueLengthOverflow', 'js_crdt_vector_push', v, g.buf('12345'));
  });
});

describe('js_crdt_set_*', () => {
  test('insert, contains, remove, len, iter and clear', () => {
    const g = new GuestRun(new MemoryState());
    const s = newCollection(g, 'js_crdt_set_new');
    assert.equal(g.call('js_crdt_set_insert', s, g.buf('b')), 1);
    assert.equal(g.call('js_crdt_set_insert', s, g.buf('a')), 1);
    assert.equal(g.call('js_crdt_set_insert', s, g.buf('b')), 0, 'already present');
    assert.equal(g.call('js_crdt_set_contains', s, g.buf('a')), 1);
    assert.equal(g.call('js_crdt_set_contains', s, g.buf('c')), 0);
    assert.equal(g.call('js_crdt_set_len', s, R), 1);
    assert.equal(u64(g.reg(R)), 2n);
    assert.equal(g.call('js_crdt_set_iter', s, R), 1);
    assert.deepEqual(listing(g.reg(R), 1), [['a'], ['b']], 'byte order');
    assert.equal(g.call('js_crdt_set_remove', s, g.buf('a')), 1);
    assert.equal(g.call('js_crdt_set_remove', s, g.buf('a')), 0, 'absent');
    assert.equal(g.call('js_crdt_set_clear', s), 1);
    assert.equal(g.call('js_crdt_set_clear', s), 0, 'already empty');
    assert.equal(g.call('js_crdt_set_len', s, R), 1);
    assert.equal(u64(g.reg(R)), 0n);
    assert.equal(g.call('js_crdt_set_insert', s, g.buf('a')), 1, 'a removed element can come back');
  });

  test('bad ids answer -1; out-of-bounds descriptors trap; elements obey the key limit', () => {
    const g = new GuestRun(new MemoryState(), { limits: { maxStorageKeySize: 3 } });
    const bad = g.buf(BAD_ID);
    domainError(g, 0n, /32 bytes/, 'js_crdt_set_insert', bad, g.buf('x'));
    domainError(g, 0n, /32 bytes/, 'js_crdt_set_contains', bad, g.buf('x'));
    domainError(g, 0n, /32 bytes/, 'js_crdt_set_remove', bad, g.buf('x'));
    domainError(g, R, /32 bytes/, 'js_crdt_set_len', bad, R);
    domainError(g, R, /32 bytes/, 'js_crdt_set_iter', bad, R);
    domainError(g, 0n, /32 bytes/, 'js_crdt_set_clear', bad);
    const s = newCollection(g, 'js_crdt_set_new');
    for (const fn of ['js_crdt_set_insert', 'js_crdt_set_contains', 'js_crdt_set_remove'] as const) {
      g.traps('InvalidMemoryAccess', fn, s, g.outOfBounds());
      g.traps('InvalidMemoryAccess', fn, g.outOfBounds(), g.buf('x'));
    }
    g.traps('InvalidMemoryAccess', 'js_crdt_set_len', g.outOfBounds(), R);
    g.traps('InvalidMemoryAccess', 'js_crdt_set_iter', g.outOfBounds(), R);
    g.traps('InvalidMemoryAccess', 'js_crdt_set_clear', g.outOfBounds());
    g.traps('KeyLengthOverflow', 'js_crdt_set_insert', s, g.buf('1234'));
  });
});

describe('js_crdt_lww_*', () => {
  test('set, get, clear and the 24-byte timestamp', () => {
    const g = new GuestRun(new MemoryState());
    const r = newCollection(g, 'js_crdt_lww_new');
    assert.equal(g.call('js_crdt_lww_get', r, R), 0, 'never set');
    assert.equal(g.call('js_crdt_lww_timestamp', r, R), 0, 'no timestamp yet');
    assert.equal(g.call('js_crdt_lww_set', r, g.buf('x'), 1), 1, 'changed');
    assert.equal(g.call('js_crdt_lww_get', r, R), 1);
    assert.equal(g.text(R), 'x');
    assert.equal(g.call('js_crdt_lww_timestamp', r, R), 1);
    const first = g.reg(R)!;
    assert.equal(first.length, 24);
    assert.equal(hex(first.subarray(8)), hex(id32('alice').subarray(0, 16)), 'node id: the executor id bytes 0..15');
    assert.equal(g.call('js_crdt_lww_set', r, g.buf('x'), 1), 0, 'same value: unchanged');
    g.call('js_crdt_lww_timestamp', r, R);
    const second = g.reg(R)!;
    assert.ok(Buffer.from(second).readBigUInt64LE(0) > Buffer.from(first).readBigUInt64LE(0), 'restamped anyway');
    assert.equal(g.call('js_crdt_lww_set', r, g.buf('ignored'), 0), 1, 'has_value 0 clears');
    assert.equal(g.call('js_crdt_lww_get', r, R), 0);
    assert.equal(g.call('js_crdt_lww_timestamp', r, R), 1, 'a cleared register keeps its timestamp');
    assert.equal(g.call('js_crdt_lww_set', r, g.buf(''), 0), 0, 'clearing again changes nothing');
  });

  test('the timestamp layout is u64 time LE then the u128 node id LE', () => {
    const t = lwwTimestampBytes(0x0102030405060708n, Uint8Array.from({ length: 32 }, (_, i) => i + 1));
    assert.equal(hex(t), '0807060504030201' + '0102030405060708090a0b0c0d0e0f10');
  });

  test('bad ids answer -1; out-of-bounds descriptors trap even with has_value 0', () => {
    const g = new GuestRun(new MemoryState());
    const bad = g.buf(BAD_ID);
    domainError(g, 0n, /32 bytes/, 'js_crdt_lww_set', bad, g.buf('x'), 1);
    domainError(g, R, /32 bytes/, 'js_crdt_lww_get', bad, R);
    domainError(g, R, /32 bytes/, 'js_crdt_lww_timestamp', bad, R);
    const r = newCollection(g, 'js_crdt_lww_new');
    g.traps('InvalidMemoryAccess', 'js_crdt_lww_set', r, g.outOfBounds(), 0);
    g.traps('InvalidMemoryAccess', 'js_crdt_lww_set', g.outOfBounds(), g.buf('x'), 1);
    g.traps('InvalidMemoryAccess', 'js_crdt_lww_get', g.outOfBounds(), R);
    g.traps('InvalidMemoryAccess', 'js_crdt_lww_timestamp', g.outOfBounds(), R);
  });
});

describe('js_crdt_counter_*', () => {
  test('increment, value and per-executor counts', () => {
    const state = new MemoryState();
    const a = new GuestRun(state);
    const c = newCollection(a, 'js_crdt_counter_new');
    const id = a.reg(R)!;
    assert.equal(a.call('js_crdt_counter_value', c, R), 1);
    assert.equal(u64(a.reg(R)), 0n);
    assert.equal(a.call('js_crdt_counter_increment', c), 1);
    assert.equal(a.call('js_crdt_counter_increment', c), 1);
    a.commit();
    const b = new GuestRun(state, { executorId: id32('bob') });
    const cb = b.buf(id);
    assert.equal(b.call('js_crdt_counter_increment', cb), 1);
    assert.equal(b.call('js_crdt_counter_value', cb, R), 1);
    assert.equal(u64(b.reg(R)), 3n);
    assert.equal(b.call('js_crdt_counter_get_executor_count', cb, 0n, 0, R), 1, 'has_executor 0: the current executor');
    assert.equal(u64(b.reg(R)), 1n);
    assert.equal(b.call('js_crdt_counter_get_executor_count', cb, b.buf(id32('alice')), 1, R), 1);
    assert.equal(u64(b.reg(R)), 2n);
    assert.equal(b.call('js_crdt_counter_get_executor_count', cb, b.buf(id32('carol')), 1, R), 1, 'absent executor');
    assert.equal(u64(b.reg(R)), 0n);
  });

  test('bad ids and executor lengths answer -1; out-of-bounds descriptors trap', () => {
    const g = new GuestRun(new MemoryState());
    const bad = g.buf(BAD_ID);
    domainError(g, 0n, /32 bytes/, 'js_crdt_counter_increment', bad);
    domainError(g, R, /32 bytes/, 'js_crdt_counter_value', bad, R);
    domainError(g, R, /32 bytes/, 'js_crdt_counter_get_executor_count', bad, 0n, 0, R);
    const c = newCollection(g, 'js_crdt_counter_new');
    domainError(g, R, /executor id must be 32 bytes, got 3/, 'js_crdt_counter_get_executor_count', c, g.buf('abc'), 1, R);
    g.traps('InvalidMemoryAccess', 'js_crdt_counter_get_executor_count', c, g.outOfBounds(), 1, R);
    assert.equal(g.call('js_crdt_counter_get_executor_count', c, g.outOfBounds(), 0, R), 1, 'executor_ptr unread when has_executor is 0');
    g.traps('InvalidMemoryAccess', 'js_crdt_counter_increment', g.outOfBounds());
    g.traps('InvalidMemoryAccess', 'js_crdt_counter_value', g.outOfBounds(), R);
  });
});

describe('js_user_storage_*', () => {
  test("each executor has its own value; anyone can read anyone's", () => {
    const state = new MemoryState();
    const a = new GuestRun(state);
    const s = newCollection(a, 'js_user_storage_new');
    const id = a.reg(R)!;
    assert.equal(a.call('js_user_storage_get', s, R), 0, 'unset');
    assert.equal(a.call('js_user_storage_contains', s), 0);
    assert.equal(a.call('js_user_storage_insert', s, a.buf('draft 1'), R), 0, 'new');
    assert.equal(a.call('js_user_storage_insert', s, a.buf('draft 2'), R), 1);
    assert.equal(a.text(R), 'draft 1');
    assert.equal(a.call('js_user_storage_get', s, R), 1);
    assert.equal(a.text(R), 'draft 2');
    a.commit();
    const b = new GuestRun(state, { executorId: id32('bob') });
    const sb = b.buf(id);
    assert.equal(b.call('js_user_storage_get', sb, R), 0, "bob has none");
    assert.equal(b.call('js_user_storage_contains', sb), 0);
    assert.equal(b.call('js_user_storage_get_for_user', sb, b.buf(id32('alice')), R), 1);
    assert.equal(b.text(R), 'draft 2');
    assert.equal(b.call('js_user_storage_contains_user', sb, b.buf(id32('alice'))), 1);
    assert.equal(b.call('js_user_storage_contains_user', sb, b.buf(id32('carol'))), 0);
    assert.equal(b.call('js_user_storage_remove', sb, R), 0, "bob cannot remove alice's value");
    assert.equal(b.call('js_user_storage_get_for_user', sb, b.buf(id32('alice')), R), 1);
    assert.equal(a.call('js_user_storage_remove', s, R), 1);
    assert.equal(a.text(R), 'draft 2');
    assert.equal(a.call('js_user_storage_remove', s, R), 0);
    assert.equal(a.call('js_user_storage_contains', s), 0);
  });

  test('bad ids and user keys answer -1; out-of-bounds descriptors trap', () => {
    const g = new GuestRun(new MemoryState(), { limits: { maxStorageValueSize: 2 } });
    const bad = g.buf(BAD_ID);
    const alice = g.buf(id32('alice'));
    domainError(g, R, /32 bytes/, 'js_user_storage_insert', bad, g.buf('v'), R);
    domainError(g, R, /32 bytes/, 'js_user_storage_get', bad, R);
    domainError(g, R, /32 bytes/, 'js_user_storage_get_for_user', bad, alice, R);
    domainError(g, R, /32 bytes/, 'js_user_storage_remove', bad, R);
    domainError(g, 0n, /32 bytes/, 'js_user_storage_contains', bad);
    domainError(g, 0n, /32 bytes/, 'js_user_storage_contains_user', bad, alice);
    const s = newCollection(g, 'js_user_storage_new');
    domainError(g, R, /user key is a 32-byte executor id, got 5/, 'js_user_storage_get_for_user', s, g.buf('alice'), R);
    domainError(g, 0n, /user key/, 'js_user_storage_contains_user', s, g.buf('alice'));
    g.traps('InvalidMemoryAccess', 'js_user_storage_insert', s, g.outOfBounds(), R);
    g.traps('InvalidMemoryAccess', 'js_user_storage_get', g.outOfBounds(), R);
    g.traps('InvalidMemoryAccess', 'js_user_storage_get_for_user', s, g.outOfBounds(), R);
    g.traps('InvalidMemoryAccess', 'js_user_storage_remove', g.outOfBounds(), R);
    g.traps('InvalidMemoryAccess', 'js_user_storage_contains', g.outOfBounds());
    g.traps('InvalidMemoryAccess', 'js_user_storage_contains_user', s, g.outOfBounds());
    g.traps('ValueLengthOverflow', 'js_user_storage_insert', s, g.buf('abc'), R);
  });
});

describe('js_frozen_storage_*', () => {
  test('add returns SHA-256(u32le(len) || bytes); values are immutable and content-addressed', () => {
    const g = new GuestRun(new MemoryState());
    const f = newCollection(g, 'js_frozen_storage_new');
    assert.equal(g.call('js_frozen_storage_add', f, g.buf('hello'), R), 1);
    const hash = g.reg(R)!;
    // Pinned: sha256(05 00 00 00 "hello").
    assert.equal(hex(hash), '963c97c1c13b5b35a92626c5c6dc96d2cda62779ed6f139f5f88a5277095ce1a');
    const writes = g.ex.storage.delta().length;
    assert.equal(g.call('js_frozen_storage_add', f, g.buf('hello'), R), 1, 'adding again');
    assert.equal(hex(g.reg(R)), hex(hash));
    assert.equal(g.ex.storage.delta().length, writes, 'adding again writes nothing');
    assert.equal(g.call('js_frozen_storage_add', f, g.buf(''), R), 1);
    assert.equal(hex(g.reg(R)), 'df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119', 'the empty value');
    assert.equal(g.call('js_frozen_storage_get', f, g.buf(hash), R), 1);
    assert.equal(g.text(R), 'hello');
    assert.equal(g.call('js_frozen_storage_contains', f, g.buf(hash)), 1);
    assert.equal(g.call('js_frozen_storage_get', f, g.buf(id32('other')), R), 0, 'absent');
    assert.equal(g.call('js_frozen_storage_contains', f, g.buf(id32('other'))), 0);
  });

  test('bad ids and hash lengths answer -1; out-of-bounds descriptors trap', () => {
    const g = new GuestRun(new MemoryState(), { limits: { maxStorageValueSize: 2 } });
    const bad = g.buf(BAD_ID);
    domainError(g, R, /32 bytes/, 'js_frozen_storage_add', bad, g.buf('v'), R);
    domainError(g, R, /32 bytes/, 'js_frozen_storage_get', bad, g.buf(id32('h')), R);
    domainError(g, 0n, /32 bytes/, 'js_frozen_storage_contains', bad, g.buf(id32('h')));
    const f = newCollection(g, 'js_frozen_storage_new');
    domainError(g, R, /hash is 32 bytes, got 4/, 'js_frozen_storage_get', f, g.buf('abcd'), R);
    domainError(g, 0n, /hash is 32 bytes/, 'js_frozen_storage_contains', f, g.buf('abcd'));
    g.traps('InvalidMemoryAccess', 'js_frozen_storage_add', f, g.outOfBounds(), R);
    g.traps('InvalidMemoryAccess', 'js_frozen_storage_get', f, g.outOfBounds(), R);
    g.traps('InvalidMemoryAccess', 'js_frozen_storage_contains', g.outOfBounds(), g.buf(id32('h')));
    g.traps('ValueLengthOverflow', 'js_frozen_storage_add', f, g.buf('abc'), R);
  });
});

describe('collection ids', () => {
  test('are derived: distinct within a call, the same when the call replays, different for another executor', () => {
    const ids = (executor: string): string[] => {
      const g = new GuestRun(new MemoryState(), { executorId: id32(executor) });
      return (['js_crdt_map_new', 'js_crdt_map_new', 'js_crdt_set_new', 'js_frozen_storage_new'] as const).map((fn) => {
        g.call(fn, R);
        return hex(g.reg(R));
      });
    };
    const first = ids('alice');
    assert.equal(new Set(first).size, 4);
    assert.deepEqual(ids('alice'), first, 'replay');
    assert.equal(ids('bob').filter((id) => first.includes(id)).length, 0);
  });

  test('a later call with the same message on a newer state gets new ids (the clock moved)', () => {
    const state = new MemoryState();
    const a = new GuestRun(state);
    a.call('js_crdt_map_new', R);
    const first = hex(a.reg(R));
    a.commit();
    const b = new GuestRun(state);
    b.call('js_crdt_map_new', R);
    assert.notEqual(hex(b.reg(R)), first);
  });
});
