/** The incremental state root against the from-scratch definition, on both stores. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { isHostlinkError } from '../../src/errors.js';
import type { KvReader, KvStore } from '../../src/host/state/kv.js';
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import {
  applyDelta,
  computeRootFromScratch,
  emptyRoot,
  listState,
  readState,
  stateRoot,
  type StateChange,
} from '../../src/host/state/merkle.js';
import { applyToModel, checkStoredTree, ctxId, enc, hex, Rng, storeTest, tempDir, type Model } from './stores.js';

const sha = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();


const popcount = (x: number): number => (x === 0 ? 0 : (x & 1) + popcount(x >>> 1));

/** Compares everything the store says about a context with the model. */
function checkContext(reader: KvReader, ctx: Uint8Array, model: Model): void {
  checkStoredTree(reader, ctx, model, 'this step');
  const listed = new Map([...listState(reader, ctx)].map(([key, value]) => [hex(key), hex(value)]));
  assert.deepEqual(listed, new Map([...model].map(([h, [, v]]) => [h, hex(v)])));
  assert.equal([...reader.range('state', ctx)].length, model.size);
}

function randomChanges(rng: Rng, keySpace: number, count: number): StateChange[] {
  const changes: StateChange[] = [];
  for (let i = 0; i < count; i++) {
    const id = rng.int(keySpace);
    // Key lengths vary with the id (id 0 is the empty key); values are random, sometimes empty.
    const key = id === 0 ? new Uint8Array(0) : enc(`key-${id}-${'x'.repeat(id % 13)}`);
    const value = rng.int(4) === 0 ? null : rng.bytes(rng.int(5) === 0 ? 0 : 1 + rng.int(64));
    changes.push([key, value]);
  }
  return changes;
}

test('worked examples of the hash definition (docs/state.md)', () => {
  assert.equal(hex(computeRootFromScratch([])), '00'.repeat(32));
  // These hex strings are quoted in docs/state.md; if the definition changes, update both.
  assert.equal(
    hex(computeRootFromScratch([[enc('a'), enc('1')]])),
    hex(sha(Buffer.concat([Buffer.of(0), sha(enc('a')), sha(enc('1'))]))),
  );
  assert.equal(hex(computeRootFromScratch([[enc('a'), enc('1')]])), WORKED_1);
  assert.equal(hex(computeRootFromScratch([[enc('a'), enc('1')], [enc('b'), enc('2')]])), WORKED_2);
});

// sha256("a") starts 0xca (bit 0 = 1), sha256("b") starts 0x3e (bit 0 = 0): root = H(0x01 ‖ leaf_b ‖ leaf_a).
const WORKED_1 = '565388d4bc00257133f799d9366ac97f6e949c18acc53d17457f8859ba0f08d3';
const WORKED_2 = '70a50295110313dd28320faccbee14d04dc2894e877a2e407115a2f337ed4efa';

storeTest('worked examples through applyDelta', async (store) => {
  const ctx = ctxId(1);
  assert.equal(hex(await store.write((txn) => applyDelta(txn, ctx, [[enc('a'), enc('1')]]))), WORKED_1);
  assert.equal(hex(await store.write((txn) => applyDelta(txn, ctx, [[enc('b'), enc('2')]]))), WORKED_2);
  assert.equal(hex(stateRoot(store, ctx)), WORKED_2);
});

