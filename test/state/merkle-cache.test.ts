/**
 * The tree's page cache (kept across transactions) against the store: rolled-back and failed writes, several
 * writes sharing one LMDB commit, two stores holding the same context, and the byte cap. After every step the
 * stored root must equal the from-scratch root and the pages must hold exactly the canonical tree.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostlinkError } from '../../src/errors.js';
import type { KvReader, KvStore, KvTxn } from '../../src/host/state/kv.js';
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import { createMemoryStore } from '../../src/host/state/memory-store.js';
import { applyDelta, setStateLogLimit, type StateChange } from '../../src/host/state/merkle.js';
import { setTreeCacheLimit, treeCacheUsage } from '../../src/host/state/merkle-pages.js';
import { applyToModel, checkStoredTree, ctxId, enc, Rng, storeTest, tempDir, type Model } from './stores.js';



const popcount = (x: number): number => (x === 0 ? 0 : (x & 1) + popcount(x >>> 1));

/** The stored root is the definition's root, and the stored pages and log rebuild it (stores.ts). */
function check(reader: KvReader, ctx: Uint8Array, model: Model, where: string): void {
  checkStoredTree(reader, ctx, model, where);
}

function randomChanges(rng: Rng, keySpace: number, count: number): StateChange[] {
  const changes: StateChange[] = [];
  for (let i = 0; i < count; i++) {
    const id = rng.int(keySpace);
    changes.push([enc(`key-${id}`), rng.int(4) === 0 ? null : rng.bytes(1 + rng.int(40))]);
  }
  return changes;
}

const failure = (): Error => new Error('execution failed after applyDelta');

