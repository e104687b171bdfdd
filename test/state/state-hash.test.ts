/**
 * The state tree's two SHA-256 paths, the native addon (native/hostlink_state.c) and JavaScript (the fallback,
 * forced with HOSTLINK_STATE_HASH=js): the same digests from each primitive, and the same roots and pages for
 * the same trees built through each. Skipped, with the reason, where the addon is not built.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { KvStore } from '../../src/host/state/kv.js';
import { createMemoryStore } from '../../src/host/state/memory-store.js';
import { applyDelta, computeRootFromScratch, type StateChange } from '../../src/host/state/merkle.js';
import { hashChain, leafRecordInto, sha256Into, stateHashImplementation, useStateHash } from '../../src/host/state/sha256-record.js';
import { applyToModel, ctxId, enc, hex, Rng, type Model } from './stores.js';

const reference = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();
const initial = stateHashImplementation().impl;

/** Runs `fn` with each implementation in turn and returns both results; restores the one in use before. */
function both<T>(fn: () => T): { native: T; js: T } {
  try {
    useStateHash('native');
    const native = fn();
    useStateHash('js');
    return { native, js: fn() };
  } finally {
    useStateHash(initial);
  }
}

const skipReason = (): string | undefined => {
  const ok = useStateHash('native');
  const reason = ok ? undefined : `the state hash addon is not built: ${stateHashImplementation().reason ?? ''}`;
  useStateHash(initial);
  return reason;
};

test('native and JavaScript primitives give the same SHA-256 digests, and refuse the same bad arguments', (t) => {
  const reason = skipReason();
  if (reason !== undefined) return t.skip(reason);
  const rng = new Rng(13);
  for (let i = 0; i < 300; i++) {
    const data = rng.bytes(rng.int(300));
    const r = both(() => {
      const out = new Uint8Array(40).fill(0xaa);
      sha256Into(data, out, 4);
      return hex(out);
    });
    assert.equal(r.native, r.js);
    assert.equal(r.js.slice(8, 72), reference(data).toString('hex'));

    const key = rng.bytes(1 + rng.int(100));
    const value = rng.bytes(rng.int(100));
    const leaf = both(() => {
      const rec = new Uint8Array(65).fill(0x55);
      leafRecordInto(key, value, rec);
      return hex(rec);
    });
    assert.equal(leaf.native, leaf.js);
    assert.equal(leaf.js, '00' + reference(key).toString('hex') + reference(value).toString('hex'));

    // A chain of 1..20 records with random contents and child slots: the hash of each goes into the next.
    const count = 1 + rng.int(20);
    const recs = rng.bytes(count * 65);
    const slots = new Uint8Array(count);
    for (let j = 1; j < count; j++) slots[j] = rng.int(2) === 0 ? 1 : 33;
    const chain = both(() => {
      const work = Uint8Array.from(recs);
      const out = new Uint8Array(32);
      hashChain(work, count, slots, out);
      return hex(work) + hex(out);
    });
    assert.equal(chain.native, chain.js);
    const expect = Uint8Array.from(recs);
    let h: Buffer = reference(expect.subarray(0, 65));
    for (let j = 1; j < count; j++) {
      expect.set(h, j * 65 + slots[j]!);
      h = reference(expect.subarray(j * 65, j * 65 + 65));
    }
    assert.equal(chain.js, hex(expect) + h.toString('hex'));
  }
  for (const impl of ['native', 'js'] as const) {
    try {
      useStateHash(impl);
      const recs = new Uint8Array(3 * 65);
      const out = new Uint8Array(32);
      assert.throws(() => hashChain(recs, 0, new Uint8Array(3), out), RangeError, impl);
      assert.throws(() => hashChain(recs, 4, new Uint8Array(4), out), RangeError, impl);
      assert.throws(() => hashChain(recs, 3, Uint8Array.of(0, 1, 2), out), RangeError, impl);
      assert.throws(() => hashChain(recs, 3, new Uint8Array(2), out), RangeError, impl);
      assert.throws(() => hashChain(recs, 1, new Uint8Array(1), new Uint8Array(31)), RangeError, impl);
      assert.throws(() => leafRecordInto(enc('k'), enc('v'), new Uint8Array(64)), RangeError, impl);
    } finally {
      useStateHash(initial);
    }
  }
});

test('trees built through the native and the JavaScript SHA-256 have the same roots and the same pages after every delta', async (t) => {
  const reason = skipReason();
  if (reason !== undefined) return t.skip(reason);
  const stores: Record<'native' | 'js', KvStore> = { native: createMemoryStore(), js: createMemoryStore() };
  // Two contexts (the page cache is per context id), so each store's update reads its own pages.
  const ctx = { native: ctxId(9), js: ctxId(10) };
  const model: Model = new Map();
  const rng = new Rng(2026);
  try {
    for (let step = 0; step < 400; step++) {
      // Mostly one-key deltas (the path hashed as one chain), some batches; inserts, rewrites and deletes.
      const size = step % 10 === 9 ? 1 + rng.int(30) : 1;
      const changes: StateChange[] = [];
      for (let i = 0; i < size; i++) changes.push([enc(`key-${rng.int(300)}`), rng.int(4) === 0 ? null : rng.bytes(1 + rng.int(40))]);
      applyToModel(model, changes);
      const roots: Record<string, string> = {};
      for (const impl of ['native', 'js'] as const) {
        try {
          assert.ok(useStateHash(impl));
          roots[impl] = hex(await stores[impl].write((txn) => applyDelta(txn, ctx[impl], changes)));
        } finally {
          useStateHash(initial);
        }
      }
      assert.equal(roots['native'], roots['js'], `step ${step}`);
      assert.equal(roots['js'], hex(computeRootFromScratch(model.values())), `step ${step}`);
    }
    const pages = (impl: 'native' | 'js'): string[] => [...stores[impl].range('merkle', ctx[impl])].map(([k, v]) => `${hex(k.subarray(32))}=${hex(v)}`);
    assert.deepEqual(pages('native'), pages('js'));
    assert.ok(model.size > 100);
  } finally {
    await stores.native.close();
    await stores.js.close();
  }
});