storeTest('random inserts, updates and deletes across contexts match the from-scratch root', async (store) => {
  const rng = new Rng(0x5eed);
  const ctxs = [ctxId(1), ctxId(2), ctxId(0xff)];
  const models: Model[] = ctxs.map(() => new Map());
  let ops = 0;
  for (let batch = 0; batch < 60; batch++) {
    const c = rng.int(ctxs.length);
    const changes = randomChanges(rng, c === 2 ? 40 : 1500, 1 + rng.int(120));
    ops += changes.length;
    const root = await store.write((txn) => applyDelta(txn, ctxs[c]!, changes));
    applyToModel(models[c]!, changes);
    assert.equal(hex(root), hex(computeRootFromScratch(models[c]!.values())), `batch ${batch}`);
    for (const [key] of changes.slice(0, 5)) {
      assert.deepEqual(readState(store, ctxs[c]!, key), models[c]!.get(hex(key))?.[1]);
    }
  }
  assert.ok(ops > 3000);
  ctxs.forEach((ctx, i) => checkContext(store, ctx, models[i]!));

  // Two contexts in one transaction.
  const a = randomChanges(rng, 1500, 50);
  const b = randomChanges(rng, 40, 20);
  await store.write((txn) => {
    applyDelta(txn, ctxs[0]!, a);
    applyDelta(txn, ctxs[2]!, b);
  });
  applyToModel(models[0]!, a);
  applyToModel(models[2]!, b);
  ctxs.forEach((ctx, i) => checkContext(store, ctx, models[i]!));

  // Deleting everything returns to the empty root and leaves no records behind.
  for (let i = 0; i < ctxs.length; i++) {
    const deletes: StateChange[] = rng.shuffle([...models[i]!.values()]).map(([key]) => [key, null]);
    for (let j = 0; j < deletes.length; j += 37) {
      await store.write((txn) => applyDelta(txn, ctxs[i]!, deletes.slice(j, j + 37)));
      applyToModel(models[i]!, deletes.slice(j, j + 37));
      assert.equal(hex(stateRoot(store, ctxs[i]!)), hex(computeRootFromScratch(models[i]!.values())));
    }
    assert.deepEqual(stateRoot(store, ctxs[i]!), emptyRoot());
    checkContext(store, ctxs[i]!, models[i]!);
  }
});

storeTest('the root depends only on the final entries, not on order or batching', async (store) => {
  const rng = new Rng(7);
  const entries: [Uint8Array, Uint8Array][] = [];
  for (let i = 0; i < 300; i++) entries.push([enc(`k${i}`), rng.bytes(1 + rng.int(20))]);
  const expected = hex(computeRootFromScratch(entries));
  // 1: all at once. 2: shuffled, one key per transaction. 3: junk first, overwritten and deleted, in batches.
  await store.write((txn) => applyDelta(txn, ctxId(1), entries));
  for (const e of rng.shuffle(entries)) await store.write((txn) => applyDelta(txn, ctxId(2), [e]));
  const junk: StateChange[] = entries.map(([key]) => [key, enc('junk')]);
  for (let i = 0; i < 400; i++) junk.push([enc(`gone${i}`), enc('x')]);
  const steps: StateChange[] = [
    ...rng.shuffle(junk),
    ...rng.shuffle(entries),
    ...rng.shuffle(junk.slice(300)).map(([key]): StateChange => [key, null]),
  ];
  for (let i = 0; i < steps.length; i += 97) await store.write((txn) => applyDelta(txn, ctxId(3), steps.slice(i, i + 97)));
  for (const c of [1, 2, 3]) assert.equal(hex(stateRoot(store, ctxId(c))), expected, `context ${c}`);
  // Duplicate keys in one delta: the last change wins.
  const root = await store.write((txn) =>
    applyDelta(txn, ctxId(4), [[enc('d'), enc('1')], [enc('d'), null], [enc('d'), enc('3')], [enc('e'), enc('1')], [enc('e'), null]]),
  );
  assert.equal(hex(root), hex(computeRootFromScratch([[enc('d'), enc('3')]])));
  assert.equal(readState(store, ctxId(4), enc('e')), undefined);
});

storeTest('keys sharing a long hash prefix: chains of one-sided inner nodes grow and collapse', async (store) => {
  // Grind keys whose sha256 share the first 14 bits with key "p0" (about 16k hashes each).
  const prefix = (b: Uint8Array): number => (sha(b).readUInt16BE(0) >> 2) & 0x3fff;
  const target = prefix(enc('p0'));
  const keys = [enc('p0')];
  for (let i = 1; keys.length < 4; i++) if (prefix(enc(`p${i}`)) === target) keys.push(enc(`p${i}`));
  const ctx = ctxId(9);
  const model: Model = new Map();
  const rng = new Rng(99);
  for (let round = 0; round < 12; round++) {
    const changes: StateChange[] = rng.shuffle(keys).slice(0, 1 + rng.int(4)).map((key) => [key, rng.int(3) === 0 ? null : rng.bytes(3)]);
    await store.write((txn) => applyDelta(txn, ctx, changes));
    applyToModel(model, changes);
    checkContext(store, ctx, model);
  }
  // One by one down to nothing: each delete may collapse a chain of at least 14 levels.
  for (const key of rng.shuffle(keys)) {
    await store.write((txn) => applyDelta(txn, ctx, [[key, null]]));
    applyToModel(model, [[key, null]]);
    checkContext(store, ctx, model);
  }
  assert.deepEqual(stateRoot(store, ctx), emptyRoot());
});

