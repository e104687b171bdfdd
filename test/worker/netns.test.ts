/**
 * Two workers in separate network namespaces, as on two machines: each namespace is joined to the node's by
 * its own veth pair with its own /30, so a worker reaches the node only over that link and the node reaches
 * each worker only at its namespace's address. The workers register, serve a burst of kv-store calls, and one
 * is killed mid-call: that call is a crash with nothing applied, and the other keeps serving.
 *
 * Needs root and the `ip` tool (skipped with the reason otherwise); the namespaces and links are removed in
 * `after`, whatever happened.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { contract, id32, tempDir, text, utf8 } from '../helpers.js';
import { makeCerts, opensslMissing, type TestCerts } from '../../bench/certs.js';
import { alive, ancestors, startWorkerProcess, waitFor, type WorkerProcess } from './helpers.js';

const json = (o: object): Uint8Array => utf8(JSON.stringify(o));

function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr ?? '').trim() || (r.error?.message ?? '') };
}

/** Why this machine cannot make network namespaces, or undefined when it can. */
function netnsUnavailable(): string | undefined {
  const missing = opensslMissing();
  if (missing !== undefined) return missing;
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  if (spawnSync('ip', ['-V']).status !== 0) return 'the ip tool (iproute2) is not installed';
  const probe = `hl-probe-${process.pid}`;
  const made = ip(['netns', 'add', probe]);
  if (!made.ok) return `ip netns add failed: ${made.err}`;
  ip(['netns', 'del', probe]);
  return undefined;
}

// Addresses from the benchmarking range 198.18.0.0/15 (RFC 2544), unlikely to clash with a real network.
const SUFFIX = String(process.pid % 10000);
const LINKS = [
  { ns: `hl-w1-${SUFFIX}`, host: `hlw1h${SUFFIX}`, peer: `hlw1p${SUFFIX}`, node: '198.18.71.1', worker: '198.18.71.2' },
  { ns: `hl-w2-${SUFFIX}`, host: `hlw2h${SUFFIX}`, peer: `hlw2p${SUFFIX}`, node: '198.18.72.1', worker: '198.18.72.2' },
];

const skip = netnsUnavailable();

describe('remote workers in separate network namespaces', { skip }, () => {
  let dir: { path: string; remove: () => void };
  let certs: TestCerts;
  let host: Host | undefined;
  const workers: WorkerProcess[] = [];

  before(() => {
    dir = tempDir('hostlink-netns-test-');
    certs = makeCerts(dir.path, ['127.0.0.1', ...LINKS.flatMap((l) => [l.node, l.worker])]);
    for (const l of LINKS) {
      const steps = [
        ['netns', 'add', l.ns],
        ['link', 'add', l.host, 'type', 'veth', 'peer', 'name', l.peer],
        ['link', 'set', l.peer, 'netns', l.ns],
        ['addr', 'add', `${l.node}/30`, 'dev', l.host],
        ['link', 'set', l.host, 'up'],
        ['-n', l.ns, 'addr', 'add', `${l.worker}/30`, 'dev', l.peer],
        ['-n', l.ns, 'link', 'set', l.peer, 'up'],
        ['-n', l.ns, 'link', 'set', 'lo', 'up'],
      ];
      for (const s of steps) {
        const r = ip(s);
        assert.ok(r.ok, `ip ${s.join(' ')}: ${r.err}`);
      }
    }
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await host?.close();
    for (const l of LINKS) {
      ip(['netns', 'del', l.ns]); // removes the peer end, and with it the pair
      ip(['link', 'del', l.host]);
    }
    dir.remove();
  });

  test('two namespaced workers serve a burst; one killed mid-call; the other keeps serving', { timeout: 120_000 }, async () => {
    // The node listens on every address for the test, and each worker dials it over its own link.
    const h = await Host.open({ dataDir: join(dir.path, 'data'), poolSize: 4, deadlineMs: 30_000, workers: { listen: '0.0.0.0:0', tls: certs.node } });
    host = h;
    const port = Number(h.remote!.address!.split(':').pop());
    for (const l of LINKS) {
      workers.push(
        startWorkerProcess({ runtime: `${l.node}:${port}`, slots: 2, listen: `${l.worker}:7420`, tls: certs.worker, prefix: ['ip', 'netns', 'exec', l.ns] }),
      );
    }
    await waitFor('both namespaced workers to register', () => h.remote!.launcher.workers().length === 2, 60_000);
    assert.deepEqual(
      h.remote!.launcher.workers().map((w) => w.addr).sort(),
      LINKS.map((l) => `${l.worker}:7420`).sort(),
    );
    const kv = await h.deploy(contract('kv-store'));
    const hold = await h.deploy(contract('hold'));

    const holdCtx = id32('netns-hold');
    const emptyRoot = h.state(holdCtx).root;
    const held = h.call({ codeHash: hold, method: 'write_then_loop', contextId: holdCtx });
    await waitFor('the held call to run', () => h.busyVmPids().length === 1);
    const chain = ancestors(h.busyVmPids()[0]!);
    // The VM pid the worker reports is in the worker's pid namespace, which is the node's here (only the network
    // is separate); `ip netns exec` execs the worker in place, so the worker's pid is the child's.
    const victim = workers.find((w) => chain.includes(w.child.pid!));
    assert.ok(victim !== undefined, `the held VM runs under one of the workers (${chain.join(' <- ')})`);
    const burst = Array.from({ length: 10 }, (_, i) => {
      const ctx = id32(`netns-burst-${i}`);
      return h.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: `n${i}` }), contextId: ctx }).then((o) => ({ o, ctx }));
    });
    await victim.kill('SIGKILL');
    const heldOutcome = await held;
    assert.ok(heldOutcome.crash !== undefined && !heldOutcome.applied, JSON.stringify(heldOutcome.result));
    assert.match(heldOutcome.crash.stderr, /the remote VM slot closed/);
    assert.deepEqual(h.state(holdCtx).root, emptyRoot);
    for (const { o, ctx } of await Promise.all(burst)) {
      if (o.applied) assert.equal(o.result.code, 'return');
      else assert.deepEqual(h.state(ctx).root, emptyRoot, 'a crashed call changed nothing');
    }
    for (let i = 0; i < 6; i++) {
      const ctx = id32(`netns-after-${i}`);
      const o = await h.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: `a${i}` }), contextId: ctx });
      assert.equal(o.applied, true, JSON.stringify(o.result));
      const stored = h.state(ctx).entries.map(([, v]) => text(v)).join(' ');
      assert.ok(stored.includes(`a${i}`), stored);
    }
    await waitFor('the held VM to be gone', () => !alive(chain[0]!));
  });
});
