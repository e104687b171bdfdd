/**
 * Early runs (src/host/speculation.ts): the next call on a context starts while the previous one commits, and is
 * answered as after it. Every call's outcome must be the one it gets when the caller waits for each call before
 * submitting the next: through real VM processes and a real LMDB store, with the calls submitted at once.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { Host, type Outcome } from '../../src/host/host.js';
import type { ExecutionMode } from '../../src/host/call-types.js';
import { createMemoryStore } from '../../src/host/state/memory-store.js';
import type { KvStore } from '../../src/host/state/kv.js';
import { contract, id32, tempDir, text, utf8 } from '../helpers.js';

const returned = (o: Outcome): string => {
  assert.equal(o.result.code, 'return', `${o.result.code}: ${'message' in o.result ? o.result.message : ''}`);
  return o.result.code === 'return' && o.result.value instanceof Uint8Array ? text(o.result.value) : String(o.result.code === 'return' ? o.result.value : '');
};

for (const mode of ['pool', 'oneshot'] as ExecutionMode[]) {
  describe(`early runs (${mode})`, () => {
    const dir = tempDir();
    let host: Host;
    let kv: Uint8Array;
    let calls: Uint8Array;
    before(async () => {
      host = await Host.open({ dataDir: dir.path, mode, poolSize: 2 });
      kv = await host.deploy(contract('kv-store'));
      calls = await host.deploy(contract('host-calls'));
    });
    after(async () => {
      await host.close();
      dir.remove();
    });
    const on = (codeHash: Uint8Array, ctx: string) => (method: string, input: unknown): Promise<Outcome> =>
      host.call({ codeHash, method, input: utf8(JSON.stringify(input)), contextId: id32(ctx) });

    test("each call submitted at once sees the previous call's writes, and the state is the one of calls awaited one by one", async () => {
      const steps: [string, unknown][] = [
        ['set', { key: 'a', value: '1' }],
        ['get', { key: 'a' }],
        ['set', { key: 'a', value: '2' }],
        ['get', { key: 'a' }],
        ['set', { key: 'b', value: 'x' }],
        ['remove', { key: 'a' }],
        ['get', { key: 'a' }],
        ['entries', {}],
        ['set', { key: 'c', value: 'y' }],
        ['entries', {}],
      ];
      const runs0 = host.earlyRunStats.runs;
      const together = on(kv, `${mode}-together`);
      const atOnce = await Promise.all(steps.map(([m, i]) => together(m, i)));
      const serial = on(kv, `${mode}-serial`);
      const oneByOne: Outcome[] = [];
      for (const [m, i] of steps) oneByOne.push(await serial(m, i));
      assert.deepEqual(atOnce.map(returned), oneByOne.map(returned));
      assert.deepEqual(atOnce.map(returned).slice(0, 4), ['null', '"1"', 'null', '"2"']);
      assert.deepEqual(atOnce.map((o) => o.applied), oneByOne.map((o) => o.applied));
      assert.deepEqual(host.state(id32(`${mode}-together`)), host.state(id32(`${mode}-serial`)));
      // The calls did run early (each after the first started while the one before it committed), and none was
      // run again: each was answered from the writes the previous call then applied.
      assert.ok(host.earlyRunStats.runs - runs0 >= steps.length - 1, `early runs: ${host.earlyRunStats.runs - runs0}`);
      assert.equal(host.earlyRunStats.discarded, 0);
    });

    test('a call whose commit is refused applied nothing: the call after it reads the state before it', async () => {
      const ctx = `${mode}-refused`;
      const c = on(calls, ctx);
      await on(kv, ctx)('set', { key: 'seed', value: 's' }); // some state, so the context's root is not empty
      const discarded0 = host.earlyRunStats.discarded;
      // The executor is not a member of the context: the host refuses add_member at commit, and with it the
      // write the call returned with. The read queued behind it ran early, answered "new" from that write.
      const [refused, read] = await Promise.all([c('write_and_add_member', { key: 'k', value: 'new', public_key: '11'.repeat(32) }), c('state_read', { key: 'k' })]);
      assert.equal(refused.result.code, 'vm_error');
      assert.equal(refused.applied, false);
      assert.equal(returned(read), 'null');
      assert.equal(host.earlyRunStats.discarded - discarded0, 1);
      // The same for its private write.
      const [, privateRead] = await Promise.all([c('write_and_add_member', { key: 'k', value: 'new', public_key: '11'.repeat(32) }), c('private_read', { key: 'k' })]);
      assert.equal(returned(privateRead), 'null');
      assert.equal(host.earlyRunStats.discarded - discarded0, 2);
      // A read of a key the refused call did not write stands.
      const [again, other] = await Promise.all([c('write_and_add_member', { key: 'k', value: 'new', public_key: '11'.repeat(32) }), c('state_read', { key: 'other' })]);
      assert.equal(again.applied, false);
      assert.equal(returned(other), 'null');
      assert.equal(host.earlyRunStats.discarded - discarded0, 2);
    });

    test("private storage reads after a call that applied are answered from its writes", async () => {
      const c = on(calls, `${mode}-private`);
      const discarded0 = host.earlyRunStats.discarded;
      const [write, read, write2, read2, removed, read3] = await Promise.all([
        c('private_write', { key: 'p', value: 'one' }),
        c('private_read', { key: 'p' }),
        c('private_write', { key: 'p', value: 'two' }),
        c('private_read', { key: 'p' }),
        c('private_remove', { key: 'p' }),
        c('private_read', { key: 'p' }),
      ]);
      assert.deepEqual([write, read, write2, read2, removed, read3].map(returned), ['true', '"one"', 'true', '"two"', '"two"', 'null']);
      assert.equal(host.earlyRunStats.discarded, discarded0);
    });

    test('a call that asks the node anything else (here membership) after a call that applied is run again on the committed state', async () => {
      const c = on(calls, `${mode}-node`);
      const discarded0 = host.earlyRunStats.discarded;
      // Membership is answered from the store as it was, not as after the previous call; every call queued behind
      // another starts early, whatever the executor. The spin then runs out of its small gas.
      const [first, spun] = await Promise.all([
        c('private_write', { key: 'q', value: 'v' }),
        host.call({ codeHash: calls, method: 'member_then_spin', input: utf8('{}'), contextId: id32(`${mode}-node`), gasLimit: 50_000_000n }),
      ]);
      assert.equal(returned(first), 'true');
      assert.equal(spun.result.code, 'vm_error');
      assert.equal(host.earlyRunStats.discarded - discarded0, 1);
    });

    test('a call that failed (user error) lets the call after it stand on the state before it', async () => {
      const k = on(kv, `${mode}-failed`);
      await k('set', { key: 'a', value: 'before' });
      const discarded0 = host.earlyRunStats.discarded;
      const [bad, read] = await Promise.all([k('set', { key: 'a' }), k('get', { key: 'a' })]);
      assert.equal(bad.result.code, 'user_error');
      assert.equal(returned(read), '"before"');
      assert.equal(host.earlyRunStats.discarded, discarded0);
    });
  });
}

describe('early runs: what they report and what they repeat', () => {
  test("an early run's VM time ends with its VM's work, not with the previous call's commit", async () => {
    // A store whose commits take 1.5 s: the early read ends long before the write before it is durable.
    const inner = createMemoryStore();
    const slow: KvStore = Object.assign(Object.create(inner) as KvStore, {
      write: async <T>(fn: Parameters<KvStore['write']>[0]): Promise<T> => {
        await new Promise((r) => setTimeout(r, 1500));
        return inner.write(fn) as Promise<T>;
      },
    });
    const host = await Host.open({ store: slow, poolSize: 2 });
    try {
      const kv = await host.deploy(contract('kv-store'));
      const call = (method: string, input: unknown): Promise<Outcome> => host.call({ codeHash: kv, method, input: utf8(JSON.stringify(input)), contextId: id32('slow') });
      await call('set', { key: 'warm', value: 'up' });
      const queued = new Map<number, number>();
      const finished = new Map<number, { at: number; vmEnd: number }>();
      host.events.on('call.queued', (e) => queued.set(e.callId, performance.now()));
      host.events.on('call.finished', (e) => finished.set(e.callId, { at: performance.now(), vmEnd: queued.get(e.callId)! + e.durations.queueMs + e.durations.vmMs }));
      const [set, get] = await Promise.all([call('set', { key: 'a', value: '1' }), call('get', { key: 'a' })]);
      assert.equal(returned(get), '"1"');
      assert.equal(host.earlyRunStats.runs, 1);
      // The read's VM work ended before the write's commit was done (durations are measured on one clock).
      assert.ok(finished.get(get.callId)!.vmEnd < finished.get(set.callId)!.at, JSON.stringify([...finished]));
    } finally {
      await host.close();
    }
  });

  test('a fetch made by an early run behind a call that applied is not made again', async () => {
    let requests = 0;
    const server = createServer((_req, res) => {
      requests++;
      res.end('pong');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const host = await Host.open({ poolSize: 2, fetch: { allow: [origin] } });
    try {
      const calls = await host.deploy(contract('host-calls'));
      const c = (method: string, input: unknown): Promise<Outcome> => host.call({ codeHash: calls, method, input: utf8(JSON.stringify(input)), contextId: id32('fetching') });
      const [first, fetched] = await Promise.all([c('private_write', { key: 'q', value: 'v' }), c('http_fetch', { url: `${origin}/ping`, method: 'POST', body: 'once' })]);
      assert.equal(returned(first), 'true');
      assert.deepEqual(JSON.parse(returned(fetched)), { ok: true, body: 'pong' });
      assert.deepEqual([requests, host.earlyRunStats.runs, host.earlyRunStats.discarded], [1, 1, 0]);
    } finally {
      await host.close();
      server.close();
    }
  });

  test('a VM that crashes in an early run that is then run again is reported (vm.crashed)', async () => {
    const host = await Host.open({ poolSize: 2 });
    try {
      const calls = await host.deploy(contract('host-calls'));
      const c = (method: string, input: unknown, gasLimit?: bigint): Promise<Outcome> =>
        host.call({ codeHash: calls, method, input: utf8(JSON.stringify(input)), contextId: id32('crashing'), deadlineMs: 120_000, ...(gasLimit !== undefined ? { gasLimit } : {}) });
      await c('private_write', { key: 'warm', value: 'up' });
      const crashed: number[] = [];
      host.events.on('vm.crashed', (e) => crashed.push(e.pid));
      const started = new Promise<number>((resolve) => host.events.on('call.started', (e) => e.method === 'member_then_spin' && resolve(e.vmPid!)));
      // The spin asks the node about membership, so behind a call that applied it is thrown away and run again.
      const first = c('private_write', { key: 'k', value: 'v' });
      const spin = c('member_then_spin', {}, 4_000_000_000n);
      const pid = await started;
      await first;
      // Killed once it spins: after its membership request, which holds a snapshot of the node's tables.
      while (host.node.openSnapshots === 0) await new Promise((r) => setTimeout(r, 10));
      process.kill(pid, 'SIGKILL');
      const spun = await spin;
      assert.equal(host.earlyRunStats.discarded, 1);
      // The rerun ends by the contract's own limit (its gas; the deadline is far), and the killed VM of the early
      // run was reported.
      assert.equal(spun.result.code, 'vm_error');
      assert.ok(crashed.includes(pid), `vm.crashed for ${pid}: ${JSON.stringify(crashed)}`);
    } finally {
      await host.close();
    }
  });
});
