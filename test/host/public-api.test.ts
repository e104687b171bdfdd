/** The package's entry point (src/index.ts) is enough to embed a host: here on the in-memory store. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeRootFromScratch, createMemoryStore, decodeResult, Host, HOSTLINK_ERROR_CODES, isHostlinkError } from '../../src/index.js';
import { contract, id32, text, utf8 } from '../helpers.js';

test('embed a host through the public API: deploy, call, inspect, and a root that matches a from-scratch recomputation', async () => {
  const host = await Host.open({ store: createMemoryStore(), poolSize: 1 });
  try {
    const codeHash = await host.deploy(contract('kv-store'));
    const ctx = id32('public-api');
    const o = await host.call({ codeHash, method: 'set', input: utf8('{"key":"k","value":"v"}'), contextId: ctx });
    assert.deepEqual(decodeResult(o.resultBytes), o.result);
    const { root, entries } = host.state(ctx);
    assert.deepEqual(root, computeRootFromScratch(entries));
    assert.deepEqual(entries.map(([k, v]) => [text(k), text(v)]).find(([k]) => k === 'e:k'), ['e:k', 'v']);
    await assert.rejects(host.deploy(utf8('not wasm')), (e: unknown) => isHostlinkError(e, 'usage'));
    assert.ok(HOSTLINK_ERROR_CODES.includes('vm_crash'));
  } finally {
    await host.close();
  }
});
