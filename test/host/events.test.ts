/**
 * Host events through real VM processes: every call's queued, started and finished events, linked by its id,
 * with the duration split, the protocol requests it made (counted per method and traced in order), VM
 * launches, exits and crashes, and listeners that throw without disturbing the host.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createMemoryStore, Host, type HostEventMap, type HostEventName, type HostLogger } from '../../src/index.js';
import { HostMetrics } from '../../src/metrics/host-metrics.js';
import { sum } from '../metrics/exposition.js';
import { contract, id32, killBusyVm, tempDir, utf8 } from '../helpers.js';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const FAKE_VM = join(dirname(fileURLToPath(import.meta.url)), 'fake-vm.js');

const UNLIMITED_GAS = 10n ** 15n;

/** Records every event of the host, in order. */
function record(host: Host): { name: HostEventName; e: HostEventMap[HostEventName] }[] {
  const seen: { name: HostEventName; e: HostEventMap[HostEventName] }[] = [];
  for (const name of ['call.queued', 'call.started', 'call.finished', 'call.failed', 'call.halted', 'vm.launched', 'vm.exited', 'vm.crashed'] as const) {
    host.events.on(name, (e) => seen.push({ name, e }));
  }
  return seen;
}

const errors: string[] = [];
const logger: HostLogger = { debug() {}, info() {}, warn() {}, error: (m, f) => errors.push(`${m} ${JSON.stringify(f)}`) };

