/**
 * A write marked `alone` on the LMDB store commits synchronously (one durable transaction on the caller's
 * thread) when none of the store's writes is in flight, and joins the batched commit otherwise; either way
 * its result, its atomicity and its durability are those of any write (crash.test.ts kills a lone writer too).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import { enc, tempDir } from './stores.js';

test('alone with nothing in flight: the transaction runs before write() returns, and is committed', async () => {
  const tmp = tempDir();
  const store = await openLmdbStore(tmp.dir);
  try {
    let ran = false;
    const written = store.write((txn) => {
      txn.put('state', enc('a'), enc('1'));
      ran = true;
      return 7;
    }, { alone: true });
    assert.equal(ran, true, 'ran synchronously');
    assert.equal(await written, 7);
    assert.deepEqual(store.get('state', enc('a')), enc('1'));
    await store.close();
    const reopened = await openLmdbStore(tmp.dir);
    try {
      assert.deepEqual(reopened.get('state', enc('a')), enc('1'), 'on disk');
    } finally {
      await reopened.close();
    }
  } finally {
    await store.close();
    tmp.remove();
  }
});

test('alone while another write is in flight: it joins the batched commit, in order', async () => {
  const tmp = tempDir();
  const store = await openLmdbStore(tmp.dir);
  try {
    const first = store.write((txn) => txn.put('state', enc('k'), enc('first')));
    let ran = false;
    const second = store.write((txn) => {
      txn.put('state', enc('k'), enc('second'));
      ran = true;
    }, { alone: true });
    assert.equal(ran, false, 'queued behind the write in flight, not run at once');
    await Promise.all([first, second]);
    assert.equal(ran, true);
    assert.deepEqual(store.get('state', enc('k')), enc('second'), 'applied in call order');
    // Both settled: the next lone write is synchronous again.
    let now = false;
    const third = store.write(() => {
      now = true;
    }, { alone: true });
    assert.equal(now, true);
    await third;
  } finally {
    await store.close();
    tmp.remove();
  }
});

test('alone: a throwing transaction rejects with its error and writes nothing; the store goes on', async () => {
  const tmp = tempDir();
  const store = await openLmdbStore(tmp.dir);
  try {
    await store.write((txn) => txn.put('state', enc('keep'), enc('v')), { alone: true });
    const boom = new Error('contract effects refused');
    await assert.rejects(
      store.write((txn) => {
        txn.put('state', enc('keep'), enc('changed'));
        txn.put('state', enc('new'), enc('x'));
        throw boom;
      }, { alone: true }),
      (e) => e === boom,
    );
    assert.deepEqual(store.get('state', enc('keep')), enc('v'));
    assert.equal(store.get('state', enc('new')), undefined);
    await store.write((txn) => txn.put('state', enc('after'), enc('y')), { alone: true });
    assert.deepEqual(store.get('state', enc('after')), enc('y'));
  } finally {
    await store.close();
    tmp.remove();
  }
});
