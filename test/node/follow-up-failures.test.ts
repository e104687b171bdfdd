/**
 * A call whose follow-up cannot run is still the applied call it is: its caller gets its outcome, the follow-up
 * says why it has none, and the follow-ups after it run. Real VM processes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { id32, text } from '../helpers.js';
import { openHost } from './helpers.js';
import { call, Probe } from './probe.js';

test('an xcall naming an empty function is reported as not run; the parent is applied and later follow-ups run', { timeout: 60_000 }, async () => {
  const t = await openHost();
  try {
    const ctx = id32('follow-up-empty-fn');
    const p = new Probe();
    const key = p.buf('k');
    const key2 = p.buf('k2');
    const value = p.buf('v');
    const empty = p.descriptors(ctx, '', 'params');
    const ok = p.descriptors(ctx, 'ok', 'params');
    p.method('go', `${call('storage_write', key, value, 0)} drop ${call('xcall', empty)} ${call('xcall', ok)} ${call('ret_i64', 1)}`);
    p.method('ok', `${call('storage_write', key2, value, 0)} drop ${call('ret_i64', 2)}`);
    const code = await t.host.deploy(await p.build());
    const o = await t.host.call({ codeHash: code, method: 'go', contextId: ctx });
    assert.equal(o.applied, true, JSON.stringify(o.result));
    assert.equal(o.followUps.length, 2);
    assert.equal(o.followUps[0]!.outcome, undefined);
    assert.equal(o.followUps[0]!.skipped, 'no function: the xcall names an empty function');
    assert.equal(o.followUps[1]!.outcome?.applied, true, o.followUps[1]!.skipped ?? o.followUps[1]!.outcome?.result.code);
    assert.deepEqual(
      t.host.state(ctx).entries.map(([k, v]) => [text(k), text(v)]).filter(([k]) => k === 'k' || k === 'k2'),
      [['k', 'v'], ['k2', 'v']],
    );
  } finally {
    await t.close();
  }
});
