/**
 * The Host with real VM processes over real sockets, on a real LMDB store in a temp dir.
 * Crashes, kills, deadlines and protocol violations must end one call with a clear error, change nothing,
 * and leave the host serving.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_GAS_LIMIT } from '../../src/protocol/message.js';
import { ROUND_TRIP_GAS } from '../../src/vm/host-functions.generated.js';
import { Host, type HostOptions, type Outcome } from '../../src/host/host.js';
import { contract, id32, killBusyVm, tempDir, text, utf8 } from '../helpers.js';

const FAKE_VM = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'fake-vm.js');
/** More gas than any test runs for: only the deadline or a kill can end such a call. */
const UNLIMITED_GAS = 1n << 62n;
const json = (o: object): Uint8Array => utf8(JSON.stringify(o));
const value = (o: Outcome): string => {
  assert.equal(o.result.code, 'return', JSON.stringify(o.result));
  const v = (o.result as { value: unknown }).value;
  return v instanceof Uint8Array ? text(v) : String(v);
};
const message = (o: Outcome): string => (o.result as { message: string }).message;

describe('Host: kv-store through real VM processes', () => {
  for (const transport of ['unix', 'tcp'] as const) {
    for (const mode of ['pool', 'oneshot'] as const) {
      test(`${mode} over ${transport}: values persist across a host restart`, async () => {
        const dir = tempDir();
        const ctx = id32(`kv-${transport}-${mode}`);
        try {
          let host = await Host.open({ dataDir: dir.path, transport, mode, poolSize: 2 });
          const codeHash = await host.deploy(contract('kv-store'));
          const set = await host.call({ codeHash, method: 'set', input: json({ key: 'greeting', value: 'hello' }), contextId: ctx });
          assert.equal(value(set), 'null');
          assert.equal(set.applied, true);
          assert.notDeepEqual(set.stateRoot, new Uint8Array(32));
          await host.close();
          host = await Host.open({ dataDir: dir.path, transport, mode });
          const get = await host.call({ codeHash, method: 'get', input: json({ key: 'greeting' }), contextId: ctx });
          assert.equal(value(get), '"hello"');
          assert.deepEqual(get.stateRoot, set.stateRoot, 'a read-only call keeps the root');
          assert.deepEqual(host.state(ctx).root, set.stateRoot);
          await host.close();
        } finally {
          dir.remove();
        }
      });
    }
  }
});

