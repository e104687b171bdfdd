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

  test("an xcall into the caller's own context runs the caller's contract with the params as input", async () => {
    const own = Buffer.from(id32('xc-self')).toString('hex');
    const o = await call('xcall_to', 'xc-self', own);
    const f = o.followUps[0]!;
    assert.deepEqual([f.kind, f.method, Buffer.from(f.contextId).toString('hex')], ['xcall', 'on_event', own]);
    assert.equal(f.outcome?.result.code, 'return');
    assert.deepEqual(state('xc-self'), { seen: '1', 'handled:0': 'from-xcall' });
  });

  test("an xcall into another context without an application is refused: the caller's code never runs there", async () => {
    // The victim's state was made by another contract (kv-store); the xcall used to run the caller's contract in
    // it, which could then write anything there.
    const kv = await host.deploy(contract('kv-store'));
    await host.call({ codeHash: kv, method: 'set', input: utf8('{"key":"a","value":"mine"}'), contextId: id32('xc-victim') });
    const before = host.state(id32('xc-victim'));
    const victim = Buffer.from(id32('xc-victim')).toString('hex');
    const o = await call('xcall_to', 'xc-attacker', victim);
    assert.equal(o.result.code, 'return');
    const f = o.followUps[0]!;
    assert.equal(f.outcome, undefined);
    assert.equal(f.skipped, `no application: context ${victim} has no deployed application (one given to context_create), and an xcall runs only a context's own application (or the caller's contract in its own context)`);
    assert.deepEqual(host.state(id32('xc-victim')), before);
  });

  test("one gas limit for the call and its follow-ups: what the tree used is gone, the rest are skipped", async () => {
    // Each follow-up used to get the whole gas limit again: 8 wide and 3 deep, one call could spend 585 times it.
    const free = await call('fanout', 'gas-free');
    const handler = free.followUps[0]!.outcome!.gasUsed;
    const limit = free.gasUsed + 2n * handler + handler / 2n;
    const o = await host.call({ codeHash: code, method: 'fanout', input: utf8(''), contextId: id32('gas-tree'), gasLimit: limit });
    const codes = o.followUps.map((f) => f.outcome?.result.code ?? 'skipped');
    assert.deepEqual(codes.slice(0, 3), ['return', 'return', 'vm_error'], JSON.stringify(o.followUps[2]?.outcome?.result));
    assert.match(JSON.stringify(o.followUps[2]!.outcome!.result), /out of gas|OutOfGas|out_of_gas/i);
    assert.ok(o.followUps.slice(3, 8).every((f) => f.skipped === `gas limit: the call and its follow-ups used all ${limit} gas of the call's gas limit`), JSON.stringify(o.followUps.slice(3)));
    const used = o.gasUsed + o.followUps.reduce((n, f) => n + (f.outcome?.gasUsed ?? 0n), 0n);
    assert.equal(used, limit, 'the tree used exactly its limit');
    assert.equal(state('gas-tree').seen, '2');
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