storeTest('a throwing transaction leaves state and root untouched', async (store) => {
  const ctx = ctxId(3);
  const model: Model = new Map();
  const initial = randomChanges(new Rng(3), 200, 150);
  await store.write((txn) => applyDelta(txn, ctx, initial));
  applyToModel(model, initial);
  const rootBefore = hex(stateRoot(store, ctx));
  const merkleBefore = [...store.range('merkle', ctx)].map(([k, v]) => hex(k) + hex(v));

  const changes = randomChanges(new Rng(4), 200, 80);
  await assert.rejects(
    store.write((txn) => {
      const root = applyDelta(txn, ctx, changes);
      assert.notEqual(hex(root), rootBefore); // the transaction saw its own change
      throw new Error('execution failed after applying');
    }),
    /execution failed/,
  );
  assert.equal(hex(stateRoot(store, ctx)), rootBefore);
  assert.deepEqual([...store.range('merkle', ctx)].map(([k, v]) => hex(k) + hex(v)), merkleBefore);
  checkContext(store, ctx, model);

  // The same delta then applies cleanly.
  await store.write((txn) => applyDelta(txn, ctx, changes));
  applyToModel(model, changes);
  checkContext(store, ctx, model);
});

storeTest('long keys (100 KiB), empty keys and empty values', async (store) => {
  const ctx = ctxId(5);
  const long1 = new Uint8Array(100 * 1024).fill(0x61);
  const long2 = Uint8Array.from(long1);
  long2[long2.length - 1] = 0x62;
  const empty = new Uint8Array(0);
  const changes: StateChange[] = [
    [long1, enc('long one')],
    [long2, empty],
    [empty, enc('value of the empty key')],
    [enc('k'), empty],
    [enc('big value'), new Uint8Array(1024 * 1024).fill(3)],
  ];
  const model: Model = new Map();
  await store.write((txn) => applyDelta(txn, ctx, changes));
  applyToModel(model, changes);
  checkContext(store, ctx, model);
  assert.deepEqual(readState(store, ctx, long1), enc('long one'));
  assert.deepEqual(readState(store, ctx, long2), empty);
  assert.deepEqual(readState(store, ctx, empty), enc('value of the empty key'));
  assert.equal(readState(store, ctx, long1.subarray(1)), undefined);

  await store.write((txn) => applyDelta(txn, ctx, [[empty, null], [long1, null]]));
  applyToModel(model, [[empty, null], [long1, null]]);
  checkContext(store, ctx, model);
  assert.equal(readState(store, ctx, empty), undefined);
});

storeTest('context ids must be 32 bytes; an empty delta changes nothing', async (store) => {
  await assert.rejects(
    store.write((txn) => applyDelta(txn, new Uint8Array(31), [[enc('k'), enc('v')]])),
    (e) => isHostlinkError(e, 'usage'),
  );
  assert.throws(() => stateRoot(store, new Uint8Array(33)), (e) => isHostlinkError(e, 'usage'));
  assert.deepEqual(await store.write((txn) => applyDelta(txn, ctxId(1), [])), emptyRoot());
  assert.deepEqual(await store.write((txn) => applyDelta(txn, ctxId(1), [[enc('absent'), null]])), emptyRoot());
  assert.deepEqual([...store.range('merkle', ctxId(1))], []);
});

