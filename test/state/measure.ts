/**
 * Measurements quoted in docs/state.md (not a test: it does nothing under `node --test`).
 *   node scripts/build.mjs && node dist/test/state/measure.js [dir]
 * `dir` defaults to a temp directory under os.tmpdir(); pass one on the disk you care about.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import type { KvStore } from '../../src/host/state/kv.js';
import { openLmdbStore, type LmdbStoreOptions } from '../../src/host/state/lmdb-store.js';
import { createMemoryStore } from '../../src/host/state/memory-store.js';
import { applyDelta, type StateChange } from '../../src/host/state/merkle.js';
import { ctxId, enc, Rng } from './stores.js';

const now = (): number => Number(process.hrtime.bigint()) / 1e3; // microseconds
const fmt = (us: number): string => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} us`);
const REPEATS = 3; // the machine is shared: each figure is the best of REPEATS runs (and the worst is shown)
const range = (xs: number[]): string => `${fmt(Math.min(...xs))} (worst ${fmt(Math.max(...xs))})`;

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

/** The lmdb configurations not chosen, on the same workload (raw lmdb API, no KvStore). */
async function alternatives(base: string, value: Uint8Array): Promise<void> {
  const variants: { name: string; options: Record<string, boolean>; mode: 'sync-txn' | 'child' | 'child+flushed' }[] = [
    { name: 'transactionSync (fsync on the main thread)', options: { overlappingSync: false }, mode: 'sync-txn' },
    { name: 'overlappingSync + await flushed', options: { overlappingSync: true }, mode: 'child+flushed' },
    { name: 'noMetaSync', options: { overlappingSync: false, noMetaSync: true }, mode: 'child' },
  ];
  for (const v of variants) {
    for (const concurrency of v.mode === 'sync-txn' ? [1] : [1, 16, 64]) {
      const runs: number[] = [];
      for (let r = 0; r < REPEATS; r++) {
        const dir = mkdtempSync(join(base, 'hostlink-measure-'));
        const root = open<Buffer, Uint8Array>(dir, { maxDbs: 4, keyEncoding: 'binary', encoding: 'binary', ...v.options });
        const db = root.openDB<Buffer, Uint8Array>('t', { keyEncoding: 'binary', encoding: 'binary' });
        const one = async (i: number): Promise<void> => {
          const key = new Uint8Array(32);
          new DataView(key.buffer).setUint32(0, i);
          if (v.mode === 'sync-txn') root.transactionSync(() => db.put(key, value as Buffer));
          else {
            await root.childTransaction(() => db.put(key, value as Buffer));
            if (v.mode === 'child+flushed') await root.flushed;
          }
        };
        for (let i = 0; i < 100; i++) await one(1e6 + i);
        let next = 0;
        const t0 = now();
        await Promise.all(Array.from({ length: concurrency }, async () => {
          while (next < 2000) await one(next++);
        }));
        runs.push((now() - t0) / 2000);
        await root.close();
        rmSync(dir, { recursive: true, force: true });
      }
      console.log(`  ${v.name}, concurrency ${String(concurrency).padStart(2)}: ${range(runs)}/write`);
    }
  }
}

async function main(base: string): Promise<void> {
  const value = new Uint8Array(100).fill(7);
  console.log(`commit latency, one 32-byte key + 100-byte value per write() (dir ${base})`);
  for (const durability of ['sync', 'nosync'] as const) {
    for (const concurrency of [1, 4, 16, 64]) {
      const runs: number[] = [];
      for (let r = 0; r < REPEATS; r++) {
        runs.push(
          await withLmdb(base, { durability }, async (store) => {
            await commits(store, 200, concurrency, (i) => (txn) => txn.put('state', new Uint8Array(32).fill(i & 0xff), value)); // warm-up
            return commits(store, 2000, concurrency, (i) => (txn) => {
              const key = new Uint8Array(32);
              new DataView(key.buffer).setUint32(0, i);
              txn.put('state', key, value);
            });
          }),
        );
      }
      console.log(`  lmdb ${durability.padEnd(6)} concurrency ${String(concurrency).padStart(2)}: ${range(runs)}/write, ${Math.round(1e6 / Math.min(...runs))} writes/s`);
    }
  }

  console.log('alternatives not chosen');
  await alternatives(base, value);

  for (const n of [10_000, 100_000]) {
    console.log(`applyDelta on a context of ${n} keys`);
    const rng = new Rng(n);
    for (const kind of ['memory', 'lmdb'] as const) {
      const run = async (store: KvStore): Promise<void> => {
        const t0 = now();
        await prefill(store, n, rng);
        console.log(`  ${kind}: initial load ${fmt(now() - t0)} (${fmt((now() - t0) / n)}/key)`);
        for (const size of [1, 10, 100]) {
          // Time spent inside applyDelta only (no commit): updates of existing keys and ~10% fresh inserts.
          const runs: number[] = [];
          for (let rep = 0; rep < REPEATS; rep++) {
            let inside = 0;
            const rounds = size === 1 ? 1000 : size === 10 ? 150 : 20;
            for (let r = 0; r < rounds; r++) {
              const changes: StateChange[] = [];
              for (let j = 0; j < size; j++) changes.push([keyOf(rng.int(n * 1.1)), rng.bytes(32)]);
              await store.write((txn) => {
                const t = now();
                applyDelta(txn, ctxId(1), changes);
                inside += now() - t;
              });
            }
            runs.push(inside / rounds / size);
          }
          console.log(`    delta of ${String(size).padStart(3)} keys: ${range(runs)} per changed key inside the transaction`);
        }
        if (kind === 'lmdb') {
          for (const concurrency of [1, 4, 16]) {
            const runs: number[] = [];
            for (let rep = 0; rep < REPEATS; rep++) {
              runs.push(
                await commits(store, 1000, concurrency, () => {
                  const changes: StateChange[] = [[keyOf(rng.int(n)), rng.bytes(32)]];
                  return (txn) => applyDelta(txn, ctxId(1), changes);
                }),
              );
            }
            console.log(`    one-key delta + durable commit, concurrency ${String(concurrency).padStart(2)}: ${range(runs)}/execution, ${Math.round(1e6 / Math.min(...runs))}/s`);
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
