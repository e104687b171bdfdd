/**
 * Measurements quoted in docs/state.md (not a test: it does nothing under `node --test`).
 *   node scripts/build.mjs && node dist/test/state/measure.js [dir]
 * `dir` defaults to a temp directory under os.tmpdir(); pass one on the disk you care about.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KvStore } from '../../src/host/state/kv.js';
import { openLmdbStore, type LmdbStoreOptions } from '../../src/host/state/lmdb-store.js';
import { createMemoryStore } from '../../src/host/state/memory-store.js';
import { applyDelta, type StateChange } from '../../src/host/state/merkle.js';
import { ctxId, enc, Rng } from './stores.js';

const now = (): number => Number(process.hrtime.bigint()) / 1e3; // microseconds
const fmt = (us: number): string => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} us`);

/** `total` write() calls, `concurrency` in flight; returns microseconds per call. */
async function commits(store: KvStore, total: number, concurrency: number, body: (i: number) => (txn: Parameters<Parameters<KvStore['write']>[0]>[0]) => unknown): Promise<number> {
  let next = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await store.write(body(next++));
    }),
  );
  return (now() - t0) / total;
}

async function withLmdb<T>(base: string, options: LmdbStoreOptions, fn: (store: KvStore) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(base, 'hostlink-measure-'));
  const store = await openLmdbStore(dir, options);
  try {
    return await fn(store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const keyOf = (i: number): Uint8Array => enc(`key-${i}`);

async function prefill(store: KvStore, n: number, rng: Rng): Promise<void> {
  for (let i = 0; i < n; i += 20_000) {
    const changes: StateChange[] = [];
    for (let j = i; j < Math.min(n, i + 20_000); j++) changes.push([keyOf(j), rng.bytes(32)]);
    await store.write((txn) => applyDelta(txn, ctxId(1), changes));
  }
}

async function main(base: string): Promise<void> {
  const value = new Uint8Array(100).fill(7);
  console.log(`commit latency, one 32-byte key + 100-byte value per write() (dir ${base})`);
  for (const durability of ['sync', 'nosync'] as const) {
    for (const concurrency of [1, 4, 16, 64]) {
      const us = await withLmdb(base, { durability }, async (store) => {
        await commits(store, 200, concurrency, (i) => (txn) => txn.put('state', new Uint8Array(32).fill(i & 0xff), value)); // warm-up
        return commits(store, 3000, concurrency, (i) => (txn) => {
          const key = new Uint8Array(32);
          new DataView(key.buffer).setUint32(0, i);
          txn.put('state', key, value);
        });
      });
      console.log(`  lmdb ${durability.padEnd(6)} concurrency ${String(concurrency).padStart(2)}: ${fmt(us)}/write, ${Math.round(1e6 / us)} writes/s`);
    }
  }

  for (const n of [10_000, 100_000]) {
    console.log(`applyDelta on a context of ${n} keys`);
    const rng = new Rng(n);
    for (const kind of ['memory', 'lmdb'] as const) {
      const run = async (store: KvStore): Promise<void> => {
        const t0 = now();
        await prefill(store, n, rng);
        console.log(`  ${kind}: initial load ${fmt(now() - t0)} (${fmt((now() - t0) / n)}/key)`);
        for (const size of [1, 10, 100]) {
          // Time spent inside applyDelta only (no commit): mixed updates and fresh inserts.
          let inside = 0;
          const rounds = size === 1 ? 2000 : size === 10 ? 300 : 40;
          for (let r = 0; r < rounds; r++) {
            const changes: StateChange[] = [];
            for (let j = 0; j < size; j++) changes.push([keyOf(rng.int(n * 1.1)), rng.bytes(32)]);
            await store.write((txn) => {
              const t = now();
              applyDelta(txn, ctxId(1), changes);
              inside += now() - t;
            });
          }
          console.log(`    delta of ${String(size).padStart(3)} keys: ${fmt(inside / rounds / size)} per changed key inside the transaction`);
        }
        if (kind === 'lmdb') {
          for (const concurrency of [1, 16]) {
            const us = await commits(store, 2000, concurrency, () => {
              const changes: StateChange[] = [[keyOf(rng.int(n)), rng.bytes(32)]];
              return (txn) => applyDelta(txn, ctxId(1), changes);
            });
            console.log(`    one-key delta + durable commit, concurrency ${String(concurrency).padStart(2)}: ${fmt(us)}/execution, ${Math.round(1e6 / us)}/s`);
          }
        }
      };
      if (kind === 'memory') {
        const store = createMemoryStore();
        await run(store);
        await store.close();
      } else await withLmdb(base, {}, run);
    }
  }
}

// Under `node --test` (which runs every file in test/) this module only defines functions.
if (process.env['NODE_TEST_CONTEXT'] === undefined && process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(process.argv[2] ?? tmpdir());
}
