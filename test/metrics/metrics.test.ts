/**
 * The metric set against real calls through real VM processes: after a concurrent burst, the counters add up to
 * the calls made (by result and method), the histograms counted every call, the protocol request counters
 * match the events, and labels stay bounded (method names capped, no context ids).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Host, type HostEventMap } from '../../src/index.js';
import { HostMetrics } from '../../src/metrics/host-metrics.js';
import { contract, id32, tempDir, utf8 } from '../helpers.js';
import { samples, sum } from './exposition.js';

test('after a burst of calls the counters add up to the calls made; labels are bounded', async () => {
  const dir = tempDir();
  const host = await Host.open({ dataDir: dir.path, poolSize: 2 });
  const metrics = new HostMetrics(host, { methodLabels: 2 });
  const finished: HostEventMap['call.finished'][] = [];
  host.events.on('call.finished', (e) => finished.push(e));
  try {
    const kv = await host.deploy(contract('kv-store'));
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 10; i++) calls.push(host.call({ codeHash: kv, method: 'set', input: utf8(`{"key":"k${i}","value":"v"}`), contextId: id32(`m-${i % 4}`) }));
    for (let i = 0; i < 3; i++) calls.push(host.call({ codeHash: kv, method: 'get_result', input: utf8('{"key":"missing"}'), contextId: id32(`m-${i}`) }));
    for (let i = 0; i < 2; i++) calls.push(host.call({ codeHash: kv, method: 'no_such_method', contextId: id32('m-x'), mode: 'oneshot' }));
    calls.push(host.call({ codeHash: kv, method: 'get', input: utf8('{"key":"k1"}'), contextId: id32('m-1') }));
    await Promise.all(calls);
    const text = await metrics.registry.metrics();
    const made = calls.length;

    assert.equal(sum(text, 'hostlink_calls_total'), made);
    assert.equal(sum(text, 'hostlink_calls_total', { result: 'return' }), 11);
    assert.equal(sum(text, 'hostlink_calls_total', { result: 'user_error' }), 3);
    assert.equal(sum(text, 'hostlink_calls_total', { result: 'vm_error' }), 2);
    assert.equal(sum(text, 'hostlink_call_errors_total', { result: 'user_error', reason: 'user' }), 3);
    assert.equal(sum(text, 'hostlink_call_errors_total', { result: 'vm_error', reason: 'method_not_found' }), 2);
    assert.equal(sum(text, 'hostlink_calls_in_flight'), 0);
    for (const phase of ['queue', 'vm', 'apply', 'total']) assert.equal(sum(text, 'hostlink_call_duration_seconds_count', { phase }), made, phase);
    assert.equal(sum(text, 'hostlink_call_gas_used_count'), made);
    assert.equal(sum(text, 'hostlink_call_round_trips_count'), made);
    assert.equal(sum(text, 'hostlink_call_round_trips_sum'), finished.reduce((n, e) => n + e.roundTrips, 0));
    // Every call that reached a VM sent exactly one result.
    assert.equal(sum(text, 'hostlink_host_calls_total', { call: 'consume_result' }), made);
    const requests = finished.reduce((n, e) => n + Object.values(e.hostCalls).reduce((m, c) => m + c.count, 0), 0);
    assert.equal(sum(text, 'hostlink_host_calls_total'), requests);
    const requestBytes = finished.reduce((n, e) => n + Object.values(e.hostCalls).reduce((m, c) => m + c.requestBytes, 0), 0);
    assert.equal(sum(text, 'hostlink_host_call_bytes_total', { direction: 'request' }), requestBytes);
    assert.equal(sum(text, 'hostlink_vm_launches_total', { mode: 'oneshot' }), 2);
    // A burst of submits while the pool starts must not start more VMs than its size.
    assert.equal(sum(text, 'hostlink_vm_launches_total', { mode: 'pool' }), 2);
    assert.equal(sum(text, 'hostlink_pool_workers'), 2);
    assert.equal(sum(text, 'hostlink_vm_processes', { mode: 'pool' }), 2);
    // Every call that returned wrote its outcome once; commits carried them in groups of one or more.
    assert.equal(sum(text, 'hostlink_commit_writes_total'), 11);
    const commits = sum(text, 'hostlink_commits_total');
    assert.ok(commits >= 1 && commits <= 11, `commits ${commits}`);
    assert.ok(sum(text, 'hostlink_commit_held_writes_total') <= 11);
    assert.deepEqual(host.commitStats, { writes: 11, commits, held: sum(text, 'hostlink_commit_held_writes_total') });
    // Every call queued behind another on its context started early (16 calls on 5 contexts); none read the node.
    assert.deepEqual([sum(text, 'hostlink_early_runs_total'), sum(text, 'hostlink_early_runs_discarded_total')], [11, 0]);
    assert.deepEqual(host.earlyRunStats, { runs: 11, discarded: 0 });

    // Bounded labels: two method names got their own value, the third is "_other"; no label carries an id.
    const methods = new Set(samples(text).filter((s) => s.name === 'hostlink_calls_total').map((s) => s.labels['method']));
    assert.equal(methods.size, 3, [...methods].join(','));
    assert.ok(methods.has('_other'));
    assert.ok(!/[0-9a-f]{64}/.test(text), 'no context id or code hash in the exposition');
  } finally {
    metrics.close();
    await host.close();
    dir.remove();
  }
});
