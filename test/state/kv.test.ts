/** KvStore semantics, identical for the memory and the LMDB store. */
import assert from 'node:assert/strict';
import { isHostlinkError } from '../../src/errors.js';
import { MAX_TABLE_KEY_BYTES, prefixEnd } from '../../src/host/state/kv.js';
import { enc, storeTest } from './stores.js';
import { test } from 'node:test';

const k = (...b: number[]): Uint8Array => Uint8Array.from(b);
const entries = (it: Iterable<[Uint8Array, Uint8Array]>): [number[], number[]][] =>
  [...it].map(([a, b]) => [[...a], [...b]]);

test('prefixEnd is the first key after the prefix range', () => {
  assert.deepEqual(prefixEnd(k(1, 2)), k(1, 3));
  assert.deepEqual(prefixEnd(k(1, 0xff)), k(2));
  assert.equal(prefixEnd(k(0xff, 0xff)), undefined);
});

storeTest('put, get, delete and values as plain copies', async (store) => {
  assert.equal(store.get('state', k(1)), undefined);
  const value = enc('hello');
  await store.write((txn) => {
    txn.put('state', k(1), value);
    txn.put('code', k(1), enc('other table'));
    txn.put('state', k(2), new Uint8Array(0));
  });
  value[0] = 0; // the store kept its own copy
  const got = store.get('state', k(1))!;
  assert.deepEqual(got, enc('hello'));
  assert.equal(got.constructor, Uint8Array);
  got[0] = 0; // and handed out a copy
  assert.deepEqual(store.get('state', k(1)), enc('hello'));
  assert.deepEqual(store.get('code', k(1)), enc('other table'));
  assert.deepEqual(store.get('state', k(2)), new Uint8Array(0));
  await store.write((txn) => txn.del('state', k(1)));
  assert.equal(store.get('state', k(1)), undefined);
  assert.deepEqual(store.get('code', k(1)), enc('other table'));
});

storeTest('range: prefix, key byte order, shorter key first, 0xff edge', async (store) => {
  const keys = [k(2), k(1, 0xff), k(1), k(1, 0), k(1, 0xff, 0xff), k(0xff), k(0xff, 0xff, 1), k(1, 2, 3), k(0)];
  await store.write((txn) => {
    for (const key of keys) txn.put('merkle', key, Uint8Array.of(key.length));
  });
  const keysOf = (p: Uint8Array): number[][] => [...store.range('merkle', p)].map(([key]) => [...key]);
  assert.deepEqual(keysOf(k(1)), [[1], [1, 0], [1, 2, 3], [1, 0xff], [1, 0xff, 0xff]]);
  assert.deepEqual(keysOf(k(1, 0xff)), [[1, 0xff], [1, 0xff, 0xff]]);
  assert.deepEqual(keysOf(k(0xff)), [[0xff], [0xff, 0xff, 1]]);
  assert.deepEqual(keysOf(k(0xff, 0xff)), [[0xff, 0xff, 1]]);
  assert.deepEqual(keysOf(k(3)), []);
  assert.equal(keysOf(new Uint8Array(0)).length, keys.length);
  const all = [...store.range('merkle', new Uint8Array(0))];
  for (let i = 1; i < all.length; i++) assert.ok(Buffer.compare(all[i - 1]![0], all[i]![0]) < 0);
  assert.deepEqual(entries(store.range('merkle', k(1, 2))), [[[1, 2, 3], [3]]]);
  assert.deepEqual([...store.range('state', k(1))], []); // tables are separate
});

storeTest('a transaction sees its own writes in get and range', async (store) => {
  await store.write((txn) => {
    txn.put('state', k(5, 1), enc('a'));
    txn.put('state', k(5, 3), enc('c'));
  });
  const seen = await store.write((txn) => {
    txn.put('state', k(5, 2), enc('b'));
    txn.del('state', k(5, 3));
    txn.put('state', k(5, 1), enc('A'));
    return {
      get1: txn.get('state', k(5, 1)),
      get3: txn.get('state', k(5, 3)),
      range: entries(txn.range('state', k(5))),
    };
  });
  assert.deepEqual(seen.get1, enc('A'));
  assert.equal(seen.get3, undefined);
  assert.deepEqual(seen.range, [
    [[5, 1], [...enc('A')]],
    [[5, 2], [...enc('b')]],
  ]);
  assert.deepEqual(entries(store.range('state', k(5))), seen.range);
});

storeTest('a throwing transaction writes nothing and rejects with its error', async (store) => {
  await store.write((txn) => txn.put('state', k(1), enc('before')));
  const boom = new Error('boom');
  await assert.rejects(
    store.write((txn) => {
      txn.put('state', k(1), enc('after'));
      txn.put('code', k(9), enc('x'));
      txn.del('state', k(1));
      throw boom;
    }),
    (e) => e === boom,
  );
  assert.deepEqual(store.get('state', k(1)), enc('before'));
  assert.equal(store.get('code', k(9)), undefined);
});