storeTest('page cache: writes that throw after applyDelta, alone or among others in one commit, leave it consistent', async (store) => {
  const ctx = ctxId(21);
  const model: Model = new Map();
  const rng = new Rng(21);
  const initial = randomChanges(rng, 400, 300);
  await store.write((txn) => applyDelta(txn, ctx, initial));
  applyToModel(model, initial);
  check(store, ctx, model, 'the initial load');

  const limit = setStateLogLimit(3);
  try {
  for (let round = 0; round < 40; round++) {
    // Pages written back in every commit, every few keys, or every 48 (checkpoints land on various rounds).
    setStateLogLimit(rng.pick([0, 3, 48]));
    // One-key deltas (their own code path) and batches, over keys that exist and keys that do not.
    const size = rng.int(3) === 0 ? 1 + rng.int(20) : 1;
    const kind = rng.int(3);
    if (kind === 0) {
      // Apply, then throw: the transaction is rolled back; the cache must not keep what it saw.
      const changes = randomChanges(rng, 500, size);
      await assert.rejects(
        store.write((txn) => {
          applyDelta(txn, ctx, changes);
          throw failure();
        }),
        /execution failed/,
      );
      check(store, ctx, model, `round ${round}: a rolled-back delta`);
    } else if (kind === 1) {
      // Three writes issued together (one LMDB commit): the middle one throws after its delta.
      const a = randomChanges(rng, 500, size);
      const b = randomChanges(rng, 500, size);
      const c = randomChanges(rng, 500, size);
      const results = await Promise.allSettled([
        store.write((txn) => applyDelta(txn, ctx, a)),
        store.write((txn) => {
          applyDelta(txn, ctx, b);
          throw failure();
        }),
        store.write((txn) => applyDelta(txn, ctx, c)),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      applyToModel(model, a);
      applyToModel(model, c);
      check(store, ctx, model, `round ${round}: three writes, the middle one rolled back`);
    } else {
      const changes = randomChanges(rng, 500, size);
      await store.write((txn) => applyDelta(txn, ctx, changes));
      applyToModel(model, changes);
      check(store, ctx, model, `round ${round}: a committed delta`);
    }
  }
  } finally {
    setStateLogLimit(limit);
  }
});

storeTest('page cache: a delta applied twice in one transaction, then the transaction throws', async (store) => {
  const ctx = ctxId(22);
  const model: Model = new Map();
  const first: StateChange[] = [[enc('a'), enc('1')], [enc('b'), enc('2')], [enc('c'), enc('3')]];
  await store.write((txn) => applyDelta(txn, ctx, first));
  applyToModel(model, first);
  await assert.rejects(
    store.write((txn) => {
      applyDelta(txn, ctx, [[enc('d'), enc('4')]]);
      applyDelta(txn, ctx, [[enc('a'), null]]);
      throw failure();
    }),
    /execution failed/,
  );
  check(store, ctx, model, 'the rolled-back transaction');
  // The next delta builds on the stored tree, not on what the rolled-back transaction left in memory.
  const next: StateChange[] = [[enc('e'), enc('5')]];
  await store.write((txn) => applyDelta(txn, ctx, next));
  applyToModel(model, next);
  check(store, ctx, model, 'the next delta');
});

test('page cache: two stores holding the same context id stay independent', async () => {
  const dirs = [tempDir(), tempDir()];
  const stores: KvStore[] = [await openLmdbStore(dirs[0]!.dir), createMemoryStore(), await openLmdbStore(dirs[1]!.dir)];
  try {
    const ctx = ctxId(23);
    const models: Model[] = stores.map(() => new Map());
    const rng = new Rng(23);
    for (let round = 0; round < 60; round++) {
      const i = rng.int(stores.length);
      const changes = randomChanges(rng, 100, rng.int(4) === 0 ? 5 : 1);
      await stores[i]!.write((txn) => applyDelta(txn, ctx, changes));
      applyToModel(models[i]!, changes);
      stores.forEach((s, j) => check(s, ctx, models[j]!, `round ${round} (store ${j})`));
    }
  } finally {
    for (const s of stores) await s.close();
    for (const d of dirs) d.remove();
  }
});

test('page cache: stays within its byte cap with many contexts and with one context larger than the cap', async () => {
  const { dir, remove } = tempDir();
  const store = await openLmdbStore(dir, { durability: 'nosync' });
  const previous = setTreeCacheLimit(150_000);
  try {
    const rng = new Rng(24);
    const models = new Map<number, Model>();
    for (let round = 0; round < 400; round++) {
      const c = rng.int(60);
      const ctx = ctxId(c);
      const model = models.get(c) ?? new Map();
      models.set(c, model);
      const changes = randomChanges(rng, 80, rng.int(5) === 0 ? 10 : 1);
      await store.write((txn) => applyDelta(txn, ctx, changes));
      applyToModel(model, changes);
      const usage = treeCacheUsage();
      assert.ok(usage.bytes <= usage.cap, `round ${round}: ${usage.bytes} bytes cached, cap ${usage.cap}`);
      if (round % 20 === 0) for (const [n, m] of models) check(store, ctxId(n), m, `round ${round} (context ${n})`);
    }
    assert.ok(treeCacheUsage().contexts < 60, 'contexts were evicted');

    // One context whose pages alone exceed the cap: it still updates correctly, and the cache stays bounded.
    setTreeCacheLimit(20_000);
    const big = ctxId(200);
    const model: Model = new Map();
    const load = randomChanges(rng, 3000, 2000);
    await store.write((txn) => applyDelta(txn, big, load));
    applyToModel(model, load);
    for (let i = 0; i < 50; i++) {
      const changes = randomChanges(rng, 3000, 1);
      await store.write((txn) => applyDelta(txn, big, changes));
      applyToModel(model, changes);
      assert.ok(treeCacheUsage().bytes <= 20_000);
    }
    check(store, big, model, 'updates of a context larger than the cap');

    // A cap of 0 turns the cache off; results are the same.
    setTreeCacheLimit(0);
    const changes = randomChanges(rng, 3000, 30);
    await store.write((txn) => applyDelta(txn, big, changes));
    applyToModel(model, changes);
    check(store, big, model, 'a delta with the cache off');
    assert.throws(() => setTreeCacheLimit(-1), /tree cache limit/);
  } finally {
    setTreeCacheLimit(previous);
    await store.close();
    remove();
  }
});

storeTest('page cache: a store put failing partway through writing the pages leaves store and cache consistent', async (store) => {
  // An update changes the cached pages in place before it stores the root (and, at a checkpoint, writes the
  // pages back); a put that throws there (a store error) must not leave those pages in use: the transaction
  // rolls back and the next update rebuilds from the stored pages and log.
  const ctx = ctxId(23);
  const model: Model = new Map();
  const rng = new Rng(23);
  const initial = randomChanges(rng, 400, 300);
  await store.write((txn) => applyDelta(txn, ctx, initial));
  applyToModel(model, initial);
  let failed = 0;
  let failedCheckpoints = 0;
  const limit = setStateLogLimit(2);
  try {
  for (let round = 0; round < 40; round++) {
    // A small log: many updates are checkpoints, whose page writes can fail too.
    setStateLogLimit(rng.pick([0, 2, 48]));
    const size = rng.int(3) === 0 ? 1 + rng.int(20) : 1;
    const failAt = 1 + rng.int(3); // the failing 'merkle' put: the root value, or the first or second page written
    const changes = randomChanges(rng, 500, size);
    let merklePuts = 0;
    const result = await store
      .write((txn) => {
        const failing: KvTxn = {
          get: (t, k) => txn.get(t, k),
          range: (t, p) => txn.range(t, p),
          del: (t, k) => txn.del(t, k),
          put(t, k, v) {
            if (t === 'merkle' && ++merklePuts === failAt) throw new HostlinkError('store', 'LMDB put failed: injected');
            txn.put(t, k, v);
          },
        };
        return applyDelta(failing, ctx, changes);
      })
      .then(
        () => 'committed',
        (e: unknown) => {
          assert.match(String(e), /injected/);
          return 'failed';
        },
      );
    if (result === 'committed') applyToModel(model, changes); // fewer page writes than failAt (or none)
    else failed++;
    if (result === 'failed' && failAt > 1) failedCheckpoints++; // a page write failed: that update was a checkpoint
    check(store, ctx, model, `round ${round}: put ${failAt} ${result}`);
    const next = randomChanges(rng, 500, 1);
    await store.write((txn) => applyDelta(txn, ctx, next));
    applyToModel(model, next);
    check(store, ctx, model, `round ${round}: the delta after it`);
  }
  } finally {
    setStateLogLimit(limit);
  }
  assert.ok(failed >= 10, `only ${failed} of 40 rounds failed a put`);
  assert.ok(failedCheckpoints >= 3, `only ${failedCheckpoints} rounds failed while writing back pages`);
});