describe('Host: failures change nothing and the host keeps serving', () => {
  const dir = tempDir();
  let host: Host;
  let kv: Uint8Array;
  let hold: Uint8Array;
  let misbehave: Uint8Array;
  const ctx = id32('failures');
  const snapshot = () => host.state(ctx);

  before(async () => {
    host = await Host.open({ dataDir: dir.path, poolSize: 2, killGraceMs: 200 });
    kv = await host.deploy(contract('kv-store'));
    hold = await host.deploy(contract('hold'));
    misbehave = await host.deploy(contract('misbehave'));
    await host.call({ codeHash: kv, method: 'set', input: json({ key: 'a', value: '1' }), contextId: ctx });
  });
  after(async () => {
    await host.close();
    dir.remove();
  });

  const stillServes = async (): Promise<void> => {
    const o = await host.call({ codeHash: kv, method: 'get', input: json({ key: 'a' }), contextId: ctx });
    assert.equal(value(o), '"1"');
  };

  test('a trap after a write discards the write', async () => {
    const before = snapshot();
    const o = await host.call({ codeHash: misbehave, method: 'write_then_trap', contextId: ctx });
    assert.equal(o.result.code, 'vm_error');
    assert.equal(o.applied, false);
    // Not even handed over: the host would decode and hash the changes of a failed call for nothing.
    assert.deepEqual(o.writes, [], 'a failed call hands over no writes');
    assert.deepEqual(snapshot(), before);
  });

  for (const mode of ['pool', 'oneshot'] as const) {
    test(`${mode}: SIGKILL of the VM mid-call is reported as a crash and leaves the state exactly as before`, async () => {
      const before = snapshot();
      const call = host.call({ codeHash: hold, method: 'write_then_loop', contextId: ctx, mode, deadlineMs: 20_000, gasLimit: UNLIMITED_GAS });
      await killBusyVm(host);
      const o = await call;
      assert.equal(o.result.code, 'internal_error');
      assert.match(message(o), /^vm_crash the VM process ended \(signal SIGKILL\) without a result/);
      assert.equal(o.crash?.signal, 'SIGKILL');
      assert.deepEqual(snapshot(), before);
      await stillServes();
    });

    test(`${mode}: with gas to spare, an infinite loop is stopped at the deadline with internal_error timeout (a node failure)`, async () => {
      const before = snapshot();
      const o = await host.call({ codeHash: hold, method: 'write_then_loop', contextId: ctx, mode, deadlineMs: 800, gasLimit: UNLIMITED_GAS });
      assert.deepEqual(o.result, { code: 'internal_error', message: 'timeout', fingerprint: null });
      assert.deepEqual(snapshot(), before);
      await stillServes();
    });
  }

  test('an infinite loop ends by gas, deterministically, with all the gas used', async () => {
    const before = snapshot();
    const runs = await Promise.all([1, 2].map(() => host.call({ codeHash: hold, method: 'write_then_loop', contextId: ctx, gasLimit: 2_000_000n })));
    for (const o of runs) {
      assert.equal(o.result.code, 'vm_error');
      assert.equal(message(o), 'out_of_gas');
      assert.equal(o.gasUsed, 2_000_000n);
    }
    assert.deepEqual(runs[0]!.resultBytes, runs[1]!.resultBytes, 'same result bytes, fingerprint included');
    assert.deepEqual(snapshot(), before);
  });

  test('concurrent calls on one context are serialized: no update is lost', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((k) => host.call({ codeHash: kv, method: 'set', input: json({ key: k, value: k }), contextId: id32('serial') })));
    const entries = JSON.parse(value(await host.call({ codeHash: kv, method: 'entries', input: json({}), contextId: id32('serial') }))) as Record<string, string>;
    assert.deepEqual(Object.keys(entries).sort(), [...keys].sort());
  });
});

