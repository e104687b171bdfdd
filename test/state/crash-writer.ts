/**
 * Child process for crash.test.ts: applies random deltas to an LMDB store as fast as it can and prints the
 * number of each write() that resolved, until it is killed. Does nothing unless started with --crash-writer.
 */
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import { applyDelta, type StateChange } from '../../src/host/state/merkle.js';
import { ctxId, enc, Rng } from './stores.js';

export const COUNTER_KEY = enc('crash-test-counter');

async function run(dir: string): Promise<void> {
  const store = await openLmdbStore(dir);
  const rng = new Rng(2024);
  for (let i = 1; ; i++) {
    const changes: StateChange[] = [];
    for (let j = 0; j < 20; j++) changes.push([enc(`k${rng.int(3000)}`), rng.int(4) === 0 ? null : rng.bytes(1 + rng.int(50))]);
    const counter = new Uint8Array(4);
    new DataView(counter.buffer).setUint32(0, i);
    // Several writes in flight, so kills land inside batched commits too.
    const writes = [0, 1, 2].map((c) =>
      store.write((txn) => {
        applyDelta(txn, ctxId(c + 1), changes);
        if (c === 2) txn.put('meta', COUNTER_KEY, counter);
      }),
    );
    await Promise.all(writes);
    process.stdout.write(`${i}\n`);
  }
}

if (process.argv[2] === '--crash-writer') await run(process.argv[3]!);
