/**
 * Write-back of the tree's pages: between checkpoints a context's stored root value logs the changed keys and
 * the stored pages stay as of the last checkpoint. The root must equal the definition's after every delta,
 * across checkpoints and across rebuilds without the cache; a damaged log or page is reported, not used.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isHostlinkError } from '../../src/errors.js';
import { LAYOUT_KEY, LAYOUT_VERSION } from '../../src/host/state/kv.js';
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import {
  applyDelta,
  checkpointState,
  computeRootFromScratch,
  setStateLogLimit,
  stateRoot,
  verifyStateTree,
  type StateChange,
} from '../../src/host/state/merkle.js';
import { setTreeCacheLimit, treeCacheUsage } from '../../src/host/state/merkle-pages.js';
import { applyToModel, checkStoredTree, ctxId, enc, hex, Rng, storeTest, tempDir, type Model } from './stores.js';

function randomChanges(rng: Rng, keySpace: number, count: number): StateChange[] {
  const changes: StateChange[] = [];
  for (let i = 0; i < count; i++) changes.push([enc(`key-${rng.int(keySpace)}`), rng.int(4) === 0 ? null : rng.bytes(1 + rng.int(40))]);
  return changes;
}

/** Runs `body` with the log limit set to `keys`, restoring the previous limit after. */
async function withLogLimit<T>(keys: number, body: () => Promise<T>): Promise<T> {
  const previous = setStateLogLimit(keys);
  try {
    return await body();
  } finally {
    setStateLogLimit(previous);
  }
}

/** Drops every cached page (setting the cap resets the cache): the next update of each context rebuilds. */
function dropCache(): void {
  setTreeCacheLimit(setTreeCacheLimit(0));
}

for (const limit of [1, 5, 48]) {
  storeTest(`write-back (log of ${limit}): random deltas with deletes match the definition across checkpoints and rebuilds`, async (store) =>
    withLogLimit(limit, async () => {
      const rng = new Rng(0x10c + limit);
      const ctxs = [ctxId(41), ctxId(42)];
      const models: Model[] = [new Map(), new Map()];
      let logged = 0;
      let checkpoints = 0;
      let rebuilds = 0;
      for (let step = 0; step < 260; step++) {
        const c = rng.int(2);
        const size = rng.int(6) === 0 ? 2 + rng.int(8) : 1;
        const changes = randomChanges(rng, step < 60 ? 60 : 150, size);
        if (rng.int(15) === 0) {
          dropCache(); // as after a restart or an eviction: the next update rebuilds from the store
          rebuilds++;
        }
        const root = await store.write((txn) => applyDelta(txn, ctxs[c]!, changes));
        applyToModel(models[c]!, changes);
        assert.equal(hex(root), hex(computeRootFromScratch(models[c]!.values())), `step ${step}`);
        const now = checkStoredTree(store, ctxs[c]!, models[c]!, `step ${step}`);
        if (now > 0) logged++;
        else checkpoints++;
        assert.ok(now <= limit, `step ${step}: ${now} keys logged, limit ${limit}`);
      }
      assert.ok(logged > 20 && checkpoints > 5 && rebuilds > 5, `logged ${logged}, checkpoints ${checkpoints}, rebuilds ${rebuilds}`);
      // An explicit checkpoint: nothing logged, the pages exactly the canonical tree (checkStoredTree counts them).
      for (let c = 0; c < 2; c++) {
        await store.write((txn) => checkpointState(txn, ctxs[c]!));
        assert.equal(checkStoredTree(store, ctxs[c]!, models[c]!, 'the checkpoint'), 0);
      }
      // Down to no entries: nothing is stored for the context, whatever was logged.
      for (let c = 0; c < 2; c++) {
        await store.write((txn) => applyDelta(txn, ctxs[c]!, [[enc('key-0'), enc('x')]]));
        applyToModel(models[c]!, [[enc('key-0'), enc('x')]]);
        const all: StateChange[] = [...models[c]!.values()].map(([key]) => [key, null]);
        await store.write((txn) => applyDelta(txn, ctxs[c]!, all));
        assert.deepEqual([...store.range('merkle', ctxs[c]!)], []);
      }
    }),
  );
}

