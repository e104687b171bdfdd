/**
 * The per-request trace is kept only for jobs someone will read it for: a call made while nobody listens to
 * `call.finished` records no entries, yet a listener added while the call runs still sees every request of
 * it counted (per method, round trips, and as dropped entries). Real VM processes, pool mode.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Host, type HostEventMap } from '../../src/index.js';
import { contract, id32, tempDir, utf8 } from '../helpers.js';

describe('trace recording follows the call.finished listeners', () => {
  const dir = tempDir();
  let host: Host;
  let kv: Uint8Array;
  before(async () => {
    host = await Host.open({ dataDir: dir.path, poolSize: 1, killGraceMs: 200 });
    kv = await host.deploy(contract('kv-store'));
  });
  after(async () => {
    await host.close();
    dir.remove();
  });

  const set = (ctx: string, key: string) => host.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key, value: 'v' })), contextId: id32(ctx) });

  test('listened from the start: every request is an entry', async () => {
    const seen: HostEventMap['call.finished'][] = [];
    const off = host.events.on('call.finished', (e) => seen.push(e));
    try {
      const o = await set('rec-on', 'a');
      const f = seen.find((e) => e.callId === o.callId)!;
      assert.ok(f.roundTrips >= 2, JSON.stringify(f.hostCalls)); // at least a read and the result
      assert.equal(f.trace.length, f.roundTrips);
      assert.equal(f.traceDropped, 0);
    } finally {
      off();
    }
  });

  test('a listener added while the call runs: no entries, every request counted and reported dropped', async () => {
    const seen: HostEventMap['call.finished'][] = [];
    let off: (() => void) | undefined;
    // Added when the VM takes the job: the job was made with nobody listening to call.finished.
    const offStarted = host.events.on('call.started', () => {
      off ??= host.events.on('call.finished', (e) => seen.push(e));
    });
    try {
      const o = await set('rec-late', 'b');
      const f = seen.find((e) => e.callId === o.callId)!;
      assert.ok(f, 'the late listener saw the call finish');
      assert.equal(f.hostCalls['consume_result']?.count, 1);
      assert.ok((f.hostCalls['storage_read']?.count ?? 0) + (f.hostCalls['storage_read_many']?.count ?? 0) >= 1, JSON.stringify(f.hostCalls));
      const total = Object.values(f.hostCalls).reduce((n, c) => n + c.count, 0);
      assert.equal(f.roundTrips, total);
      assert.deepEqual(f.trace, []);
      assert.equal(f.traceDropped, f.roundTrips);
    } finally {
      offStarted();
      off?.();
    }
  });
});
