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
 *
 * `--count` after the arguments also prints what the measured commits did: puts, gets and deletes per table per
 * call with their sizes, and how many calls shared one LMDB commit (it wraps each transaction: costs some CPU).
 *
 * `node dist/bench/gc-probe.js store [full|nosync|put|empty] [writes per commit]` measures the commit alone,
 * without VMs: one-key `applyDelta` writes (440-byte values, the kv-store index's size) on 8 contexts of 2,000
 * keys, taken in turn, 8 (or the given number of) writes in flight so that each LMDB commit carries that many, the
 * process's CPU per write and the 4 KiB pages it wrote per commit.
 * nosync: the same without fsync; put: one plain 440-byte put per write instead of the Merkle update; empty: a
 * transaction writing nothing.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host } from '../src/host/host.js';
import type { KvStore, KvTxn } from '../src/host/state/kv.js';
import { openLmdbStore } from '../src/host/state/lmdb-store.js';
import { concatBytes } from '../src/host/state/bytes.js';
import { applyDelta } from '../src/host/state/merkle.js';
import { watchHostGc } from './host-gc.js';
import { id } from './lanes.js';
import { benchSandboxMode } from './sandbox.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
type Variant = 'full' | 'empty' | 'none';

/** What the measured commits did: per table, puts/gets/deletes and bytes; how many LMDB commits they shared. */
interface WriteTally {
  writes: number;
  batches: number;
  ops: Map<string, { puts: number; putKeyBytes: number; putValueBytes: number; gets: number; dels: number }>;
}

/** Wraps each write()'s transaction to tally its operations (only when `tally` is given: it costs CPU). */
function tallied(txn: KvTxn, tally: WriteTally): KvTxn {
  const row = (t: string): { puts: number; putKeyBytes: number; putValueBytes: number; gets: number; dels: number } => {
    let r = tally.ops.get(t);
    if (r === undefined) tally.ops.set(t, (r = { puts: 0, putKeyBytes: 0, putValueBytes: 0, gets: 0, dels: 0 }));
    return r;
  };
  return {
    get: (t, k) => (row(t).gets++, txn.get(t, k)),
    range: (t, p) => txn.range(t, p),
    put: (t, k, v) => {
      const r = row(t);
      r.puts++;
      r.putKeyBytes += k.length;
      r.putValueBytes += v.length;
      txn.put(t, k, v);
    },
    del: (t, k) => (row(t).dels++, txn.del(t, k)),
  };
}

/** The LMDB store with its write() replaced as the variant says once `on()` is called (the deploy is real). */
function storeFor(store: KvStore, variant: Variant, tally?: WriteTally): { store: KvStore; on(): void } {
  const root = new Uint8Array(32);
  let active: Variant = 'full';
  // Writes resolved in the same event-loop turn were one LMDB commit (lmdb resolves a batch's writes together).
  let sameTurn = false;
  const counted = <T>(fn: Parameters<KvStore['write']>[0]): Promise<T> => {
    if (tally === undefined) return store.write(fn) as Promise<T>;
    return (store.write((txn) => fn(tallied(txn, tally))) as Promise<T>).then((r) => {
      tally.writes++;
      if (!sameTurn) {
        tally.batches++;
        sameTurn = true;
        setImmediate(() => (sameTurn = false));
      }
      return r;
    });
  };
  const replaced: KvStore = {
    get: (t, k) => store.get(t, k),
    range: (t, p) => store.range(t, p),
    snapshot: () => store.snapshot(),
    close: () => store.close(),
    write: <T>(fn: Parameters<KvStore['write']>[0]): Promise<T> =>
      active === 'full' ? counted<T>(fn) : active === 'empty' ? store.write(() => root as T) : Promise.resolve(root as T),
  };
  return { store: replaced, on: () => (active = variant) };
}

