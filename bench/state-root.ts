/**
 * State root cost per changed key, Hostlink's incremental tree on LMDB next to @ethereumjs/mpt (Ethereum's
 * Merkle Patricia trie, in memory, keys hashed) in the same run. Target: <= 20 us per changed key at 10k and
 * 100k keys for a one-key delta (what one kv `set` execution commits).
 *
 * Hostlink's figure is the time inside applyDelta (the 'state' entry, the tree walk, the page reads and writes,
 * the stored root), inside an LMDB write; the commit itself is measured with the other pieces. The store runs
 * with durability 'nosync' to keep the set-up short: applyDelta does the same work either way (the fsync is the
 * commit's). mpt's figure is put + root(), awaited. Both contexts are filled first with `key-<i>` -> 32 bytes,
 * then existing keys are rewritten with new values. Each figure is printed as wall time and as the process's
 * CPU time over the same span: on this shared machine the wall figure moves with the load average, the CPU
 * figure much less. It says which SHA-256 hashed the tree records: the native addon, or the JavaScript fallback
 * (HOSTLINK_STATE_HASH=js measures that one). Next to the 1-key figure it prints the store calls such an update
 * cannot avoid, timed alone in blocks alternating with the update's (the LMDB floor), and the ratio to them; the
 * floor's CPU figure counts lmdb's writer thread too, so its wall ratio is the one to read.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';
import { MerklePatriciaTrie } from '@ethereumjs/mpt';
import type { KvStore } from '../src/host/state/kv.js';
import { openLmdbStore } from '../src/host/state/lmdb-store.js';
import { applyDelta, type StateChange } from '../src/host/state/merkle.js';
import { stateHashImplementation } from '../src/host/state/sha256-record.js';

export interface StateRootRow {
  keys: number;
  /** Changed keys per delta. */
  delta: number;
  hostlinkUs: number;
  /** CPU time (user + system, the whole process) per changed key: less inflated than wall time on a busy machine. */
  hostlinkCpuUs: number;
  /** undefined when mpt was not run at this size. */
  mptUs: number | undefined;
  mptCpuUs: number | undefined;
  /**
   * 1-key rows: the store calls alone that any update of an entry and its stored root needs (put the entry, get
   * and put the root value of the same sizes), each in its own write like the update: the LMDB floor.
   */
  floorUs?: number;
  floorCpuUs?: number;
}

/** Median wall and CPU microseconds per changed key. */
interface Figure {
  us: number;
  cpuUs: number;
}
const cpuNow = (): number => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

