/** Kill -9 a process in the middle of LMDB commits: the reopened store is consistent and has every acknowledged write. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import { computeRootFromScratch, listState, stateRoot } from '../../src/host/state/merkle.js';
import { COUNTER_KEY } from './crash-writer.js';
import { ctxId, hex, tempDir } from './stores.js';

test('after SIGKILL mid-commit, the LMDB store reopens consistent with all acknowledged writes', async () => {
  const tmp = tempDir();
  try {
    const writer = spawn(process.execPath, [fileURLToPath(new URL('./crash-writer.js', import.meta.url)), '--crash-writer', tmp.dir], {
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
        // Kill after a fair number of commits, at an arbitrary point of the next one.
        if (acknowledged >= 40 && writer.exitCode === null && !writer.killed) {
          writer.kill('SIGKILL');
          resolve();
        }
      });
      writer.on('exit', () => resolve());
    });
    await new Promise((resolve) => (writer.exitCode !== null || writer.signalCode !== null ? resolve(null) : writer.on('exit', resolve)));
    assert.equal(writer.signalCode, 'SIGKILL', 'the writer was killed, not finished');
    assert.ok(acknowledged >= 40);

    const store = await openLmdbStore(tmp.dir);
    try {
      const counter = store.get('meta', COUNTER_KEY);
      assert.ok(counter !== undefined);
      const committed = new DataView(counter.buffer, counter.byteOffset).getUint32(0);
      assert.ok(committed >= acknowledged, `store has write ${committed}, writer saw ${acknowledged} resolve`);
      for (const c of [1, 2, 3]) {
        assert.equal(hex(stateRoot(store, ctxId(c))), hex(computeRootFromScratch(listState(store, ctxId(c)))), `context ${c}`);
      }
    } finally {
      await store.close();
    }
  } finally {
    tmp.remove();
  }
});
