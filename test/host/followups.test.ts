/**
 * Event handlers and xcalls: after a successful call the host runs them as calls of their own, within breadth
 * and depth limits, and reports each under its parent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Host, type Outcome } from '../../src/host/host.js';
import { contract, id32, tempDir, text, utf8 } from '../helpers.js';

describe('follow-up calls (event handlers and xcalls)', () => {
  const dir = tempDir();
  let host: Host;
  let code: Uint8Array;
  const state = (name: string): Record<string, string> =>
    Object.fromEntries(host.state(id32(name)).entries.map(([k, v]) => [text(k), text(v)]));
  const call = (method: string, ctx: string, input = ''): Promise<Outcome> =>
    host.call({ codeHash: code, method, input: utf8(input), contextId: id32(ctx) });

  before(async () => {
    host = await Host.open({ dataDir: dir.path, poolSize: 2, followUps: { maxBreadth: 8, maxDepth: 3 } });
    code = await host.deploy(contract('followups'));
  });
  after(async () => {
    await host.close();
    dir.remove();
  });

  test('a handler runs after the call that emitted it, with the event data as input, and is applied on its own', async () => {
    const o = await call('emit_handled', 'h1', 'payload-1');
    assert.equal(o.result.code, 'return');
    assert.equal(o.followUps.length, 1);
    const f = o.followUps[0]!;
    assert.deepEqual([f.kind, f.method, f.outcome?.result.code, f.outcome?.applied], ['handler', 'on_event', 'return', true]);
    assert.deepEqual(f.outcome?.logs, ['handled payload-1']);
    assert.deepEqual(state('h1'), { seen: '1', 'handled:0': 'payload-1' });
  });

  test('an xcall runs the method in the target context with the params as input', async () => {
    const target = Buffer.from(id32('xc-target')).toString('hex');
    const o = await call('xcall_to', 'xc-source', target);
    const f = o.followUps[0]!;
    assert.deepEqual([f.kind, f.method, Buffer.from(f.contextId).toString('hex')], ['xcall', 'on_event', target]);
    assert.equal(f.outcome?.result.code, 'return');
    assert.deepEqual(state('xc-target'), { seen: '1', 'handled:0': 'from-xcall' });
    assert.deepEqual(state('xc-source'), {});
  });

  test("an xcall into a context created with an application runs that application's code", async () => {
    const kv = await host.deploy(contract('kv-store'));
    const created = await call('create_context', 'creator', JSON.stringify({ app: Buffer.from(kv).toString('hex'), alias: 'kv-app' }));
    assert.equal(created.result.code, 'return', JSON.stringify(created.result));
    const target = host.node.resolveContextAlias('kv-app');
    assert.ok(target, 'the context was created with its alias');
    const o = await call('xcall_json', 'creator', JSON.stringify({ context_id: Buffer.from(target).toString('hex'), function: 'set', params: '{"key":"x","value":"y"}' }));
    const f = o.followUps[0]!;
    assert.equal(f.outcome?.result.code, 'return', JSON.stringify(f.outcome?.result));
    const entries = Object.fromEntries(host.state(target).entries.map(([k, v]) => [text(k), text(v)]));
    assert.equal(entries['e:x'], 'y', 'kv-store.set ran in the created context');
  });

  test('the depth limit stops a handler that re-emits itself', async () => {
    let o: Outcome | undefined = await call('chain', 'chain');
    let levels = 0;
    while (o?.followUps[0]?.outcome) {
      levels++;
      o = o.followUps[0].outcome;
    }
    assert.equal(levels, 3);
    assert.match(o!.followUps[0]!.skipped ?? '', /^depth limit/);
  });

  test('the breadth limit runs at most 8 follow-ups per call, in order', async () => {
    const o = await call('fanout', 'fan');
    assert.equal(o.followUps.length, 12);
    assert.equal(o.followUps.filter((f) => f.outcome?.result.code === 'return').length, 8);
    assert.ok(o.followUps.slice(8).every((f) => /^breadth limit/.test(f.skipped ?? '')));
    assert.equal(state('fan').seen, '8');
    assert.equal(state('fan')['handled:7'], '7', 'handlers ran in emission order');
  });

  test('a failed call runs no handlers', async () => {
    const o = await call('emit_then_fail', 'failed');
    assert.equal(o.result.code, 'user_error');
    assert.equal(o.events.length, 1, 'the event is still reported');
    assert.deepEqual(o.followUps, []);
    assert.deepEqual(state('failed'), {});
  });
});