const CONTEXT = Uint8Array.from(createHash('sha256').update('bench-context').digest());
const key = (i: number): Uint8Array => Uint8Array.from(Buffer.from(`key-${i}`));
const value = (i: number, salt: number): Uint8Array => Uint8Array.from(createHash('sha256').update(`${i}/${salt}`).digest());
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Microseconds per changed key of `deltas` deltas of `size` keys each: the median of 5 blocks. */
async function hostlink(keys: number, sizes: number[], deltas: number): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-bench-root-'));
  const store = await openLmdbStore(dir, { durability: 'nosync' });
  try {
    for (let i = 0; i < keys; i += 20_000) {
      const changes: StateChange[] = [];
      for (let j = i; j < Math.min(keys, i + 20_000); j++) changes.push([key(j), value(j, 0)]);
      await store.write((txn) => applyDelta(txn, CONTEXT, changes));
    }
    const out: Figure[] = [];
    let salt = 1;
    // The floor's blocks alternate with the 1-key update's, so both see the same machine.
    const floorBlocks: Figure[] = [];
    await store.write((txn) => txn.put('merkle', FLOOR_CONTEXT, new Uint8Array(96)));
    for (const size of sizes) {
      const blocks: number[] = [];
      const cpuBlocks: number[] = [];
      for (let b = 0; b < 5; b++) {
        let ns = 0;
        let cpu = 0;
        for (let d = 0; d < Math.ceil(deltas / size / 5); d++) {
          const changes: StateChange[] = [];
          for (let k = 0; k < size; k++) changes.push([key((salt * 7919 + k * 104_729) % keys), value(k, salt)]);
          salt++;
          await store.write((txn) => {
            const c0 = cpuNow();
            const t0 = process.hrtime.bigint();
            applyDelta(txn, CONTEXT, changes);
            ns += Number(process.hrtime.bigint() - t0);
            cpu += cpuNow() - c0;
          });
        }
        const n = Math.ceil(deltas / size / 5) * size;
        blocks.push(ns / 1000 / n);
        cpuBlocks.push(cpu / n);
        if (size === 1) floorBlocks.push(await floorBlock(store, n));
      }
      out.push({ us: median(blocks), cpuUs: median(cpuBlocks) });
    }
    out.push({ us: median(floorBlocks.map((f) => f.us)), cpuUs: median(floorBlocks.map((f) => f.cpuUs)) });
    return out;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const FLOOR_CONTEXT = Uint8Array.from(createHash('sha256').update('bench-floor-context').digest());

/**
 * The LMDB floor of a one-key update, in microseconds per update over `count` writes: in one write each, put a
 * `state` entry (64-byte key, an entry the size of the updates') and get then put a root value under the bare
 * context id whose size cycles like the stored root value with its log (96 to 1,600 bytes). Keys and entries are
 * made before the timed span, so it is the store calls alone. Under a context of its own, so the measured tree
 * is untouched; the tables are the same (as large) as the updates'.
 */
let floorN = 0;
async function floorBlock(store: KvStore, count: number): Promise<Figure> {
  let ns = 0;
  let cpu = 0;
  for (let d = 0; d < count; d++) {
    const k = key(floorN * 7919);
    const v = value(floorN, -1);
    floorN++;
    const stateKey = new Uint8Array(64);
    stateKey.set(FLOOR_CONTEXT);
    stateKey.set(createHash('sha256').update(k).digest(), 32);
    const entry = new Uint8Array(4 + k.length + v.length);
    entry.set(k, 4);
    entry.set(v, 4 + k.length);
    await store.write((txn) => {
      const c0 = cpuNow();
      const t0 = process.hrtime.bigint();
      txn.put('state', stateKey, entry);
      const before = txn.get('merkle', FLOOR_CONTEXT)!;
      const after = new Uint8Array(before.length >= 1600 ? 96 : before.length + 32);
      after.set(before.subarray(0, Math.min(before.length, after.length)));
      txn.put('merkle', FLOOR_CONTEXT, after);
      ns += Number(process.hrtime.bigint() - t0);
      cpu += cpuNow() - c0;
    });
  }
  return { us: ns / 1000 / count, cpuUs: cpu / count };
}

async function mpt(keys: number, sizes: number[], deltas: number): Promise<Figure[]> {
  const trie = new MerklePatriciaTrie({ useKeyHashing: true });
  for (let i = 0; i < keys; i += 5000) {
    const ops = [];
    for (let j = i; j < Math.min(keys, i + 5000); j++) ops.push({ type: 'put' as const, key: key(j), value: value(j, 0) });
    await trie.batch(ops);
  }
  const out: Figure[] = [];
  let salt = 1;
  for (const size of sizes) {
    const blocks: number[] = [];
    const cpuBlocks: number[] = [];
    for (let b = 0; b < 5; b++) {
      const n = Math.ceil(deltas / size / 5);
      const c0 = cpuNow();
      const t0 = process.hrtime.bigint();
      for (let d = 0; d < n; d++) {
        for (let k = 0; k < size; k++) await trie.put(key((salt * 7919 + k * 104_729) % keys), value(k, salt));
        trie.root();
        salt++;
      }
      blocks.push(Number(process.hrtime.bigint() - t0) / 1000 / (n * size));
      cpuBlocks.push((cpuNow() - c0) / (n * size));
    }
    out.push({ us: median(blocks), cpuUs: median(cpuBlocks) });
  }
  return out;
}

export async function benchStateRoot(opts: { sizes: number[]; deltas: number; mptSizes: number[] }): Promise<{ rows: StateRootRow[]; load: number; loadEnd: number[]; hash: string }> {
  const load = loadavg()[0]!;
  const impl = stateHashImplementation();
  const hash = impl.impl === 'native' ? 'native (the state hash addon)' : `JavaScript (${impl.reason ?? 'fallback'})`;
  const rows: StateRootRow[] = [];
  const deltaSizes = [1, 100];
  for (const keys of opts.sizes) {
    const h = await hostlink(keys, deltaSizes, opts.deltas);
    const m = opts.mptSizes.includes(keys) ? await mpt(keys, deltaSizes, Math.max(200, opts.deltas / 4)) : undefined;
    const f = h[deltaSizes.length]!;
    deltaSizes.forEach((delta, i) =>
      rows.push({
        keys,
        delta,
        hostlinkUs: h[i]!.us,
        hostlinkCpuUs: h[i]!.cpuUs,
        mptUs: m?.[i]?.us,
        mptCpuUs: m?.[i]?.cpuUs,
        ...(delta === 1 ? { floorUs: f.us, floorCpuUs: f.cpuUs } : {}),
      }),
    );
  }
  return { rows, load, loadEnd: loadavg(), hash };
}

export function printStateRoot(r: { rows: StateRootRow[]; load: number; loadEnd?: number[]; hash?: string }): void {
  process.stdout.write(`state root, us per changed key (load average ${r.load.toFixed(1)} at the start; target: 1-key delta <= 20 us at 10k and 100k keys)\n`);
  if (r.hash !== undefined) process.stdout.write(`tree records hashed by: ${r.hash}\n`);
  process.stdout.write('(wall: elapsed time; cpu: user+system time of the process over the same span, less inflated on a busy machine)\n');
  process.stdout.write('keys     delta  Hostlink wall  Hostlink cpu  mpt wall  mpt cpu  Hostlink/mpt wall  cpu  target (wall)\n');
  for (const x of r.rows) {
    const m = x.mptUs === undefined ? 'not run' : x.mptUs.toFixed(1);
    const mc = x.mptCpuUs === undefined ? '-' : x.mptCpuUs.toFixed(1);
    const ratio = x.mptUs === undefined ? '-' : (x.hostlinkUs / x.mptUs).toFixed(2);
    const cpuRatio = x.mptCpuUs === undefined ? '-' : (x.hostlinkCpuUs / x.mptCpuUs).toFixed(2);
    const target = x.delta === 1 ? (x.hostlinkUs <= 20 ? 'met' : 'NOT met') : '';
    process.stdout.write(
      `${String(x.keys).padEnd(8)} ${String(x.delta).padStart(5)}  ${x.hostlinkUs.toFixed(1).padStart(13)}  ${x.hostlinkCpuUs.toFixed(1).padStart(12)}  ${m.padStart(8)}  ${mc.padStart(7)}  ${ratio.padStart(17)}  ${cpuRatio.padStart(4)}  ${target}\n`,
    );
  }
  if (r.rows.some((x) => x.mptUs === undefined)) process.stdout.write('note: mpt is not run at every size in a quick run\n');
  for (const x of r.rows) {
    if (x.floorUs === undefined || x.floorCpuUs === undefined) continue;
    process.stdout.write(
      `${x.keys} keys, 1-key delta: the store calls alone (put the entry, get and put the root value, one write each) ${x.floorUs.toFixed(1)} us wall, ${x.floorCpuUs.toFixed(1)} cpu; Hostlink / those ${(x.hostlinkUs / x.floorUs).toFixed(2)} wall, ${(x.hostlinkCpuUs / x.floorCpuUs).toFixed(2)} cpu\n`,
    );
  }
  if (r.loadEnd !== undefined) process.stdout.write(`load averages at the end (1, 5, 15 min): ${r.loadEnd.map((x) => x.toFixed(2)).join(' ')}\n`);
}

// `node dist/bench/state-root.js [--quick]`: this section alone (the same figures `npm run bench` prints in section 2).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  printStateRoot(await benchStateRoot({ sizes: quick ? [10_000] : [10_000, 100_000], deltas: quick ? 500 : 2000, mptSizes: quick ? [10_000] : [10_000, 100_000] }));
}
