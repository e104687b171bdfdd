/**
 * The state functions (commit, persist_root_state, read_root_state, apply_storage_delta, flush_delta), the
 * artifact in the effects, pending actions scoped to one execution, and replay.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isHostlinkError } from '../../src/errors.js';
import { encodeCalldata, type CalldataValue } from '../../src/protocol/calldata.js';
import { decodeEffects, emptyEffects, encodeEffects } from '../../src/protocol/effects.js';
import { decodeArtifact } from '../../src/vm/crdt/actions.js';
import { CrdtStore } from '../../src/vm/crdt/merge.js';
import { metaKey } from '../../src/vm/crdt/records.js';
import { id32 } from '../helpers.js';
import { GuestRun, MemoryState } from './harness.js';

const R = 3n;
const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('utf8');

/** A run that made one map insert (a pending action). */
function withChange(state = new MemoryState(), init = {}): { g: GuestRun; map: Uint8Array } {
  const g = new GuestRun(state, init);
  g.call('js_crdt_map_new', R);
  const map = g.reg(R)!;
  g.call('js_crdt_map_insert', g.buf(map), g.buf('k'), g.buf('v'), R);
  return { g, map };
}

describe('persist_root_state / read_root_state', () => {
  test('absent, then the document; timestamps come from the HLC', () => {
    const g = new GuestRun(new MemoryState());
    g.ex.registers.set(R, Uint8Array.of(9));
    assert.equal(g.call('read_root_state', R), 0);
    assert.deepEqual(g.reg(R), Uint8Array.of(9), 'register untouched when absent');
    g.call('persist_root_state', g.buf('{"v":1}'), 0n, 0n);
    assert.equal(g.call('read_root_state', R), 1);
    assert.equal(text(g.reg(R)), '{"v":1}');
    const root = new CrdtStore(g.ex.storage).root()!;
    assert.ok(root.created > 0n && root.updated >= root.created, 'created_at 0 means now');
    g.call('persist_root_state', g.buf('{"v":2}'), 5n, 1n << 63n);
    const second = new CrdtStore(g.ex.storage).root()!;
    assert.equal(second.created, 5n);
    assert.equal(second.updated, (1n << 63n) + 1n, 'after the given updated_at');
    g.call('persist_root_state', g.buf('{"v":3}'), 0n, 0n);
    const third = new CrdtStore(g.ex.storage).root()!;
    assert.ok(third.updated > second.updated, 'the clock moved past the document it saw');
    assert.equal(g.call('read_root_state', R), 1);
    assert.equal(text(g.reg(R)), '{"v":3}');
  });

  test('limits and out-of-bounds descriptors trap', () => {
    const g = new GuestRun(new MemoryState(), { limits: { maxStorageValueSize: 3 } });
    g.traps('ValueLengthOverflow', 'persist_root_state', g.buf('1234'), 0n, 0n);
    g.traps('InvalidMemoryAccess', 'persist_root_state', g.outOfBounds(), 0n, 0n);
  });
});

describe('flush_delta', () => {
  test('0 with nothing pending; 1 and the artifact after changes; later flushes append', () => {
    const g = new GuestRun(new MemoryState());
    assert.equal(g.call('flush_delta'), 0);
    assert.equal(g.ex.effects().artifact, null);
    g.call('js_crdt_set_new', R);
    const set = g.buf(g.reg(R)!);
    g.call('js_crdt_set_insert', set, g.buf('a'));
    g.call('js_crdt_set_insert', set, g.buf('a')); // no change, no action
    assert.equal(g.call('flush_delta'), 1);
    const first = decodeArtifact(g.ex.artifact!);
    assert.deepEqual(first.map((a) => a.type), ['create', 'member']);
    assert.equal(g.call('flush_delta'), 0, 'nothing new');
    assert.equal(decodeArtifact(g.ex.artifact!).length, 2, 'the artifact stays');
    g.call('js_crdt_set_insert', set, g.buf('b'));
    assert.equal(g.call('flush_delta'), 1);
    assert.deepEqual(decodeArtifact(g.ex.effects().artifact!).map((a) => a.type), ['create', 'member', 'member']);
  });

  test('actions on one cell in one call are joined into one', () => {
    const g = new GuestRun(new MemoryState());
    g.call('js_crdt_counter_new', R);
    const c = g.buf(g.reg(R)!);
    for (let i = 0; i < 5; i++) g.call('js_crdt_counter_increment', c);
    g.call('flush_delta');
    const actions = decodeArtifact(g.ex.artifact!);
    assert.equal(actions.length, 2);
    assert.deepEqual(actions[1], { type: 'counter', id: g.reg(R), executor: id32('alice'), share: 5n });
  });

  test('pending actions do not leak into the next call', () => {
    const state = new MemoryState();
    const { g } = withChange(state);
    g.commit(); // a call that changed a collection but never flushed
    const next = new GuestRun(state);
    assert.equal(next.call('flush_delta'), 0);
  });
});