storeTest('write-back: a rebuild checks the stored pages against the checkpoint root and the log against the stored root', async (store) =>
  withLogLimit(48, async () => {
    const ctx = ctxId(43);
    const model: Model = new Map();
    const rng = new Rng(43);
    const initial = randomChanges(rng, 300, 200);
    await store.write((txn) => applyDelta(txn, ctx, initial)); // a batch over the limit: a checkpoint
    applyToModel(model, initial);
    for (let i = 0; i < 6; i++) {
      const changes: StateChange[] = [[enc(`new-${i}`), enc(`v${i}`)]];
      await store.write((txn) => applyDelta(txn, ctx, changes));
      applyToModel(model, changes);
    }
    assert.equal(checkStoredTree(store, ctx, model, 'six logged inserts'), 6);
    const stored = store.get('merkle', ctx)!;
    const damaged = (what: RegExp) => (e: unknown) => isHostlinkError(e, 'internal') && what.test((e as Error).message) && (e as Error).message.includes(hex(ctx));

    // The log loses a key: the rebuilt root differs from the stored one.
    await store.write((txn) => txn.put('merkle', ctx, stored.subarray(0, stored.length - 32)));
    dropCache();
    assert.throws(() => verifyStateTree(store, ctx), damaged(/rebuilt from its checkpoint and 5 logged key/));
    await assert.rejects(store.write((txn) => applyDelta(txn, ctx, [[enc('more'), enc('1')]])), damaged(/rebuilt from its checkpoint/));

    // A stored page differs from the checkpoint's tree.
    await store.write((txn) => txn.put('merkle', ctx, stored));
    const [pageKey, page] = [...store.range('merkle', ctx)].find(([key]) => key.length === 34)!; // the top page
    const bad = Uint8Array.from(page);
    bad[2 + 40]! ^= 1; // in its first record, the root's
    await store.write((txn) => txn.put('merkle', pageKey, bad));
    dropCache();
    assert.throws(() => verifyStateTree(store, ctx), damaged(/is not the tree of its checkpoint root/));
    await assert.rejects(store.write((txn) => applyDelta(txn, ctx, [[enc('more'), enc('1')]])), (e) => isHostlinkError(e, 'internal'));

    // Put back, it rebuilds and updates again.
    await store.write((txn) => txn.put('merkle', pageKey, page));
    dropCache();
    await store.write((txn) => applyDelta(txn, ctx, [[enc('more'), enc('1')]]));
    applyToModel(model, [[enc('more'), enc('1')]]);
    assert.equal(checkStoredTree(store, ctx, model, 'the repair'), 7);
  }),
);

test('layout: a layout-1 store is restamped and read as is; a store of an unknown layout is refused with what to do', async () => {
  const tmp = tempDir();
  try {
    const previous = setStateLogLimit(0); // what a layout-1 Hostlink stored: bare roots, pages up to date
    let store = await openLmdbStore(tmp.dir);
    const ctx = ctxId(44);
    const model: Model = new Map();
    const changes = randomChanges(new Rng(44), 100, 80);
    try {
      await store.write((txn) => applyDelta(txn, ctx, changes));
    } finally {
      setStateLogLimit(previous);
    }
    applyToModel(model, changes);
    await store.write((txn) => txn.put('meta', LAYOUT_KEY, Uint8Array.of(1)));
    await store.close();

    store = await openLmdbStore(tmp.dir);
    assert.deepEqual(store.get('meta', LAYOUT_KEY), Uint8Array.of(LAYOUT_VERSION));
    assert.equal(checkStoredTree(store, ctx, model, 'the upgrade'), 0);
    const more: StateChange[] = [[enc('after-upgrade'), enc('1')]];
    await store.write((txn) => applyDelta(txn, ctx, more));
    applyToModel(model, more);
    checkStoredTree(store, ctx, model, 'a delta after the upgrade');
    await store.write((txn) => txn.put('meta', LAYOUT_KEY, Uint8Array.of(LAYOUT_VERSION + 1)));
    await store.close();

    await assert.rejects(openLmdbStore(tmp.dir), (e) => isHostlinkError(e, 'store') && /has layout 3, this Hostlink reads layout 2 .*newer Hostlink/.test((e as Error).message));
  } finally {
    tmp.remove();
  }
});

