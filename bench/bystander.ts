/**
 * Bystander latency under attack: while one caller attacks the host, another keeps calling kv-store `get` on
 * its own context, one call after the other; the slowest of those calls is what the attack cost an innocent
 * user. Run by hand (not part of `npm run bench`, which measures throughput):
 *
 *   node scripts/build.mjs --quiet && node dist/bench/bystander.js
 *
 * Attacks: a ~10 MB deploy at the module budgets, a deploy with many types (quadratic before), a call queueing
 * 900k context_delete actions, a 4 MiB input. Uses only the public Host API, so it also runs against older
 * builds for comparison.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Host } from '../src/host/host.js';
import { contract, id32, tempDir, utf8 } from '../test/helpers.js';
import { manyTypesAndFunctions } from '../test/host/big-modules.js';
import { call, Probe } from '../test/node/probe.js';

interface Attack {
  name: string;
  run(host: Host): Promise<string>;
}

const dir = tempDir('hostlink-bystander-');
const host = await Host.open({ dataDir: dir.path, poolSize: 2 });
const kv = await host.deploy(contract('kv-store'));
const bystanderCtx = id32('bystander');
await host.call({ codeHash: kv, method: 'set', input: utf8('{"key":"a","value":"1"}'), contextId: bystanderCtx });

const p = new Probe();
const target = p.out(32);
p.method('delete_flood', `(local $i i32) (loop $l ${call('context_delete', target.desc)} (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 900000))))`);
const probe = await host.deploy(await p.build());
const attacker = id32('attacker');
await host.node.addMembers(attacker, [id32('alice')]);

const describe = async (f: () => Promise<unknown>): Promise<string> => {
  try {
    const o = (await f()) as { result?: { code: string; message?: string } } | Uint8Array;
    if (o instanceof Uint8Array) return 'deployed';
    return `${o.result?.code}${o.result?.message ? ' ' + o.result.message.slice(0, 90) : ''}`;
  } catch (e) {
    return `threw ${(e as Error).message.slice(0, 90)}`;
  }
};

// Built before the clock starts: the attacker's own work is not the host's.
const big = manyTypesAndFunctions(1024, 10_000, 330);
const manyTypes = manyTypesAndFunctions(8000, 8000, 1);
const bigInput = new Uint8Array(4 << 20).fill(0x61);

const attacks: Attack[] = [
  { name: 'no attack (baseline: 1 s idle)', run: () => new Promise((r) => setTimeout(() => r('slept'), 1000)) },
  { name: 'deploy ~10 MB (1024 types, 10000 functions)', run: (h) => describe(() => h.deploy(big)) },
  { name: 'deploy 8000 types (quadratic before)', run: (h) => describe(() => h.deploy(manyTypes)) },
  { name: '900k context_delete in one call', run: (h) => describe(() => h.call({ codeHash: probe, method: 'delete_flood', contextId: attacker, executorId: id32('alice') })) },
  { name: '4 MiB input', run: (h) => describe(() => h.call({ codeHash: kv, method: 'get', input: bigInput, contextId: attacker })) },
];

for (const a of attacks) {
  let running = true;
  let worst = 0;
  let calls = 0;
  let failures = 0;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      const o = await host.call({ codeHash: kv, method: 'get', input: utf8('{"key":"a"}'), contextId: bystanderCtx });
      worst = Math.max(worst, performance.now() - t);
      calls++;
      if (o.result.code !== 'return') failures++;
    }
  })();
  await new Promise((r) => setTimeout(r, 200)); // the bystander is running before the attack starts
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const t = performance.now();
  const outcome = await a.run(host);
  const attackMs = performance.now() - t;
  await new Promise((r) => setTimeout(r, 100));
  delay.disable();
  running = false;
  await loop;
  process.stdout.write(
    `${a.name}: attack ${attackMs.toFixed(0)} ms (${outcome}); bystander worst ${worst.toFixed(0)} ms over ${calls} calls, ${failures} not returned; ` +
      `host event loop blocked at most ${(delay.max / 1e6).toFixed(0)} ms\n`,
  );
}
await host.close();
dir.remove();
