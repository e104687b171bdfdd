/**
 * The VM pool's bounds, with real VM processes: it never runs more VMs than its size (counted by the pool and
 * in /proc), starts one VM for one call, retires VMs after `recycleAfter` jobs or when idle, a queued call's
 * deadline starts only when a VM takes it (a call queued behind a busy VM runs to its own result), and a VM stopped at its job's
 * deadline takes no further job even when it asked for one in time. And one-shot mode passes the message over
 * the channel, so a 200 KB input works and never shows on a command line.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { performance } from 'node:perf_hooks';
import { Host, type Outcome } from '../../src/host/host.js';
import { contract, id32, tempDir, text, utf8 } from '../helpers.js';
import { wat } from '../instrument/helpers.js';

const json = (o: object): Uint8Array => utf8(JSON.stringify(o));
const value = (o: Outcome): string => {
  assert.equal(o.result.code, 'return', JSON.stringify(o.result));
  return text((o.result as { value: Uint8Array }).value);
};

/** Child processes of this test process, from /proc (the VMs the host started, and nothing else it spawns here). */
function childPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) out.push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

describe('the pool never runs more VMs than its size', () => {
  test('80 concurrent calls on a pool of 2 run on at most 2 VM processes, all with the right result', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const host = await Host.open({ dataDir: dir.path, poolSize: 2, deadlineMs: 60_000 });
    try {
      const codeHash = await host.deploy(contract('kv-store'));
      let most = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          most = Math.max(most, childPids().length);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const calls = Array.from({ length: 80 }, (_, i) =>
        host.call({ codeHash, method: 'set', input: json({ key: 'k', value: `v${i}` }), contextId: id32(`pool-${i}`) }));
      const outcomes = await Promise.all(calls);
      sampling = false;
      await sampler;
      for (const o of outcomes) assert.equal(value(o), 'null');
      const stats = host.poolStats!;
      assert.equal(stats.launched, 2, `the pool started ${stats.launched} VM processes for 80 calls`);
      assert.equal(stats.peak, 2);
      assert.ok(most <= 2, `${most} VM processes were seen at once in /proc`);
      for (let i = 0; i < 80; i += 27) {
        const get = await host.call({ codeHash, method: 'get', input: json({ key: 'k' }), contextId: id32(`pool-${i}`) });
        assert.equal(value(get), `"v${i}"`);
      }
    } finally {
      await host.close();
      dir.remove();
    }
  });

  test('one call starts one VM', { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const host = await Host.open({ dataDir: dir.path, poolSize: 2 });
    try {
      const codeHash = await host.deploy(contract('kv-store'));
      value(await host.call({ codeHash, method: 'get', input: json({ key: 'k' }), contextId: id32('one') }));
      assert.equal(host.poolStats!.launched, 1);
      assert.equal(childPids().length, 1);
    } finally {
      await host.close();
      dir.remove();
    }
  });

  test('recycleAfter: each VM serves that many jobs, then a fresh one takes over', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const host = await Host.open({ dataDir: dir.path, poolSize: 1, recycleAfter: 2 });
    try {
      const codeHash = await host.deploy(contract('kv-store'));
      const pids = new Set<number>();
      for (let i = 0; i < 5; i++) {
        const o = await host.call({ codeHash, method: 'set', input: json({ key: 'k', value: `${i}` }), contextId: id32('recycle') });
        assert.equal(value(o), 'null');
        for (const pid of host.vmPids()) pids.add(pid);
      }
      assert.equal(host.poolStats!.launched, 3);
      assert.ok(host.poolStats!.retired >= 2);
      assert.equal(pids.size, 3, 'five jobs, two per VM: three processes');
      assert.equal(value(await host.call({ codeHash, method: 'get', input: json({ key: 'k' }), contextId: id32('recycle') })), '"4"');
    } finally {
      await host.close();
      dir.remove();
    }
  });

  test('an idle VM retires after the idle timeout; the next call starts a new one', { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const host = await Host.open({ dataDir: dir.path, poolSize: 2, poolIdleTimeoutMs: 100 });
    try {
      const codeHash = await host.deploy(contract('kv-store'));
      value(await host.call({ codeHash, method: 'get', input: json({ key: 'k' }), contextId: id32('idle') }));
      while (host.poolStats!.workers > 0) await new Promise((r) => setTimeout(r, 20));
      assert.equal(host.poolStats!.retired, 1);
      assert.deepEqual(childPids(), [], 'the retired VM process exited');
      value(await host.call({ codeHash, method: 'get', input: json({ key: 'k' }), contextId: id32('idle') }));
      assert.equal(host.poolStats!.launched, 2);
    } finally {
      await host.close();
      dir.remove();
    }
  });

  test('a call queued behind a busy VM longer than its deadline still runs to its own result: its deadline starts when a VM takes it', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const host = await Host.open({ dataDir: dir.path, poolSize: 1 });
    try {
      const hold = await host.deploy(contract('hold'));
      const kv = await host.deploy(contract('kv-store'));
      // Another context's call holds the only VM until its own deadline (it never ends by itself).
      const busy = host.call({ codeHash: hold, method: 'write_then_loop', contextId: id32('busy'), deadlineMs: 2000, gasLimit: 10n ** 15n });
      while (host.busyVmPids().length === 0) await new Promise((r) => setTimeout(r, 10));
      const queuedAt = performance.now();
      const queued = await host.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: 'v' }), contextId: id32('queued'), deadlineMs: 500 });
      assert.ok(performance.now() - queuedAt > 500, 'the call waited in the queue longer than its deadline');
      assert.equal(value(queued), 'null');
      assert.equal(queued.applied, true);
      assert.deepEqual((await busy).result, { code: 'internal_error', message: 'timeout', fingerprint: null });
    } finally {
      await host.close();
      dir.remove();
    }
  });
});