storeTest('concurrent writes: call order, results, and a throwing one does not undo the others', async (store) => {
  const results = await Promise.allSettled([
    store.write((txn) => {
      txn.put('state', k(1), enc('one'));
      return 1;
    }),
    store.write((txn) => {
      txn.put('state', k(2), enc('two'));
      throw new Error('second fails');
    }),
    store.write((txn) => {
      // runs after the first: sees its write
      txn.put('state', k(3), txn.get('state', k(1)) ?? enc('missing'));
      return 3;
    }),
  ]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.equal((results[0] as PromiseFulfilledResult<number>).value, 1);
  assert.equal((results[2] as PromiseFulfilledResult<number>).value, 3);
  assert.deepEqual(store.get('state', k(1)), enc('one'));
  assert.equal(store.get('state', k(2)), undefined);
  assert.deepEqual(store.get('state', k(3)), enc('one'));
});

storeTest('a write reads the writes of earlier calls not yet committed, in get and range', async (store) => {
  const first = store.write((txn) => {
    txn.put('state', k(7, 1), enc('a'));
    txn.put('state', k(7, 3), enc('c'));
  });
  // A later turn: the first write's commit may be under way, not finished.
  await new Promise((resolve) => setImmediate(resolve));
  const second = store.write((txn) => {
    const seen = { get: txn.get('state', k(7, 1)), range: entries(txn.range('state', k(7))) };
    txn.del('state', k(7, 3));
    txn.put('state', k(7, 2), enc('b'));
    txn.put('state', k(7, 1), enc('A'));
    return seen;
  });
  const third = store.write((txn) => entries(txn.range('state', k(7))));
  const [, seen, after] = await Promise.all([first, second, third]);
  assert.deepEqual(seen.get, enc('a'));
  assert.deepEqual(seen.range, [
    [[7, 1], [...enc('a')]],
    [[7, 3], [...enc('c')]],
  ]);
  const expected = [
    [[7, 1], [...enc('A')]],
    [[7, 2], [...enc('b')]],
  ];
  assert.deepEqual(after, expected);
  assert.deepEqual(entries(store.range('state', k(7))), expected);
});

storeTest('bad keys, async callbacks, stale transactions and nested writes are usage errors', async (store) => {
  const usage = (e: unknown): boolean => isHostlinkError(e, 'usage');
  await assert.rejects(store.write((txn) => txn.put('state', new Uint8Array(0), enc('v'))), usage);
  await assert.rejects(store.write((txn) => txn.put('state', new Uint8Array(MAX_TABLE_KEY_BYTES + 1), enc('v'))), usage);
  await store.write((txn) => txn.put('state', new Uint8Array(MAX_TABLE_KEY_BYTES).fill(7), enc('longest')));
  assert.deepEqual(store.get('state', new Uint8Array(MAX_TABLE_KEY_BYTES).fill(7)), enc('longest'));

  await assert.rejects(
    store.write(async (txn) => {
      txn.put('state', k(1), enc('from async'));
    }),
    usage,
  );
  assert.equal(store.get('state', k(1)), undefined);

  let stale: { put(t: 'state', key: Uint8Array, v: Uint8Array): void } | undefined;
  await store.write((txn) => {
    stale = txn;
  });
  assert.throws(() => stale!.put('state', k(2), enc('late')), usage);

  await assert.rejects(
    store.write(() => {
      void store.write(() => undefined);
    }),
    usage,
  );
});

storeTest('close waits for pending writes, later calls fail with a store error', async (store) => {
  const w = store.write((txn) => txn.put('state', k(1), enc('v')));
  await store.close();
  await w;
  const storeErr = (e: unknown): boolean => isHostlinkError(e, 'store');
  assert.throws(() => store.get('state', k(1)), storeErr);
  await assert.rejects(store.write(() => undefined), storeErr);
});

storeTest('large values (10 MiB) round-trip', async (store) => {
  const big = new Uint8Array(10 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
  await store.write((txn) => txn.put('state', k(1), big));
  assert.ok(Buffer.from(store.get('state', k(1))!).equals(Buffer.from(big)));
});

storeTest('a snapshot keeps its view while later commits change, add and remove keys', async (store) => {
  await store.write((txn) => {
    txn.put('members', k(1, 1), enc('a'));
    txn.put('members', k(1, 2), enc('b'));
  });
  const snap = store.snapshot();
  await store.write((txn) => {
    txn.put('members', k(1, 1), enc('A'));
    txn.del('members', k(1, 2));
    txn.put('members', k(1, 3), enc('c'));
  });
  const second = store.snapshot();
  await store.write((txn) => txn.del('members', k(1, 1)));
  assert.deepEqual(snap.get('members', k(1, 1)), enc('a'));
  assert.equal(snap.get('members', k(1, 3)), undefined);
  assert.deepEqual(entries(snap.range('members', k(1))), [[[1, 1], [...enc('a')]], [[1, 2], [...enc('b')]]]);
  assert.deepEqual(entries(second.range('members', k(1))), [[[1, 1], [...enc('A')]], [[1, 3], [...enc('c')]]]);
  assert.deepEqual(entries(store.range('members', k(1))), [[[1, 3], [...enc('c')]]]);
  snap.release();
  second.release();
  snap.release(); // twice is harmless
});