test('the LMDB store reopened from disk returns the same data and roots, and keeps updating correctly', async () => {
  const tmp = tempDir();
  try {
    const rng = new Rng(12345);
    const ctxs = [ctxId(1), ctxId(2)];
    const models: Model[] = [new Map(), new Map()];
    let store: KvStore = await openLmdbStore(tmp.dir);
    for (let batch = 0; batch < 20; batch++) {
      const c = batch % 2;
      const changes = randomChanges(rng, 500, 60);
      await store.write((txn) => applyDelta(txn, ctxs[c]!, changes));
      applyToModel(models[c]!, changes);
    }
    const roots = ctxs.map((ctx) => hex(stateRoot(store, ctx)));
    await store.close();

    store = await openLmdbStore(tmp.dir);
    assert.deepEqual(
      ctxs.map((ctx) => hex(stateRoot(store, ctx))),
      roots,
    );
    ctxs.forEach((ctx, i) => checkContext(store, ctx, models[i]!));
    for (let batch = 0; batch < 6; batch++) {
      const changes = randomChanges(rng, 500, 60);
      await store.write((txn) => applyDelta(txn, ctxs[0]!, changes));
      applyToModel(models[0]!, changes);
    }
    checkContext(store, ctxs[0]!, models[0]!);
    await store.close();
  } finally {
    tmp.remove();
  }
});

/** `count` keys `${name}0`, `${name}i`... whose SHA-256 hashes share their first 12 bits with the first one's. */
function sharingPrefix(name: string, count: number): Uint8Array[] {
  const prefix = (k: Uint8Array): number => (sha(k)[0]! << 4) | (sha(k)[1]! >> 4);
  const target = prefix(enc(`${name}0`));
  const keys: Uint8Array[] = [enc(`${name}0`)];
  for (let i = 1; keys.length < count; i++) if (prefix(enc(`${name}${i}`)) === target) keys.push(enc(`${name}${i}`));
  return keys;
}

storeTest('one-key deltas (their own code path): inserts, rewrites, deletes, shared prefixes; tree checked after each', async (store) => {
  const rng = new Rng(0x1e7);
  const ctx = ctxId(7);
  const model: Model = new Map();
  // Keys whose hashes share their first 12 bits: splits and collapses deep in the tree, under one-sided chains.
  const keys = sharingPrefix('q', 5);
  for (let i = 0; i < 40; i++) keys.push(enc(`one-${i}`));
  keys.push(new Uint8Array(0));
  for (let step = 0; step < 500; step++) {
    const key = rng.pick(keys);
    const present = model.get(hex(key));
    const roll = rng.int(20);
    let change: StateChange;
    if (roll < 10) change = [key, rng.bytes(rng.int(3) === 0 ? 0 : 1 + rng.int(40))];
    else if (roll < 13 && present) change = [key, Uint8Array.from(present[1])]; // the same value again
    else change = [key, null]; // present or absent
    const before = hex(stateRoot(store, ctx));
    const root = await store.write((txn) => applyDelta(txn, ctx, [change]));
    applyToModel(model, [change]);
    assert.equal(hex(root), hex(computeRootFromScratch(model.values())), `step ${step}`);
    if (roll >= 10 && roll < 13 && present) assert.equal(hex(root), before, 'a same-value rewrite keeps the root');
    checkContext(store, ctx, model);
  }
  for (const [key] of rng.shuffle([...model.values()])) {
    await store.write((txn) => applyDelta(txn, ctx, [[key, null]]));
    model.delete(hex(key));
    checkContext(store, ctx, model);
  }
  assert.equal(hex(stateRoot(store, ctx)), hex(emptyRoot()));
  assert.equal([...store.range('merkle', ctx)].length, 0);
});

storeTest('small deltas (applied key by key): a tree that empties and refills within one delta, shared prefixes, repeats; checked after each', async (store) => {
  const rng = new Rng(0x5a11);
  const ctx = ctxId(8);
  const model: Model = new Map();
  // Few keys, some sharing their first 12 hash bits, so a delta often deletes every entry and inserts again.
  const keys = sharingPrefix('s', 4);
  for (let i = 0; i < 6; i++) keys.push(enc(`small-${i}`));
  for (let step = 0; step < 400; step++) {
    const size = 2 + rng.int(rng.int(4) === 0 ? 70 : 6); // mostly 2-7 keys, sometimes past the key-by-key bound
    const changes: StateChange[] = [];
    for (let i = 0; i < size; i++) {
      const key = rng.pick(keys);
      changes.push([key, rng.int(3) === 0 ? null : rng.bytes(rng.int(4) === 0 ? 0 : 1 + rng.int(30))]);
    }
    await store.write((txn) => applyDelta(txn, ctx, changes));
    applyToModel(model, changes);
    checkContext(store, ctx, model);
  }
});