/** The commit alone (see the file comment): CPU per write of the store variant `mode`. */
async function storeOnly(mode: string, group = 8): Promise<void> {
  if (!['full', 'nosync', 'put', 'empty'].includes(mode)) throw new Error(`store variant '${mode}': use full, nosync, put or empty`);
  if (!Number.isInteger(group) || group < 1 || group > 64) throw new Error(`writes per commit '${group}': use an integer from 1 to 64`);
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-commit-probe-'));
  const store = await openLmdbStore(dir, mode === 'nosync' ? { durability: 'nosync' } : {});
  try {
    const ctx = (c: number): Uint8Array => id(`store-probe-${c}`);
    const value = new Uint8Array(440).fill(7);
    const key = (i: number): Uint8Array => new TextEncoder().encode(`e:k${i}`);
    for (let c = 0; c < 8; c++) await store.write((t) => applyDelta(t, ctx(c), Array.from({ length: 2000 }, (_, i): [Uint8Array, Uint8Array] => [key(i), value])));
    let n = 2000;
    let next = 0;
    const write = (): Promise<unknown> => {
      const c = next++ % 8;
      const i = n++;
      if (mode === 'empty') return store.write(() => 0);
      if (mode === 'put') return store.write((t) => t.put('state', concatBytes(ctx(c), key(i)), value));
      return store.write((t) => applyDelta(t, ctx(c), [[key(i), value]]));
    };
    const rounds = async (count: number): Promise<void> => {
      for (let r = 0; r < count; r++) await Promise.all(Array.from({ length: group }, () => write()));
    };
    const measured = Math.ceil(4800 / group);
    await rounds(Math.ceil(2400 / group));
    // Bytes the process handed to write calls (lmdb's pwrite of the dirty pages; Linux only).
    const written = (): number => Number(/wchar: (\d+)/.exec(existsSync('/proc/self/io') ? readFileSync('/proc/self/io', 'utf8') : '')?.[1] ?? NaN);
    const w0 = written();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await rounds(measured);
    const cpu = process.cpuUsage(cpu0);
    const writes = measured * group;
    process.stdout.write(
      `store ${mode}: ${((cpu.user + cpu.system) / writes).toFixed(1)} us CPU per write (user ${(cpu.user / writes).toFixed(1)}, system ${(cpu.system / writes).toFixed(1)}), ` +
        `wall ${(((performance.now() - t0) * 1000) / writes).toFixed(1)} us per write, ${((written() - w0) / measured / 4096).toFixed(1)} pages written per commit of ${group}; ` +
        `load average ${loadavg()[0]!.toFixed(2)}\n`,
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'store') return storeOnly(process.argv[3] ?? 'full', Number(process.argv[4] ?? 8));
  const variant = (process.argv[2] ?? 'full') as Variant;
  if (!['full', 'empty', 'none'].includes(variant)) throw new Error(`variant '${variant}': use full, empty or none`);
  const calls = Number(process.argv[3] ?? 3000);
  const warmup = Number(process.argv[4] ?? 2000);
  const lanes = 8;
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-gc-probe-'));
  const lmdb = await openLmdbStore(dir);
  const tally: WriteTally | undefined = process.argv.includes('--count') ? { writes: 0, batches: 0, ops: new Map() } : undefined;
  const probe = storeFor(lmdb, variant, tally);
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
    if (tally !== undefined) Object.assign(tally, { writes: 0, batches: 0, ops: new Map() });
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
    if (tally !== undefined) {
      process.stdout.write(`store writes: ${tally.writes} write() calls in ${tally.batches} LMDB commits (${(tally.writes / Math.max(1, tally.batches)).toFixed(2)} per commit)\n`);
      for (const [t, r] of tally.ops) {
        const per = (n: number): string => (n / Math.max(1, tally.writes)).toFixed(2);
        process.stdout.write(`  ${t}: per write() ${per(r.gets)} gets, ${per(r.puts)} puts (key ${(r.putKeyBytes / Math.max(1, r.puts)).toFixed(0)} B, value ${(r.putValueBytes / Math.max(1, r.puts)).toFixed(0)} B), ${per(r.dels)} deletes\n`);
      }
    }
  } finally {
    await host.close();
    await lmdb.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
