/**
 * Kill -9 a process in the middle of LMDB commits: the reopened store is consistent, has every acknowledged
 * write, and its trees (pages as of each context's last checkpoint, plus the logged keys) rebuild to the stored
 * roots and keep updating correctly.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import { applyDelta, computeRootFromScratch, listState, stateRoot, verifyStateTree, type StateChange } from '../../src/host/state/merkle.js';
import { setTreeCacheLimit } from '../../src/host/state/merkle-pages.js';
import { COUNTER_KEY } from './crash-writer.js';
import { ctxId, enc, hex, Rng, tempDir } from './stores.js';

/** Runs the writer until it has acknowledged `killAfter` rounds, then SIGKILLs it at once; returns the count. */
async function writeUntilKilled(dir: string, seed: number, killAfter: number): Promise<number> {
  const writer = spawn(process.execPath, [fileURLToPath(new URL('./crash-writer.js', import.meta.url)), '--crash-writer', dir, String(seed)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let acknowledged = 0;
  let out = '';
  await new Promise<void>((resolve) => {
    writer.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) acknowledged = Number(line);
      // Kill at an arbitrary point of the rounds after it (commits are in flight all the time).
      if (acknowledged >= killAfter && writer.exitCode === null && !writer.killed) {
        writer.kill('SIGKILL');
        resolve();
      }
    });
    writer.on('exit', () => resolve());
  });
  await new Promise((resolve) => (writer.exitCode !== null || writer.signalCode !== null ? resolve(null) : writer.on('exit', resolve)));
  assert.equal(writer.signalCode, 'SIGKILL', 'the writer was killed, not finished');
  return acknowledged;
}

test('after SIGKILL mid-commit, the LMDB store reopens consistent with all acknowledged writes, and its trees rebuild and keep updating', async () => {
  const rng = new Rng(0xc4a5);
  let logged = 0;
  for (let run = 0; run < 3; run++) {
    const tmp = tempDir();
    try {
      const killAfter = 20 + rng.int(120);
      const acknowledged = await writeUntilKilled(tmp.dir, 1000 + run, killAfter);
      assert.ok(acknowledged >= killAfter);

      // A fresh cache, as in the restarted process: the first update of each context rebuilds its tree.
      setTreeCacheLimit(setTreeCacheLimit(0));
      const store = await openLmdbStore(tmp.dir);
      try {
        const counter = store.get('meta', COUNTER_KEY);
        assert.ok(counter !== undefined);
        const committed = new DataView(counter.buffer, counter.byteOffset).getUint32(0);
        assert.ok(committed >= acknowledged, `store has write ${committed}, writer saw ${acknowledged} resolve`);
        for (const c of [1, 2, 3]) {
          const ctx = ctxId(c);
          assert.equal(hex(stateRoot(store, ctx)), hex(computeRootFromScratch(listState(store, ctx))), `run ${run}, context ${c}`);
          logged += verifyStateTree(store, ctx).logged;
          // Further writes build on the rebuilt tree: the root stays the definition's.
          for (let i = 0; i < 5; i++) {
            const change: StateChange = [enc(`k${rng.int(3000)}`), rng.int(3) === 0 ? null : rng.bytes(8)];
            const root = await store.write((txn) => applyDelta(txn, ctx, [change]));
            assert.equal(hex(root), hex(computeRootFromScratch(listState(store, ctx))), `run ${run}, context ${c}, write ${i} after the crash`);
          }
          verifyStateTree(store, ctx);
        }
      } finally {
        await store.close();
      }
    } finally {
      tmp.remove();
    }
  }
  // The crashes left keys logged (pages not yet written back): the rebuild was exercised, not only read.
  assert.ok(logged > 0, 'no context had logged keys when its writer was killed');
});