describe('commit', () => {
  test('records the root hash and the artifact once', () => {
    const g = new GuestRun(new MemoryState());
    const root = id32('root');
    g.call('commit', g.buf(root), g.buf('opaque artifact'));
    assert.deepEqual(g.ex.effects().rootHash, root);
    assert.equal(text(g.ex.effects().artifact!), 'opaque artifact');
    g.traps('CommitTwice', 'commit', g.buf(root), g.buf('x'));
    g.traps('CommitTwice', 'flush_delta');
  });

  test('after an emitting flush it traps; after an empty flush it is allowed', () => {
    const { g } = withChange();
    g.call('flush_delta');
    g.traps('CommitTwice', 'commit', g.buf(id32('root')), g.buf(''));
    const h = new GuestRun(new MemoryState());
    assert.equal(h.call('flush_delta'), 0);
    h.call('commit', h.buf(id32('root')), h.buf(''));
    assert.equal(h.ex.effects().artifact?.length, 0);
  });

  test('a root hash that is not 32 bytes and out-of-bounds descriptors trap', () => {
    const g = new GuestRun(new MemoryState());
    g.traps('InvalidMemoryAccess', 'commit', g.buf(new Uint8Array(31)), g.buf(''));
    g.traps('InvalidMemoryAccess', 'commit', g.outOfBounds(), g.buf(''));
    g.traps('InvalidMemoryAccess', 'commit', g.buf(id32('root')), g.outOfBounds());
    g.call('commit', g.buf(id32('root')), g.buf('')); // the failed attempts did not count
  });
});

describe('apply_storage_delta', () => {
  test("merges another node's artifact; its actions are not this call's", () => {
    const { g: a, map } = withChange(new MemoryState(), { executorId: id32('alice') });
    a.call('flush_delta');
    const b = new GuestRun(new MemoryState(), { executorId: id32('bob') });
    b.call('apply_storage_delta', b.buf(a.ex.artifact!));
    assert.equal(b.call('js_crdt_map_get', b.buf(map), b.buf('k'), R), 1);
    assert.equal(text(b.reg(R)), 'v');
    assert.equal(b.call('flush_delta'), 0, 'nothing pending');
    b.commit();
    const again = new GuestRun(b.state, { executorId: id32('bob') });
    again.call('apply_storage_delta', again.buf(a.ex.artifact!));
    assert.deepEqual(again.ex.storage.delta(), [], 'applying twice changes nothing');
  });

  test('a malformed artifact traps with DeserializationError; out-of-bounds descriptors trap', () => {
    const g = new GuestRun(new MemoryState());
    const e = g.traps('DeserializationError', 'apply_storage_delta', g.buf(Uint8Array.of(2, 0, 0, 0, 0)));
    assert.match(e.detail, /unsupported artifact version 2/);
    g.traps('DeserializationError', 'apply_storage_delta', g.buf(''));
    g.traps('InvalidMemoryAccess', 'apply_storage_delta', g.outOfBounds());
  });

  test('an artifact that uses an id as another kind traps', () => {
    const { g: a, map } = withChange();
    a.call('flush_delta');
    const b = new GuestRun(new MemoryState());
    b.ex.storage.write(metaKey(map), Uint8Array.of(3)); // the same id is a set here
    b.traps('DeserializationError', 'apply_storage_delta', b.buf(a.ex.artifact!));
  });
});

describe('records and effects', () => {
  test('a collection record overwritten through raw storage traps with DeserializationError', () => {
    const g = new GuestRun(new MemoryState());
    g.call('js_crdt_map_new', R);
    const map = g.reg(R)!;
    g.ex.storage.write(metaKey(map), Uint8Array.of(99));
    g.traps('DeserializationError', 'js_crdt_map_get', g.buf(map), g.buf('k'), R);
  });

  test('artifact and root_hash travel in the effects, present only when set', () => {
    const e = { ...emptyEffects(), gasUsed: 1n, artifact: Uint8Array.of(1, 0, 0, 0, 0), rootHash: id32('r') };
    assert.deepEqual(decodeEffects(encodeEffects(e)), e);
    const none = emptyEffects();
    assert.deepEqual(decodeEffects(encodeEffects(none)), none);
    const keys = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
    assert.ok(!keys(encodeEffects(none)).includes('artifact'));
    const bad = new Map<string, CalldataValue>([
      ['gas_used', 0n], ['logs', []], ['events', []], ['xcalls', []], ['writes', []], ['root_hash', new Uint8Array(31)],
    ]);
    assert.throws(() => decodeEffects(encodeCalldata(bad)), (err) => isHostlinkError(err, 'protocol') && /root_hash/.test(err.message));
    bad.delete('root_hash');
    bad.set('artifact', 'text');
    assert.throws(() => decodeEffects(encodeCalldata(bad)), (err) => isHostlinkError(err, 'protocol') && /artifact/.test(err.message));
  });

  test('a call replays to the same writes, artifact and registers', () => {
    const run = (): [string, string, string] => {
      const { g } = withChange(new MemoryState(), { datetime: '2025-01-02T03:04:05.123456789Z' });
      g.call('js_crdt_lww_new', R);
      g.call('js_crdt_lww_set', g.buf(g.reg(R)!), g.buf('x'), 1);
      g.call('js_crdt_lww_timestamp', g.buf(g.reg(R)!), 9n);
      g.call('flush_delta');
      const writes = g.ex.storage.delta().map(([k, v]) => Buffer.from(k).toString('hex') + '=' + Buffer.from(v ?? []).toString('hex'));
      return [writes.join(','), Buffer.from(g.ex.artifact!).toString('hex'), Buffer.from(g.reg(9n)!).toString('hex')];
    };
    assert.deepEqual(run(), run());
  });
});
