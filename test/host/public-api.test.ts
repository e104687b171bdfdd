/** The package's entry point (src/index.ts) is enough to embed a host: here on the in-memory store. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { computeRootFromScratch, createMemoryStore, decodeResult, Host, HOSTLINK_ERROR_CODES, isHostlinkError } from '../../src/index.js';
import { contract, contractPath, id32, ROOT, text, utf8 } from '../helpers.js';

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

test('a host embedded by a script run with node flags a worker refuses (--input-type=module -e) still deploys', () => {
  // The deploy check runs in a worker thread, which by default inherits the process's flags and refuses this one.
  const entry = pathToFileURL(join(ROOT, 'dist', 'src', 'index.js')).href;
  const script = `
    import { readFileSync } from 'node:fs';
    import { Host } from ${JSON.stringify(entry)};
    const host = await Host.open({ poolSize: 1 });
    const codeHash = await host.deploy(readFileSync(${JSON.stringify(contractPath('kv-store'))}));
    const got = await host.call({ codeHash, method: 'get', input: new TextEncoder().encode('{"key":"a"}'), contextId: new Uint8Array(32) });
    await host.close();
    console.log(got.result.code, new TextDecoder().decode(got.result.value));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'return null\n');
});

test('host.node is read-only for embedders: the methods bound to one execution and the commit side are not on it', async () => {
  const host = await Host.open({ store: createMemoryStore(), poolSize: 1 });
  try {
    // @ts-expect-error apply is the committer's, not an embedder's
    assert.equal(host.node.apply, undefined);
    // @ts-expect-error settle is the committer's
    assert.equal(host.node.settle, undefined);
    // @ts-expect-error blobAppend(job, ...) is a protocol handler's
    assert.equal(host.node.blobAppend, undefined);
    // @ts-expect-error isMember(job, ...) answers for one execution
    assert.equal(host.node.isMember, undefined);
    for (const name of ['apply', 'settle', 'blobAppend', 'blobFinish', 'blobRead', 'blobSize', 'readPrivate', 'isMember', 'members', 'resolveAlias', 'reserveAlias', 'fetch', 'close']) {
      assert.equal(name in host.node, false, `host.node.${name}`);
    }
    assert.ok(Object.isFrozen(host.node), 'and nothing can be added to it');
    const ctx = id32('read-only');
    await host.node.addMembers(ctx, [id32('alice')]);
    assert.equal(host.node.contextMembers(ctx).length, 1, 'inspection and set-up still work');
    assert.equal(host.node.openSnapshots, 0);
  } finally {
    await host.close();
  }
});
