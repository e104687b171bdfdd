/**
 * Test helpers for the state layer: every store behaviour test runs against both KvStore implementations,
 * and randomness comes from a seeded xorshift generator (reproducible failures).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { KvReader, KvStore } from '../../src/host/state/kv.js';
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import { createMemoryStore } from '../../src/host/state/memory-store.js';
import { computeRootFromScratch, stateRoot, verifyStateTree, type StateChange } from '../../src/host/state/merkle.js';

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

const popcount = (x: number): number => (x === 0 ? 0 : (x & 1) + popcount(x >>> 1));

/**
 * What the store holds for a context, from its entries' definition: the stored root is the from-scratch root;
 * rebuilding the tree from the stored pages and the log without the cache gives it too (verifyStateTree); and
 * when nothing is logged the pages hold exactly the canonical tree (one record per node, nothing stale).
 * Returns how many keys were logged.
 */
export function checkStoredTree(reader: KvReader, ctx: Uint8Array, model: Model, where: string): number {
  assert.equal(hex(stateRoot(reader, ctx)), hex(computeRootFromScratch(model.values())), `root after ${where}`);
  const { logged } = verifyStateTree(reader, ctx);
  let roots = 0;
  let stored = 0;
  for (const [key, page] of reader.range('merkle', ctx)) {
    if (key.length === 32) roots++;
    else stored += popcount((page[0]! << 8) | page[1]!);
  }
  assert.equal(roots, model.size === 0 ? 0 : 1, `root records after ${where}`);
  if (logged === 0) {
    const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
    const nodes = model.size === 0 ? 0 : model.size + innerCount([...model.values()].map(([key]) => sha(key)), 0);
    assert.equal(stored, nodes, `stored records after ${where}`);
  }
  return logged;
}
