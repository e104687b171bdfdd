/**
 * Follow-ups through real VM processes: a call whose follow-up cannot run is still the applied call it is (its
 * caller gets its outcome, the follow-up says why it has none, and the follow-ups after it run); and every
 * follow-up gets a seed of its own, so neither its randomness nor the ids it derives repeat the parent's: for a
 * call given a seed, and for one given none whose follow-up reruns its method in its context with its input
 * (that follow-up's message was the parent's, and so was the seed derived from it).
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

for (const seeded of [true, false]) {
  test(`${seeded ? 'a seeded' : 'an unseeded'} call's xcall rerunning its method, context and input gets its own seed`, { timeout: 60_000 }, async () => {
    const t = await openHost();
    try {
      const tag = seeded ? 'seeded-rerun' : 'unseeded-rerun';
      const ctx = id32(tag);
      const p = new Probe();
      const flag = p.buf('flag');
      const one = p.buf('1');
      const proto = p.buf('proto');
      const app = p.buf(id32('some-app'));
      const args = p.buf('');
      const aliasParent = p.buf(`${tag}-parent`);
      const aliasChild = p.buf(`${tag}-child`);
      const self = p.descriptors(ctx, 'go', 'same-input');
      const random = p.out(8);
      const id = p.out(32);
      const actionsA = p.buf(Uint8Array.of(1, 0, 0, 0, 2, 2, 0, 0, 0));
      const actionsB = p.buf(Uint8Array.of(1, 0, 0, 0, 2, 7, 0, 0, 0));
      // The first run (no flag yet) creates a context, proposes and xcalls itself with the same input; the rerun
      // creates another context and proposes other actions. Both return 8 random bytes.
      p.method('go', `(if (i32.eqz ${call('storage_read', flag, 0)})
        (then (drop ${call('storage_write', flag, one, 0)}) ${call('context_create', proto, app, args, aliasParent)} ${call('send_proposal', actionsA, id.desc)} ${call('xcall', self)})
        (else ${call('context_create', proto, app, args, aliasChild)} ${call('send_proposal', actionsB, id.desc)}))
        ${call('random_bytes', random.desc)} ${call('ret_mem', random.at, 8)}`);
      const code = await t.host.deploy(await p.build());
      const o = await t.host.call({ codeHash: code, method: 'go', input: utf8('same-input'), contextId: ctx, executorId: id32('alice'), ...(seeded ? { seed: id32('tx-1') } : {}) });
      assert.equal(o.applied, true, o.result.code);
      const f = o.followUps[0]?.outcome;
      assert.equal(f?.applied, true, o.followUps[0]?.skipped ?? f?.result.code);
      const bytes = (x: typeof o): string => Buffer.from((x.result as { value: Uint8Array }).value).toString('hex');
      assert.notEqual(bytes(f), bytes(o), "the rerun's random bytes are not the parent's");
      assert.notEqual(t.host.node.resolveContextAlias(`${tag}-parent`), undefined, "the parent's context was created");
      assert.notEqual(t.host.node.resolveContextAlias(`${tag}-child`), undefined, "the rerun's context was created");
      assert.equal(t.host.node.proposals(ctx).length, 2, "the rerun's proposal was recorded beside the parent's");
    } finally {
      await t.close();
    }
  });
}

test('a follow-up that ends by a node failure (its deadline) halts the rest of the tree; those applied before it stay applied', { timeout: 120_000 }, async () => {
  // The deadline is the only thing that can stop `spin` (its gas is unlimited), and the other methods take
  // milliseconds of a deadline that counts only once a VM has taken them: the timeout is certain.
  const t = await openHost({ deadlineMs: 3000 });
  try {
    const ctx = id32('follow-up-halt');
    const p = new Probe();
    const write = (key: string): string => `(drop ${call('storage_write', p.buf(key), p.buf('applied'), 0)})`;
    const emit = (handler: string): string => call('emit_with_handler', p.descriptors('kind', ''), p.buf(handler));
    // go -> [mid -> [spin, after_spin], last]: spin times out; after_spin and last must not run.
    p.method('go', `${write('go')} ${emit('mid')} ${emit('last')} ${call('ret_i64', 0)}`);
    p.method('mid', `${write('mid')} ${emit('spin')} ${emit('after_spin')} ${call('ret_i64', 1)}`);
    p.method('spin', '(loop $l (br $l))');
    p.method('after_spin', `${write('after_spin')} ${call('ret_i64', 2)}`);
    p.method('last', `${write('last')} ${call('ret_i64', 3)}`);
    const code = await t.host.deploy(await p.build());
    const halts: unknown[] = [];
    t.host.events.on('call.halted', (e) => halts.push(e));
    const o = await t.host.call({ codeHash: code, method: 'go', contextId: ctx, gasLimit: 10n ** 15n });
    assert.equal(o.applied, true, JSON.stringify(o.result));
    const [mid, last] = o.followUps;
    assert.equal(mid!.outcome?.applied, true, 'the follow-up that ran before the failure stays applied');
    const [spin, afterSpin] = mid!.outcome!.followUps;
    assert.deepEqual(spin!.outcome?.result, { code: 'internal_error', message: 'timeout', fingerprint: null });
    assert.equal(afterSpin!.outcome, undefined);
    assert.match(afterSpin!.skipped ?? '', /^halted: the earlier follow-up handler spin \(call \d+\) ended by a node failure \(internal_error timeout\)/);
    assert.equal(last!.outcome, undefined);
    assert.match(last!.skipped ?? '', /^halted: /);
    // The outcome names the failed follow-up, why, and how many did not run; so does the call.halted event.
    assert.ok(o.halted, 'the embedder sees that the tree halted');
    assert.deepEqual({ ...o.halted, contextId: undefined }, {
      callId: spin!.outcome!.callId,
      kind: 'handler',
      contextId: undefined,
      method: 'spin',
      result: { code: 'internal_error', message: 'timeout', fingerprint: null },
      reason: 'internal_error timeout',
      notRun: 2,
    });
    assert.equal(mid!.outcome!.halted, o.halted, "set on the failed follow-up's parent too");
    assert.equal(halts.length, 1);
    assert.equal((halts[0] as { callId: number }).callId, o.callId);
    const keys = t.host.state(ctx).entries.map(([k]) => text(k)).sort();
    assert.deepEqual(keys, ['go', 'mid'], 'after_spin and last were not applied');
  } finally {
    await t.close();
  }
});