describe('Host: misbehaving VM processes', () => {
  const dir = tempDir();
  const open = (mode: string, extra: HostOptions = {}) =>
    Host.open({ dataDir: dir.path, mode: 'oneshot', killGraceMs: 200, vmCommand: [process.execPath, FAKE_VM, mode], ...extra });
  after(() => dir.remove());

  const run = async (mode: string, deadlineMs = 5000): Promise<Outcome> => {
    const host = await open(mode);
    try {
      const codeHash = await host.deploy(contract('kv-store'));
      return await host.call({ codeHash, method: 'get', input: json({ key: 'a' }), contextId: id32('fake'), deadlineMs });
    } finally {
      await host.close();
    }
  };

  test('a VM that exits before connecting is a crash with its exit code', async () => {
    const o = await run('exit-early');
    assert.equal(o.result.code, 'internal_error');
    assert.match(message(o), /^vm_crash the VM process ended \(exit code 3\) without a result/);
    assert.equal(o.crash?.exitCode, 3);
  });

  test('a VM that dies mid-execution is a crash', async () => {
    const o = await run('crash-after-hello');
    assert.match(message(o), /^vm_crash the VM process ended \(exit code 7\)/);
  });

  test('a VM fetching more over http_fetch than its gas pays for is cut off, the answers counted', async () => {
    // Answers that arrive later (http_fetch's) were left out of the guest's round_trip account: 200 fetches of
    // 1 MB for the gas of 9, and the result billing the requests alone was applied.
    const body = Buffer.alloc(1_000_000, 0x61);
    let served = 0;
    const server = createServer((_q, r) => {
      served++;
      r.end(body);
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const host = await Host.open({ dataDir: dir.path, mode: 'oneshot', killGraceMs: 200, fetch: { allow: [new URL(url).origin] }, vmCommand: [process.execPath, FAKE_VM, 'flood-fetch', url] });
    try {
      const codeHash = await host.deploy(contract('kv-store'));
      const o = await host.call({ codeHash, method: 'get', input: json({ key: 'a' }), contextId: id32('fetch-flood') });
      const paid = Number(DEFAULT_GAS_LIMIT / (BigInt(ROUND_TRIP_GAS.base) + BigInt(body.length) * BigInt(ROUND_TRIP_GAS.perByte)));
      const cut = /^protocol_violation http_fetch is request (\d+) on the guest's behalf/.exec(message(o));
      assert.ok(cut, message(o));
      // An honest VM may send one request whose answer it then cannot pay (it ends out_of_gas): at most one more.
      assert.ok(Number(cut[1]) <= paid + 2, `cut at request ${cut[1]}; the gas pays for ${paid} such fetches`);
      assert.ok(served <= paid + 1, `${served} fetches served`);
      assert.equal(o.applied, false);
    } finally {
      await host.close();
      server.close();
    }
  });

  test('a malformed frame is a protocol violation naming the problem', async () => {
    const o = await run('garbage');
    assert.equal(o.result.code, 'internal_error');
    assert.match(message(o), /^protocol_violation unknown method id 250/);
  });

  test('an oversized frame length is a protocol violation, not an allocation', async () => {
    const o = await run('oversize');
    assert.match(message(o), /^protocol_violation frame of 1073741824 bytes exceeds the maximum/);
  });

  test('a VM that connects and never speaks never takes the call: its deadline does not start, and the call ends vm_crash', async () => {
    // The deadline counts from when a VM takes the call. This VM never proves its secret: the gate drops it after
    // its hello timeout and the call ends as a crash, a node failure like a timeout, at no deadline of its own.
    const o = await run('silent', 500);
    assert.equal(o.result.code, 'internal_error');
    assert.match(message(o), /^vm_crash /);
  });

  for (const mode of ['pool', 'oneshot'] as const) {
    test(`${mode}: a VM whose call is over is not busy while it is being stopped`, async () => {
      // The stubborn VM ends its call with a malformed frame and ignores SIGTERM, so it outlives the call by
      // the whole kill grace: busyVmPids (what /api/info reports, and what an operator or a test kills to
      // interrupt a call) must list only VMs running a call that is not over.
      const host = await open('stubborn', { mode, poolSize: 1, killGraceMs: 2000 });
      try {
        const codeHash = await host.deploy(contract('kv-store'));
        const o = await host.call({ codeHash, method: 'get', input: json({ key: 'a' }), contextId: id32('fake'), deadlineMs: 60_000 });
        assert.match(message(o), /^protocol_violation unknown method id 250/);
        assert.equal(host.vmPids().length, 1, 'the VM is still alive (it ignores SIGTERM)');
        assert.deepEqual(host.busyVmPids(), [], 'a VM whose call is over is not busy');
        process.kill(host.vmPids()[0]!, 'SIGKILL'); // rather than wait out the kill grace in close()
      } finally {
        await host.close();
      }
    });
  }

  test('the pool replaces crashed workers and fails jobs when VMs cannot start', async () => {
    const host = await open('exit-early', { mode: 'pool', poolSize: 1 });
    try {
      const codeHash = await host.deploy(contract('kv-store'));
      const o = await host.call({ codeHash, method: 'get', input: json({ key: 'a' }), contextId: id32('fake'), deadlineMs: 5000 });
      assert.equal(o.result.code, 'internal_error');
      assert.match(message(o), /vm_crash/);
    } finally {
      await host.close();
    }
  });
});
