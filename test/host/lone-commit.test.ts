/**
 * The host asks for a lone commit (WriteOptions.alone) exactly when a call has nothing else in flight: one call
 * by itself does, calls on several contexts at once do not. Through real VMs and a real LMDB store; the next
 * call on the context reads what the lone commit wrote.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Host } from '../../src/host/host.js';
import type { KvStore } from '../../src/host/state/kv.js';
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import { contract, id32, tempDir, text, utf8 } from '../helpers.js';

describe('lone commits', () => {
  const dir = tempDir('hostlink-lone-');
  let lmdb: KvStore;
  let host: Host;
  let kv: Uint8Array;
  /** The `alone` option of every store write, in order. */
  const seen: boolean[] = [];
  const set = (ctx: string, key: string, value: string) => host.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key, value })), contextId: id32(ctx) });

  before(async () => {
    lmdb = await openLmdbStore(dir.path);
    const store: KvStore = {
      get: (t, k) => lmdb.get(t, k),
      range: (t, p) => lmdb.range(t, p),
      snapshot: () => lmdb.snapshot(),
      close: () => lmdb.close(),
      write: (fn, options) => (seen.push(options?.alone === true), lmdb.write(fn, options)),
    };
    host = await Host.open({ store, poolSize: 2 });
    kv = await host.deploy(contract('kv-store'));
  });
  after(async () => {
    await host?.close();
    await lmdb?.close();
    dir.remove();
  });

  test('a call by itself commits alone, and the next call on its context reads what it wrote', async () => {
    seen.length = 0;
    const o = await set('solo', 'a', 'one');
    assert.equal(o.result.code, 'return', JSON.stringify(o.result));
    assert.deepEqual(seen, [true]);
    const read = await host.call({ codeHash: kv, method: 'get', input: utf8('{"key":"a"}'), contextId: id32('solo') });
    assert.equal(read.result.code, 'return');
    assert.equal(text((read.result as { value: Uint8Array }).value), '"one"');
  });

  test('calls on several contexts at once do not commit alone', async () => {
    seen.length = 0;
    const outcomes = await Promise.all(Array.from({ length: 6 }, (_, i) => set(`many${i}`, 'k', `v${i}`)));
    for (const o of outcomes) assert.equal(o.applied, true, JSON.stringify(o.result));
    assert.equal(seen.length, 6);
    // The last call to commit may find itself alone; every earlier one had others in flight.
    assert.ok(seen.filter((alone) => !alone).length >= 5, `alone flags: ${seen.join(',')}`);
    for (let i = 0; i < 6; i++) {
      const read = await host.call({ codeHash: kv, method: 'get', input: utf8('{"key":"k"}'), contextId: id32(`many${i}`) });
      assert.equal(text((read.result as { value: Uint8Array }).value), `"v${i}"`);
    }
  });
});
