/**
 * Follow-ups through real VM processes: a call whose follow-up cannot run is still the applied call it is (its
 * caller gets its outcome, the follow-up says why it has none, and the follow-ups after it run); and the
 * follow-ups of a call given a seed get seeds of their own, so neither their randomness nor the ids they derive
 * repeat the parent's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { id32, text, utf8 } from '../helpers.js';
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

test("a seeded call's handler gets its own seed: its random bytes, created context and proposal are its own", { timeout: 60_000 }, async () => {
  const t = await openHost();
  try {
    const p = new Probe();
    const proto = p.buf('proto');
    const app = p.buf(id32('some-app'));
    const args = p.buf('');
    const aliasParent = p.buf('seeded-parent');
    const aliasHandler = p.buf('seeded-handler');
    const event = p.descriptors('kind', 'same-input'); // the handler's input is the parent's
    const handler = p.buf('h');
    const random = p.out(8);
    const id = p.out(32);
    // One SetNumApprovals action each (Borsh: u32 count, tag 2, u32 value), different values.
    const actions = p.buf(Uint8Array.of(1, 0, 0, 0, 2, 2, 0, 0, 0));
    const otherActions = p.buf(Uint8Array.of(1, 0, 0, 0, 2, 7, 0, 0, 0));
    p.method('go', `${call('context_create', proto, app, args, aliasParent)} ${call('send_proposal', actions, id.desc)} ${call('emit_with_handler', event, handler)} ${call('random_bytes', random.desc)} ${call('ret_mem', random.at, 8)}`);
    p.method('h', `${call('context_create', proto, app, args, aliasHandler)} ${call('send_proposal', otherActions, id.desc)} ${call('random_bytes', random.desc)} ${call('ret_mem', random.at, 8)}`);
    const code = await t.host.deploy(await p.build());
    const ctx = id32('seeded-follow-up');
    const o = await t.host.call({ codeHash: code, method: 'go', input: utf8('same-input'), contextId: ctx, executorId: id32('alice'), seed: id32('tx-hash-1') });
    assert.equal(o.applied, true, o.result.code);
    const h = o.followUps[0]!.outcome!;
    assert.equal(h.applied, true, h.result.code);
    const bytes = (x: typeof o): string => Buffer.from((x.result as { value: Uint8Array }).value).toString('hex');
    assert.notEqual(bytes(h), bytes(o), "the handler's random bytes are not the parent's");
    assert.notEqual(t.host.node.resolveContextAlias('seeded-handler'), undefined, "the handler's context was created");
    assert.equal(t.host.node.proposals(ctx).length, 2, "the handler's proposal was recorded beside the parent's");
  } finally {
    await t.close();
  }
});
