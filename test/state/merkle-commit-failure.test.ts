/**
 * A real failed LMDB commit (the disk is full) under the tree's write-back: every write of the failed batch is
 * lost, including updates whose own callbacks returned (the cache saw their root values), checkpoints and the
 * write-back of a context evicted inside the batch. Afterwards every context's stored root, pages and log must
 * still rebuild to the definition's root, and later writes (across checkpoints and evictions) must stay right.
 * Runs on a small tmpfs (needs mount permission, so usually root; skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import { applyDelta, setStateLogLimit, type StateChange } from '../../src/host/state/merkle.js';
import { setTreeCacheLimit } from '../../src/host/state/merkle-pages.js';
import { applyToModel, checkStoredTree, ctxId, enc, Rng, tempDir, type Model } from './stores.js';

const base = tempDir();
const mnt = join(base.dir, 'mnt');
mkdirSync(mnt);
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], { encoding: 'utf8' });
const skip = mounted.status === 0 ? false : `cannot mount a tmpfs here (${(mounted.stderr || mounted.error?.message || 'mount failed').trim()})`;

test('a failed commit (disk full) loses the whole batch, checkpoints and eviction write-backs included, and the trees stay right', { skip }, async () => {
  const filler = join(mnt, 'filler');
  const store = await openLmdbStore(join(mnt, 'data'));
  // A small cache (contexts evict each other, writing their pages back in the evicting update) and a small log
  // (many updates are checkpoints).
  const cap = setTreeCacheLimit(40_000);
  const limit = setStateLogLimit(4);
  const rng = new Rng(0xd15c);
  const models = new Map<number, Model>();
  const contexts = [1, 2, 3, 4, 5, 6];
  const change = (): StateChange => [enc(`k${rng.int(60)}`), rng.int(5) === 0 ? null : rng.bytes(1 + rng.int(24))];
  const checkAll = (where: string): void => {
    for (const c of contexts) checkStoredTree(store, ctxId(c), models.get(c)!, `${where}, context ${c}`);
  };
  let lostAlongside = 0;
  try {
    for (const c of contexts) {
      const initial: StateChange[] = [];
      for (let i = 0; i < 40; i++) initial.push([enc(`k${i}`), rng.bytes(16)]);
      await store.write((txn) => applyDelta(txn, ctxId(c), initial));
      models.set(c, new Map());
      applyToModel(models.get(c)!, initial);
    }
    for (let round = 0; round < 12; round++) {
      // Leave less room than the next commit needs.
      const s = statfsSync(mnt);
      writeFileSync(filler, Buffer.alloc(Math.max(0, s.bavail * s.bsize - 64 * 1024)));
      // One batch (issued in one turn): one-key and batch updates whose callbacks return, then a large value
      // that cannot be written, then more updates. The commit fails: none of it may remain.
      const writes: { c: number; changes: StateChange[] }[] = [];
      for (let i = 0; i < 6; i++) writes.push({ c: rng.pick(contexts), changes: rng.int(3) === 0 ? [change(), change(), change()] : [change()] });
      const update = (w: { c: number; changes: StateChange[] }): Promise<unknown> => store.write((txn) => applyDelta(txn, ctxId(w.c), w.changes));
      const before = writes.slice(0, 3).map(update);
      const big = store.write((txn) => applyDelta(txn, ctxId(rng.pick(contexts)), [[enc(`big-${round}`), new Uint8Array(2 * 1024 * 1024).fill(round + 1)]]));
      const after = writes.slice(3).map(update);
      const settled = await Promise.allSettled([...before, ...after]);
      const bigError = await big.then(
        () => 'committed',
        (e: unknown) => String(e),
      );
      assert.match(bigError, /LMDB commit failed/, `round ${round}: the large value did not fail to commit`);
      settled.forEach((r, i) => {
        if (r.status === 'fulfilled') applyToModel(models.get(writes[i]!.c)!, writes[i]!.changes);
        else {
          assert.match(String(r.reason), /LMDB commit failed/);
          lostAlongside++;
        }
      });
      checkAll(`round ${round}: the failed commit`);
      rmSync(filler);
      // Space is back: later updates build on the stored trees, not on what the cache saw in the lost batch.
      for (let i = 0; i < 10; i++) {
        const c = rng.pick(contexts);
        const changes = rng.int(4) === 0 ? [change(), change()] : [change()];
        await store.write((txn) => applyDelta(txn, ctxId(c), changes));
        applyToModel(models.get(c)!, changes);
      }
      checkAll(`round ${round}: the writes after it`);
    }
  } finally {
    setStateLogLimit(limit);
    setTreeCacheLimit(cap);
    await store.close();
    rmSync(filler, { force: true });
    spawnSync('umount', [mnt]);
    base.remove();
  }
  // Updates whose own callbacks returned were lost with the batch (their cached values never became stored).
  assert.ok(lostAlongside >= 12, `only ${lostAlongside} updates were lost alongside the failed commits`);
});
