/**
 * Test helpers for the state layer: every store behaviour test runs against both KvStore implementations,
 * and randomness comes from a seeded xorshift generator (reproducible failures).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { KvStore } from '../../src/host/state/kv.js';
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import { createMemoryStore } from '../../src/host/state/memory-store.js';
import type { StateChange } from '../../src/host/state/merkle.js';

export interface StoreKind {
  name: 'memory' | 'lmdb';
  create(): Promise<{ store: KvStore; cleanup(): Promise<void> }>;
}

export const STORE_KINDS: StoreKind[] = [
  {
    name: 'memory',
    async create() {
      const store = createMemoryStore();
      return { store, cleanup: () => store.close() };
    },
  },
  {
    name: 'lmdb',
    async create() {
      const dir = mkdtempSync(join(tmpdir(), 'hostlink-state-'));
      const store = await openLmdbStore(dir);
      return {
        store,
        async cleanup() {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

/** Declares one test per store kind; the store is closed (and its directory removed) afterwards. */
export function storeTest(title: string, body: (store: KvStore, kind: StoreKind['name']) => Promise<void>): void {
  for (const kind of STORE_KINDS) {
    test(`${title} [${kind.name}]`, async () => {
      const { store, cleanup } = await kind.create();
      try {
        await body(store, kind.name);
      } finally {
        await cleanup();
      }
    });
  }
}

/** A temp directory under os.tmpdir(), removed by the returned function. */
export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-state-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export { Rng } from '../helpers.js';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const ctxId = (n: number): Uint8Array => new Uint8Array(32).fill(n);

/** What a context should hold: hex(key) -> [key, value]. */
export type Model = Map<string, [Uint8Array, Uint8Array]>;

export function applyToModel(model: Model, changes: readonly StateChange[]): void {
  for (const [key, value] of changes) {
    if (value === null) model.delete(hex(key));
    else model.set(hex(key), [key, value]);
  }
}

/** Inner nodes of the canonical tree over these key hashes (hex), counted from its definition. */
export function innerCount(khs: string[], depth: number): number {
  if (khs.length < 2) return 0;
  const bit = (h: string): number => (parseInt(h[depth >> 2]!, 16) >> (3 - (depth & 3))) & 1;
  return 1 + innerCount(khs.filter((h) => bit(h) === 0), depth + 1) + innerCount(khs.filter((h) => bit(h) === 1), depth + 1);
}
