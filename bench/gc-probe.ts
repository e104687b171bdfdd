/**
 * Where the host's promoted garbage comes from, by elimination: the steady-state pooled kv-store `set` (8 lanes,
 * unix, sandbox and authentication as in `npm run bench`) with the host's GC figures, its CPU per execution and
 * the calls' latency, once with each variant of the commit:
 *
 *   full   the real commit: the call's effects, the Merkle update and LMDB's synced transaction
 *   empty  a real LMDB transaction (same grouping, same sync) whose body writes nothing
 *   none   no store write at all (the call's outcome is computed, nothing is committed)
 *
 * `empty` and `none` change what a call does (nothing is kept): diagnostics only, never a product figure.
 * Not part of `npm run bench`. Run with V8's own promotion counter to get promoted bytes per call:
 *
 *   node --trace-gc-nvp dist/bench/gc-probe.js full [calls] [warm-up] > /tmp/nvp.log
 *   awk '/measuring/{m=1} m&&/gc=s /{for(i=1;i<=NF;i++){split($i,a,"=");if(a[1]=="promoted"){p+=a[2];break}}} END{print p/1024, "KB promoted"}' /tmp/nvp.log
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host } from '../src/host/host.js';
import type { KvStore } from '../src/host/state/kv.js';
import { openLmdbStore } from '../src/host/state/lmdb-store.js';
import { watchHostGc } from './host-gc.js';
import { id } from './lanes.js';
import { benchSandboxMode } from './sandbox.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
type Variant = 'full' | 'empty' | 'none';

/** The LMDB store with its write() replaced as the variant says once `on()` is called (the deploy is real). */
function storeFor(store: KvStore, variant: Variant): { store: KvStore; on(): void } {
  const root = new Uint8Array(32);
  let active: Variant = 'full';
  const replaced: KvStore = {
    get: (t, k) => store.get(t, k),
    range: (t, p) => store.range(t, p),
    snapshot: () => store.snapshot(),
    close: () => store.close(),
    write: <T>(fn: Parameters<KvStore['write']>[0]): Promise<T> =>
      active === 'full' ? (store.write(fn) as Promise<T>) : active === 'empty' ? store.write(() => root as T) : Promise.resolve(root as T),
  };
  return { store: replaced, on: () => (active = variant) };
}

async function main(): Promise<void> {
  const variant = (process.argv[2] ?? 'full') as Variant;
  if (!['full', 'empty', 'none'].includes(variant)) throw new Error(`variant '${variant}': use full, empty or none`);
  const calls = Number(process.argv[3] ?? 3000);
  const warmup = Number(process.argv[4] ?? 2000);
  const lanes = 8;
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-gc-probe-'));
  const lmdb = await openLmdbStore(dir);
  const probe = storeFor(lmdb, variant);
  const host = await Host.open({ store: probe.store, mode: 'pool', transport: 'unix', poolSize: 2, deadlineMs: 30_000, sandbox: benchSandboxMode() });
  try {
    const codeHash = await host.deploy(Uint8Array.from(readFileSync(join(ROOT, 'examples/kv-store/build/kv-store.wasm'))));
    probe.on();
    const input = (i: number): Uint8Array => Uint8Array.from(Buffer.from(JSON.stringify({ key: `k${i}`, value: `value-${i}` })));
    for (let done = 0; done < warmup; done += 2 * lanes) {
      await Promise.all(Array.from({ length: 2 * lanes }, (_, i) => host.call({ codeHash, method: 'set', input: input(done + i), contextId: id(`w${i % lanes}`) })));
    }
    process.stdout.write(`measuring: ${variant}, ${calls} calls on ${lanes} contexts after ${warmup} warm-up calls, load average ${loadavg()[0]!.toFixed(2)}\n`);
    const latencies: number[] = [];
    let next = 0;
    const cpu0 = process.cpuUsage();
    const gcWatch = watchHostGc();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        const contextId = id(`lane${lane}`);
        while (next < calls) {
          const i = next++;
          const start = performance.now();
          const o = await host.call({ codeHash, method: 'set', input: input(warmup + i), contextId });
          if (o.result.code !== 'return') throw new Error(`call ${i} failed: ${JSON.stringify(o.result)}`);
          latencies.push(performance.now() - start);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const gc = gcWatch.stop();
    const cpu = process.cpuUsage(cpu0);
    latencies.sort((a, b) => a - b);
    const at = (q: number): string => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(1);
    process.stdout.write(
      `${variant}: ${(calls / seconds).toFixed(0)} exec/s, host CPU ${((cpu.user + cpu.system) / calls).toFixed(0)} us/exec; ` +
        `host GC per 1,000 executions: ${((1000 * gc.scavenges) / calls).toFixed(1)} scavenges, ${((1000 * gc.markCompacts) / calls).toFixed(2)} mark-compacts, ` +
        `main-thread pause ${((1000 * gc.pauseMs) / calls).toFixed(0)} us/exec; latency ms p50 ${at(0.5)} p99 ${at(0.99)} max ${at(1)}; load average ${loadavg()[0]!.toFixed(2)}\n`,
    );
  } finally {
    await host.close();
    await lmdb.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