test('write-back: a context alone over the cache cap checkpoints when it outgrows it; with the cache off every commit does', async () => {
  const { dir, remove } = tempDir();
  const store = await openLmdbStore(dir, { durability: 'nosync' });
  const previous = setTreeCacheLimit(20_000);
  try {
    const rng = new Rng(45);
    const ctx = ctxId(45);
    const model: Model = new Map();
    const load = randomChanges(rng, 3000, 2000);
    await store.write((txn) => applyDelta(txn, ctx, load));
    applyToModel(model, load);
    for (const cap of [20_000, 0]) {
      setTreeCacheLimit(cap);
      let checkpoints = 0;
      for (let i = 0; i < 12; i++) {
        const changes = randomChanges(rng, 3000, 1);
        await store.write((txn) => applyDelta(txn, ctx, changes));
        applyToModel(model, changes);
        const logged = checkStoredTree(store, ctx, model, `update ${i} with a cap of ${cap}`);
        if (logged === 0) checkpoints++;
        assert.ok(treeCacheUsage().bytes <= cap);
        // The cache off: nothing could hold the changed pages, so every commit writes them.
        if (cap === 0) assert.equal(logged, 0);
      }
      // Over the cap, a checkpoint comes once the pages loaded along the updated paths outgrow it (far below
      // the log limit), so the pages of a context the cache cannot hold are not kept changed for long.
      assert.ok(checkpoints >= 2, `${checkpoints} checkpoints in 12 updates with a cap of ${cap}`);
    }
  } finally {
    setTreeCacheLimit(previous);
    await store.close();
    remove();
  }
});

test('the stored root value keeps stateRoot one read: the root, then the log', async () => {
  const { dir, remove } = tempDir();
  const store = await openLmdbStore(dir, { durability: 'nosync' });
  try {
    const ctx = ctxId(46);
    await store.write((txn) => applyDelta(txn, ctx, [[enc('a'), enc('1')], [enc('b'), enc('2')]]));
    await store.write((txn) => applyDelta(txn, ctx, [[enc('c'), enc('3')]]));
    const stored = store.get('merkle', ctx)!;
    assert.equal(stored.length, 32 + 32 + 3 * 32); // root, checkpoint root (empty tree), three logged keys
    assert.equal(hex(stored.subarray(0, 32)), hex(stateRoot(store, ctx)));
    assert.equal(hex(stored.subarray(32, 64)), '00'.repeat(32));
  } finally {
    await store.close();
    remove();
  }
});

test('write-back: a context evicted from the cache is checkpointed in the evicting transaction, unless its cached value is stale', async () => {
  const { dir, remove } = tempDir();
  const store = await openLmdbStore(dir, { durability: 'nosync' });
  const previous = setTreeCacheLimit(60_000);
  try {
    const rng = new Rng(47);
    const models = new Map<number, Model>();
    let rolledBack = 0;
    const staleAtEnd = new Set<number>(); // contexts whose last write was rolled back
    for (let round = 0; round < 300; round++) {
      const c = rng.int(30);
      const model = models.get(c) ?? new Map();
      models.set(c, model);
      const changes = randomChanges(rng, 40, 1);
      if (rng.int(10) === 0) {
        // Rolled back after the update: the cache holds a value the store never had; evicting it writes nothing.
        await assert.rejects(store.write((txn) => (applyDelta(txn, ctxId(c), changes), txn.put('state', new Uint8Array(0), new Uint8Array(0)))));
        rolledBack++;
        staleAtEnd.add(c);
        continue;
      }
      await store.write((txn) => applyDelta(txn, ctxId(c), changes));
      applyToModel(model, changes);
      staleAtEnd.delete(c);
    }
    assert.ok(rolledBack > 10);
    let withLog = 0;
    for (const [c, model] of models) if (checkStoredTree(store, ctxId(c), model, `context ${c}`) > 0) withLog++;
    // Only contexts still cached may have logged keys: the evicted ones were checkpointed (or were stale).
    const cached = treeCacheUsage().contexts;
    assert.ok(cached < 30, `${cached} contexts cached: none was evicted`);
    assert.ok(withLog <= cached + staleAtEnd.size, `${withLog} contexts have logged keys, ${cached} are cached, ${staleAtEnd.size} stale`);
  } finally {
    setTreeCacheLimit(previous);
    await store.close();
    remove();
  }
});