describe('one-shot: the message travels over the channel', () => {
  for (const transport of ['unix', 'tcp'] as const) {
    test(`${transport}: a 200 KB input works, and no VM command line carries it`, { timeout: 60_000 }, async () => {
      const dir = tempDir();
      const host = await Host.open({ dataDir: dir.path, mode: 'oneshot', transport });
      try {
        const codeHash = await host.deploy(contract('kv-store'));
        const big = 'x'.repeat(200 * 1024);
        let longest = 0;
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            for (const pid of childPids()) {
              try {
                longest = Math.max(longest, readFileSync(`/proc/${pid}/cmdline`).length);
              } catch {
                // exited
              }
            }
            await new Promise((r) => setTimeout(r, 5));
          }
        })();
        const set = await host.call({ codeHash, method: 'set', input: json({ key: 'big', value: big }), contextId: id32('big') });
        sampling = false;
        await sampler;
        assert.equal(value(set), 'null');
        assert.ok(longest < 4096, `a VM command line of ${longest} bytes`);
        const get = await host.call({ codeHash, method: 'get', input: json({ key: 'big' }), contextId: id32('big') });
        assert.equal(value(get), JSON.stringify(big));
      } finally {
        await host.close();
        dir.remove();
      }
    });
  }
});

/** A method that only counts, for a time long enough to place a deadline inside it. */
const SPIN = `(module
  (memory (export "memory") 1)
  (func (export "spin") (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 40000000))))))`;

describe('a VM stopped at its deadline', () => {
  test('takes no further job: a call queued behind one that timed out runs on a fresh VM, even when the stopped VM asked for work in time', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const host = await Host.open({ dataDir: dir.path, poolSize: 1, deadlineMs: 60_000 });
    try {
      const spin = await host.deploy(await wat(SPIN));
      const kv = await host.deploy(contract('kv-store'));
      const gasLimit = 100_000_000_000n;
      let took = 0; // the spin's time on this machine, warm, on the VM that will run it
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const o = await host.call({ codeHash: spin, method: 'spin', contextId: id32('spin'), gasLimit });
        assert.equal(o.result.code, 'return', JSON.stringify(o.result));
        took = performance.now() - t0;
      }
      const launched = host.poolStats!.launched;
      const timedOut = host.call({ codeHash: spin, method: 'spin', contextId: id32('spin'), gasLimit, deadlineMs: Math.max(1, Math.floor(took / 2)) });
      const queued = host.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: 'after' }), contextId: id32('queued') });
      while (host.busyVmPids().length === 0) await new Promise((r) => setImmediate(r));
      // Hold this event loop past the deadline and past the spin's end, as a node busy applying another call's
      // writes would be. Held in the loop's check phase, so that when it turns again the deadline's timer runs
      // first and then the VM's result and its next_message (one write) are read: the stopped VM asks for work
      // while the second call is queued.
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          const until = performance.now() + 3 * took + 200;
          while (performance.now() < until);
          resolve();
        }),
      );
      const [first, second] = await Promise.all([timedOut, queued]);
      assert.deepEqual(first.result, { code: 'internal_error', message: 'timeout', fingerprint: null });
      assert.equal(value(second), 'null', 'the queued call ran, and was not taken down with the stopped VM');
      assert.equal(second.applied, true);
      assert.equal(host.poolStats!.launched, launched + 1, 'on a fresh VM');
    } finally {
      await host.close();
      dir.remove();
    }
  });
});