describe('host events', () => {
  const dir = tempDir();
  let host: Host;
  let kv: Uint8Array;
  let hold: Uint8Array;
  let followups: Uint8Array;
  let seen: ReturnType<typeof record>;
  before(async () => {
    host = await Host.open({ dataDir: dir.path, poolSize: 2, killGraceMs: 200, logger });
    seen = record(host);
    kv = await host.deploy(contract('kv-store'));
    hold = await host.deploy(contract('hold'));
    followups = await host.deploy(contract('followups'));
  });
  after(async () => {
    await host.close();
    dir.remove();
  });

  for (const mode of ['pool', 'oneshot'] as const) {
    test(`${mode}: queued, started, finished with one id; durations add up; requests counted and traced`, async () => {
      const from = seen.length;
      const ctx = id32(`events-${mode}`);
      const o = await host.call({ codeHash: kv, method: 'set', input: utf8('{"key":"a","value":"b"}'), contextId: ctx, mode });
      const mine = seen.slice(from).filter((s) => s.name.startsWith('call.') && (s.e as HostEventMap['call.queued']).callId === o.callId);
      assert.deepEqual(mine.map((s) => s.name), ['call.queued', 'call.started', 'call.finished']);
      const started = mine[1]!.e as HostEventMap['call.started'];
      const f = mine[2]!.e as HostEventMap['call.finished'];
      assert.equal(f.method, 'set');
      assert.equal(f.mode, mode);
      assert.deepEqual(f.contextId, ctx);
      assert.deepEqual(f.codeHash, kv);
      assert.equal(f.parentCallId, null);
      assert.deepEqual([f.result, f.reason, f.message, f.applied], ['return', 'ok', null, true]);
      assert.equal(f.gasUsed, o.gasUsed);
      assert.ok(f.gasUsed > 0n);
      assert.deepEqual(f.stateRoot, o.stateRoot);
      assert.equal(f.vmPid, started.vmPid);
      assert.ok(started.vmPid > 0);
      const d = f.durations;
      for (const v of [d.queueMs, d.vmMs, d.applyMs]) assert.ok(v >= 0, JSON.stringify(d));
      assert.ok(Math.abs(d.queueMs + d.vmMs + d.applyMs - d.totalMs) < 1e-6, JSON.stringify(d));
      // The VM asked for the code at least once (a fresh one-shot VM always does), read the key, sent its result.
      const counts = f.hostCalls;
      assert.equal(counts['consume_result']?.count, 1);
      assert.ok((counts['storage_read']?.count ?? 0) + (counts['storage_read_many']?.count ?? 0) >= 1, JSON.stringify(counts));
      if (mode === 'oneshot') assert.equal(counts['get_code']?.count, 1);
      assert.equal(counts['hello'], undefined, 'the handshake is not part of the call');
      assert.equal(counts['next_message'], undefined, 'waiting for work is not part of the call');
      const total = Object.values(counts).reduce((n, c) => n + c.count, 0);
      assert.equal(f.roundTrips, total);
      assert.equal(f.trace.length, total);
      assert.equal(f.traceDropped, 0);
      assert.equal(f.trace.at(-1)!.method, 'consume_result');
      for (const [method, c] of Object.entries(counts)) {
        const entries = f.trace.filter((t) => t.method === method);
        assert.equal(entries.reduce((n, t) => n + t.requestBytes, 0), c.requestBytes);
        assert.equal(entries.reduce((n, t) => n + t.responseBytes, 0), c.responseBytes);
      }
      for (let i = 1; i < f.trace.length; i++) assert.ok(f.trace[i]!.atMs >= f.trace[i - 1]!.atMs);
      assert.ok(f.trace.every((t) => t.requestBytes > 0 && t.responseBytes > 0 && t.hostMs >= 0));
    });
  }

  test('a failed call reports its result code and a bounded reason; nothing applied', async () => {
    const from = seen.length;
    const o = await host.call({ codeHash: kv, method: 'get_result', input: utf8('{"key":"nope"}'), contextId: id32('events-fail') });
    const f = seen.slice(from).find((s) => s.name === 'call.finished')!.e as HostEventMap['call.finished'];
    assert.equal(f.callId, o.callId);
    assert.deepEqual([f.result, f.reason, f.applied], ['user_error', 'user', false]);
    assert.match(f.message ?? '', /NotFound/);
    const missing = await host.call({ codeHash: kv, method: 'no_such_method', contextId: id32('events-fail') });
    const g = seen.slice(from).filter((s) => s.name === 'call.finished').map((s) => s.e as HostEventMap['call.finished']).find((e) => e.callId === missing.callId)!;
    assert.deepEqual([g.result, g.reason], ['vm_error', 'method_not_found']);
  });

  test('pool VMs are reported launched; a VM killed mid-call is reported crashed and exited, and the call says so', async () => {
    const launched = seen.filter((s) => s.name === 'vm.launched').map((s) => s.e as HostEventMap['vm.launched']);
    // Serial calls need one pool VM: it asks for its next message with its result, so it is parked by the next call.
    assert.ok(launched.filter((l) => l.mode === 'pool').length >= 1, 'the pool started its VMs');
    assert.ok(launched.some((l) => l.mode === 'oneshot'), 'the one-shot call launched its own VM');
    const from = seen.length;
    const call = host.call({ codeHash: hold, method: 'write_then_loop', contextId: id32('events-crash'), deadlineMs: 20_000, gasLimit: UNLIMITED_GAS });
    const pids = [await killBusyVm(host)];
    const o = await call;
    // The exit event follows the process's exit, which may come after the call's end on a loaded machine:
    // wait for it (the test's timeout guards a hang) rather than for a fixed time.
    const exitedEvent = (): boolean => seen.slice(from).some((s) => s.name === 'vm.exited' && (s.e as HostEventMap['vm.exited']).pid === pids[0]);
    while (!exitedEvent()) await new Promise((r) => setTimeout(r, 10));
    const after = seen.slice(from);
    const crashed = after.find((s) => s.name === 'vm.crashed')?.e as HostEventMap['vm.crashed'] | undefined;
    assert.deepEqual(crashed && [crashed.pid, crashed.callId, crashed.signal], [pids[0], o.callId, 'SIGKILL']);
    const exited = after.filter((s) => s.name === 'vm.exited').map((s) => s.e as HostEventMap['vm.exited']);
    assert.ok(exited.some((x) => x.pid === pids[0] && x.signal === 'SIGKILL' && x.mode === 'pool'));
    const f = after.find((s) => s.name === 'call.finished')!.e as HostEventMap['call.finished'];
    assert.deepEqual([f.result, f.reason, f.vmPid], ['internal_error', 'vm_crash', pids[0]]);
  });

  test('a deadline is reported as reason timeout', async () => {
    const from = seen.length;
    const o = await host.call({ codeHash: hold, method: 'write_then_loop', contextId: id32('events-timeout'), deadlineMs: 500, gasLimit: UNLIMITED_GAS });
    const f = seen.slice(from).map((s) => s.e as HostEventMap['call.finished']).find((e) => e.callId === o.callId && 'reason' in e)!;
    assert.deepEqual([f.result, f.reason, f.applied], ['internal_error', 'timeout', false]);
  });

  test('follow-up calls name their parent call', async () => {
    const from = seen.length;
    const o = await host.call({ codeHash: followups, method: 'emit_handled', input: utf8('x'), contextId: id32('events-follow') });
    assert.equal(o.followUps.length, 1);
    const child = o.followUps[0]!.outcome!;
    const f = seen.slice(from).map((s) => s.e as HostEventMap['call.finished']).find((e) => 'reason' in e && e.callId === child.callId)!;
    assert.equal(f.parentCallId, o.callId);
    assert.equal(f.method, 'on_event');
  });

  test('a listener that throws is logged; the call and the other listeners are unaffected', async () => {
    const off = host.events.on('call.finished', () => {
      throw new Error('listener bug');
    });
    let others = 0;
    const off2 = host.events.on('call.finished', () => others++);
    const o = await host.call({ codeHash: kv, method: 'set', input: utf8('{"key":"t","value":"v"}'), contextId: id32('events-throw') });
    off();
    off2();
    assert.equal(o.result.code, 'return');
    assert.equal(others, 1);
    assert.ok(errors.some((e) => e.includes('listener') && e.includes('listener bug')), errors.join('\n'));
    const n = others;
    await host.call({ codeHash: kv, method: 'get', input: utf8('{"key":"t"}'), contextId: id32('events-throw') });
    assert.equal(others, n, 'off() removed the listener');
  });
});