storeTest('write-back: an explicit checkpoint rolled back (alone, or among other writes of one commit) leaves the log in force', async (store) =>
  withLogLimit(48, async () => {
    const ctx = ctxId(48);
    const model: Model = new Map();
    const rng = new Rng(48);
    const initial = randomChanges(rng, 200, 120);
    await store.write((txn) => applyDelta(txn, ctx, initial));
    applyToModel(model, initial);
    for (let round = 0; round < 12; round++) {
      const changes = randomChanges(rng, 200, 1 + rng.int(3));
      await store.write((txn) => applyDelta(txn, ctx, changes));
      applyToModel(model, changes);
      const logged = checkStoredTree(store, ctx, model, `round ${round}: logged`);
      // The checkpoint writes the pages and the bare root, and the cache takes that value; the rollback undoes
      // both in the store, so the cache's value is stale and the next update rebuilds from the log.
      const after = randomChanges(rng, 200, 1);
      const results = await Promise.allSettled([
        store.write((txn) => {
          checkpointState(txn, ctx);
          if (round % 2 === 0) applyDelta(txn, ctx, randomChanges(rng, 200, 1));
          throw new Error('rolled back');
        }),
        store.write((txn) => applyDelta(txn, ctx, after)),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['rejected', 'fulfilled'],
      );
      applyToModel(model, after);
      const now = checkStoredTree(store, ctx, model, `round ${round}: after the rolled-back checkpoint`);
      assert.ok(now === 0 || now >= logged, `round ${round}: ${logged} keys were logged, ${now} are now`);
    }
  }),
);

test('write-back: an eviction in another store holding the same context id writes there only what holds there', async () => {
  const dirs = [tempDir(), tempDir()];
  const stores = [await openLmdbStore(dirs[0]!.dir, { durability: 'nosync' }), await openLmdbStore(dirs[1]!.dir, { durability: 'nosync' })];
  const previous = setTreeCacheLimit(30_000);
  try {
    const rng = new Rng(49);
    const models = stores.map(() => new Map<number, Model>());
    // Both stores start with the same history, so their root values (and cached values) are equal at first;
    // then they part. Contexts evict each other across the two stores' transactions.
    for (let round = 0; round < 240; round++) {
      const c = rng.int(8);
      const changes = randomChanges(rng, 30, 1);
      const targets = round < 60 ? [0, 1] : [rng.int(2)];
      for (const s of targets) {
        await stores[s]!.write((txn) => applyDelta(txn, ctxId(c), changes));
        const model = models[s]!.get(c) ?? new Map();
        models[s]!.set(c, model);
        applyToModel(model, changes);
      }
      if (round % 20 === 19) {
        for (let s = 0; s < 2; s++) for (const [c, model] of models[s]!) checkStoredTree(stores[s]!, ctxId(c), model, `round ${round}, store ${s}, context ${c}`);
      }
    }
  } finally {
    setTreeCacheLimit(previous);
    for (const s of stores) await s.close();
    for (const d of dirs) d.remove();
  }
});

test('write-back: a store closed and opened again in the same process keeps its logged contexts right', async () => {
  const { dir, remove } = tempDir();
  try {
    const rng = new Rng(50);
    const model: Model = new Map();
    const ctx = ctxId(50);
    for (let open = 0; open < 4; open++) {
      const store = await openLmdbStore(dir, { durability: 'nosync' });
      try {
        if (open > 0) checkStoredTree(store, ctx, model, `reopened ${open}`);
        for (let i = 0; i < 30; i++) {
          const changes = randomChanges(rng, 80, rng.int(5) === 0 ? 3 : 1);
          await store.write((txn) => applyDelta(txn, ctx, changes));
          applyToModel(model, changes);
        }
        assert.ok(checkStoredTree(store, ctx, model, `open ${open}`) >= 0);
      } finally {
        await store.close();
      }
      // The cache outlives the store: on the next open its value equals the stored one and it is used as is.
      if (open === 2) dropCache();
    }
  } finally {
    remove();
  }
});