test('a call that ends without an outcome (the store fails at commit) is reported failed; the in-flight gauge returns to 0', async () => {
  const store = createMemoryStore();
  const host = await Host.open({ store, poolSize: 1 });
  const metrics = new HostMetrics(host);
  const seen = record(host);
  try {
    const kv = await host.deploy(contract('kv-store'));
    const write = store.write.bind(store);
    store.write = () => Promise.reject(new Error('disk full'));
    await assert.rejects(host.call({ codeHash: kv, method: 'set', input: utf8('{"key":"a","value":"b"}'), contextId: id32('fail') }), /disk full/);
    store.write = write;
    const names = seen.filter((s) => s.name.startsWith('call.')).map((s) => s.name);
    assert.deepEqual(names, ['call.queued', 'call.started', 'call.failed']);
    assert.equal((seen.at(-1)!.e as HostEventMap['call.failed']).error, 'disk full');
    const text = await metrics.registry.metrics();
    assert.equal(sum(text, 'hostlink_calls_in_flight'), 0);
    assert.equal(sum(text, 'hostlink_call_failures_total'), 1);
    const o = await host.call({ codeHash: kv, method: 'set', input: utf8('{"key":"a","value":"b"}'), contextId: id32('fail') });
    assert.equal(o.applied, true, 'the host goes on after the failure');
  } finally {
    metrics.close();
    await host.close();
  }
});

test('events name the VM process the host started, not the pid a VM claims in hello', async () => {
  const host = await Host.open({ mode: 'oneshot', killGraceMs: 200, vmCommand: [process.execPath, FAKE_VM, 'lie-pid'] });
  const seen = record(host);
  try {
    const kv = await host.deploy(contract('kv-store'));
    const o = await host.call({ codeHash: kv, method: 'get', input: utf8('{"key":"a"}'), contextId: id32('lie') });
    assert.equal(o.result.code, 'internal_error');
    const launched = seen.find((s) => s.name === 'vm.launched')!.e as HostEventMap['vm.launched'];
    const started = seen.find((s) => s.name === 'call.started')!.e as HostEventMap['call.started'];
    const crashed = seen.find((s) => s.name === 'vm.crashed')!.e as HostEventMap['vm.crashed'];
    const finished = seen.find((s) => s.name === 'call.finished')!.e as HostEventMap['call.finished'];
    assert.notEqual(launched.pid, 1);
    assert.deepEqual([started.vmPid, crashed.pid, finished.vmPid], [launched.pid, launched.pid, launched.pid]);
  } finally {
    await host.close();
  }
});
