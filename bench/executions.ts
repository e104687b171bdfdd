/**
 * Executions per second of the kv-store `set` through the real stack: Host on LMDB in a temp dir, VM
 * processes over unix sockets, in pool mode (warm VMs) and one-shot mode (a process per call), measured in
 * the same run. Product target: >= 1,000/s in pool mode on a 2-core machine.
 */
import { id, runLanes } from './lanes.js';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host, type ExecutionMode } from '../src/host/host.js';
import { HOSTLINK_BIN, VM_NODE_FLAGS, type Transport } from '../src/host/supervisor.js';
import { cpuSnapshot, cpuSpent, threadsSpent, timesPer, type ThreadTimes } from './cpu.js';
import { benchSandboxMode } from './sandbox.js';
import { watchHostGc } from './host-gc.js';
import { inChild } from './child.js';
import { openLmdbStore } from '../src/host/state/lmdb-store.js';
import type { KvStore } from '../src/host/state/kv.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ExecutionsRow {
  mode: ExecutionMode;
  /** Pool VMs retire after this many jobs (undefined: never). */
  recycleAfter?: number;
  transport: Transport;
  calls: number;
  concurrency: number;
  /** Contexts the callers share (each of the `concurrency` callers has its own when they are equal). */
  contexts: number;
  /** Calls of the measured run that started early, and of those the ones run again (docs/state.md, "Early runs"). */
  earlyRuns: { runs: number; discarded: number };
  seconds: number;
  perSecond: number;
  failures: number;
  /** CPU per execution, user + sys from the OS: the host process, and the pool's VM processes together. */
  hostCpuUs: number;
  vmCpuUs: number;
  /** The kernel's part (sys) of hostCpuUs and vmCpuUs. */
  hostSysUs: number;
  vmSysUs: number;
  /** Calls made before measuring (8 at a time): the VMs' JIT warms up over the first thousand or so. */
  warmupCalls: number;
  /** VMs alive at the end of the run, whose CPU was counted (with their sandbox relays: a VM is one or two processes). */
  vms: number;
  /** 1-minute load average when the run started. */
  load: number;
  /** The host's garbage collections during the measured calls: scavenges and mark-compacts per 1,000 executions, main-thread pause us per execution. */
  hostGc: { scavengesPer1000: number; markCompactsPer1000: number; pauseUs: number };
  /** One lane only: where the wall time of one call goes (means over further calls after the measured ones). */
  breakdown?: LaneBreakdown;
  /** Both sides' CPU split by thread and their context switches, per execution (same interval as the CPU above). */
  threads: { host: ThreadTimes; vms: ThreadTimes };
  /** Calls' writes per commit during the measured calls (Host.commitStats: group commit). */
  writesPerCommit: number;
}

/**
 * The wall time of one call of a lone lane, step by step, as means in microseconds: each step of the chain the
 * next call waits for, from the call's submission to the next call's, so the steps add up to the whole call.
 * Measured on further calls after the row's measured ones, with the host's own timestamps (call.finished) and
 * the store's (write() wrapped).
 */
export interface LaneBreakdown {
  calls: number;
  /** Call submitted until a VM took the job (its parked next_message answered). */
  handOutUs: number;
  /** VM took the job until its first request arrived (the VM wakes, parses, instantiates, runs). */
  vmFirstRequestUs: number;
  /** First request until consume_result arrived (the contract's run and the host's answers). */
  vmRestUs: number;
  /** consume_result arrived until the commit's write() was called. */
  toCommitUs: number;
  /** write() called until its transaction callback ran (lmdb's batch start, its writer thread, back). */
  commitQueueUs: number;
  /** The transaction callback: the Merkle update and the node's effects, on the main thread. */
  commitBodyUs: number;
  /** Callback returned until write() resolved: the writer thread's page writes, the two syncs, the hop back. */
  commitSyncUs: number;
  /** write() resolved until the caller submitted its next call (the outcome, the lane, the caller). */
  afterCommitUs: number;
  /** The whole call, submission to next submission (the steps add up to it). */
  totalUs: number;
  /** This disk's flush in the same minute: one 4 KiB write + fdatasync in the store's directory, median. */
  flushUs: number;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Stamps of the calls in flight: the store's write() of each, in order (one lane: one at a time). */
interface WriteStamps {
  on: boolean;
  last: { called: number; bodyStart: number; bodyEnd: number; resolved: number } | null;
}

/** The store with write() timed while `stamps.on` (the wrapper costs nothing measurable when off). */
function timedStore(store: KvStore, stamps: WriteStamps): KvStore {
  return {
    get: (t, k) => store.get(t, k),
    range: (t, p) => store.range(t, p),
    snapshot: () => store.snapshot(),
    close: () => store.close(),
    write(fn) {
      if (!stamps.on) return store.write(fn);
      const s = { called: performance.now(), bodyStart: 0, bodyEnd: 0, resolved: 0 };
      stamps.last = s;
      return store
        .write((txn) => {
          s.bodyStart = performance.now();
          try {
            return fn(txn);
          } finally {
            s.bodyEnd = performance.now();
          }
        })
        .then((r) => ((s.resolved = performance.now()), r));
    },
  };
}

/** Runs `calls` calls one after another on one context and takes each step's time (see LaneBreakdown). */
async function laneBreakdown(host: Host, stamps: WriteStamps, dir: string, codeHash: Uint8Array, calls: number, input: (i: number) => Uint8Array): Promise<LaneBreakdown> {
  // call.finished gives the VM's span (took the job -> the commit began) and its requests' times within it; the
  // commit begins right before its write(), so the span is anchored on the write's own timestamp.
  let seen: { vmMs: number; first: number; last: number } | null = null;
  const off = host.events.on('call.finished', (e) => {
    const first = e.trace[0]?.atMs;
    const last = e.trace.at(-1)?.atMs;
    if (e.result === 'return' && first !== undefined && last !== undefined) seen = { vmMs: e.durations.vmMs, first, last };
  });
  const rows: { submitted: number; took: number; first: number; consumed: number; w: NonNullable<WriteStamps['last']>; next: number }[] = [];
  stamps.on = true;
  try {
    let submitted = performance.now();
    for (let i = 0; i < calls; i++) {
      seen = null;
      stamps.last = null;
      await host.call({ codeHash, method: 'set', input: input(1_000_000 + i), contextId: id('breakdown') });
      const next = performance.now();
      const f = seen as { vmMs: number; first: number; last: number } | null;
      const w = stamps.last as WriteStamps['last'];
      if (f !== null && w !== null) {
        const took = w.called - f.vmMs;
        rows.push({ submitted, took, first: took + f.first, consumed: took + f.last, w, next });
      }
      submitted = next;
    }
  } finally {
    stamps.on = false;
    off();
  }
  const step = (g: (r: (typeof rows)[number]) => number): number => mean(rows.map((r) => 1000 * g(r)));
  return {
    calls: rows.length,
    handOutUs: step((r) => r.took - r.submitted),
    vmFirstRequestUs: step((r) => r.first - r.took),
    vmRestUs: step((r) => r.consumed - r.first),
    toCommitUs: step((r) => r.w.called - r.consumed),
    commitQueueUs: step((r) => r.w.bodyStart - r.w.called),
    commitBodyUs: step((r) => r.w.bodyEnd - r.w.bodyStart),
    commitSyncUs: step((r) => r.w.resolved - r.w.bodyEnd),
    afterCommitUs: step((r) => r.next - r.w.resolved),
    totalUs: step((r) => r.next - r.submitted),
    flushUs: flushLatency(dir),
  };
}

/** One 4 KiB page written and fdatasync'd, 100 times in a scratch file: the median wall microseconds. */
function flushLatency(dir: string): number {
  const file = join(dir, 'flush-probe');
  const fd = openSync(file, 'w');
  try {
    const page = Buffer.alloc(4096, 1);
    writeSync(fd, page, 0, page.length, 0);
    fdatasyncSync(fd);
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      writeSync(fd, page, 0, page.length, 0);
      fdatasyncSync(fd);
      times.push(1000 * (performance.now() - t0));
    }
    times.sort((a, b) => a - b);
    return times[50]!;
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
}

/** Starts VMs the default way, with `flags` added to node's command line (undefined: exactly the default). */
export function vmCommandWith(flags: readonly string[] | undefined): readonly string[] | undefined {
  return flags === undefined ? undefined : [process.execPath, ...VM_NODE_FLAGS, ...flags, HOSTLINK_BIN, 'vm'];
}

export async function measure(
  mode: ExecutionMode,
  transport: Transport,
  calls: number,
  concurrency: number,
  recycleAfter?: number,
  vmFlags?: readonly string[],
  warmupCalls = concurrency * 2,
  /** Calls in flight during the warm-up (default: the lanes measured); more only makes a long warm-up quicker. */
  warmupLanes = concurrency,
  /** One lane only: this many further calls on a fresh context, after the measured ones, for the row's breakdown (0: none). */
  breakdownCalls = 0,
  /** Contexts the callers share (bench/lanes.ts): fewer than `concurrency` queues calls on each. */
  contexts = concurrency,
): Promise<ExecutionsRow> {
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-bench-'));
  const vmCommand = vmCommandWith(vmFlags);
  // The breakdown times the store's write(): the host gets the same LMDB store, wrapped (timing off until then).
  const stamps: WriteStamps = { on: false, last: null };
  const store = breakdownCalls > 0 ? timedStore(await openLmdbStore(dir), stamps) : undefined;
  const host = await Host.open({
    dataDir: dir,
    ...(store !== undefined ? { store } : {}),
    mode,
    transport,
    poolSize: 2,
    deadlineMs: 30_000,
    sandbox: benchSandboxMode(),
    ...(recycleAfter !== undefined ? { recycleAfter } : {}),
    ...(vmCommand !== undefined ? { vmCommand } : {}),
  });
  try {
    const codeHash = await host.deploy(Uint8Array.from(readFileSync(join(ROOT, 'examples/kv-store/build/kv-store.wasm'))));
    const input = (i: number): Uint8Array => Uint8Array.from(Buffer.from(JSON.stringify({ key: `k${i}`, value: `value-${i}` })));
    // Warm-up: start the pool, compile the module in each VM.
    for (let done = 0; done < warmupCalls; done += warmupLanes * 2) {
      await Promise.all(Array.from({ length: warmupLanes * 2 }, (_, i) => host.call({ codeHash, method: 'set', input: input(done + i), contextId: id(`w${i % warmupLanes}`) })));
    }
    const load = loadavg()[0]!;
    const commits0 = { ...host.commitStats };
    const early0 = { ...host.earlyRunStats };
    const cpu0 = cpuSnapshot(host.vmPids());
    const gcWatch = watchHostGc();
    const { seconds, failures } = await runLanes(host, codeHash, calls, concurrency, input, contexts);
    const gc = gcWatch.stop();
    const cpu1 = cpuSnapshot(host.vmPids());
    const commits1 = host.commitStats;
    const cpu = cpuSpent(cpu0, cpu1);
    const spent = threadsSpent(cpu0, cpu1);
    const breakdown = breakdownCalls > 0 && concurrency === 1 ? await laneBreakdown(host, stamps, dir, codeHash, breakdownCalls, input) : undefined;
    return {
      mode,
      ...(recycleAfter !== undefined ? { recycleAfter } : {}),
      transport,
      calls,
      concurrency,
      contexts,
      earlyRuns: { runs: host.earlyRunStats.runs - early0.runs, discarded: host.earlyRunStats.discarded - early0.discarded },
      seconds,
      perSecond: calls / seconds,
      failures,
      warmupCalls,
      hostCpuUs: cpu.hostUs / calls,
      vmCpuUs: cpu.vmUs / calls,
      hostSysUs: cpu.hostSysUs / calls,
      vmSysUs: cpu.vmSysUs / calls,
      vms: cpu.vms,
      load,
      hostGc: { scavengesPer1000: (1000 * gc.scavenges) / calls, markCompactsPer1000: (1000 * gc.markCompacts) / calls, pauseUs: (1000 * gc.pauseMs) / calls },
      threads: { host: timesPer(spent.host, calls), vms: timesPer(spent.vms, calls) },
      writesPerCommit: (commits1.writes - commits0.writes) / Math.max(1, commits1.commits - commits0.commits),
      ...(breakdown !== undefined ? { breakdown } : {}),
    };
  } finally {
    await host.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Warm-up of the steady-state row: enough calls for every pool VM's JIT to settle. */
export const STEADY_WARMUP_CALLS = 2000;

export async function benchExecutions(opts: { poolCalls: number; oneShotCalls: number; steadyWarmup?: number }): Promise<ExecutionsRow[]> {
  // 8 lanes: a node serves many contexts at once (calls on one context are serialized by design, so one lane
  // measures latency, several measure throughput). The first row starts measuring after 16 calls, as this
  // bench always did (the VMs' JIT warm-up is then part of the figure); the second after STEADY_WARMUP_CALLS,
  // the steady state a long-running node sees, which is what the pieces (measured warm) add up to. The one-lane
  // row is measured in the steady state too (after 2 warm-up calls it measured the VMs' JIT warm-up: about 1.5x
  // the VM CPU per execution of the same row warmed); its warm-up runs 8 lanes wide only to be quicker.
  // Each kv-store `set` of a new key rewrites its context's key index, so a call costs more the more keys its
  // context holds (a 1,500-key index about 1.5x the wall time of a small one, interleaved in one run). The
  // one-lane row therefore makes as many calls on its one context as each context of the 8-lane rows gets
  // (poolCalls / 8), so both compare the same calls; its breakdown's further calls run on a fresh context.
  // Each row runs in a fresh process (bench/child.ts): not after the earlier sections' garbage, nor the other rows'.
  const steadyWarmup = opts.steadyWarmup ?? STEADY_WARMUP_CALLS;
  const perContext = Math.ceil(opts.poolCalls / 8);
  const row = (...args: Parameters<typeof measure>): Promise<ExecutionsRow> => inChild<ExecutionsRow>(fileURLToPath(import.meta.url), 'measure', args);
  return [
    await row('pool', 'unix', opts.poolCalls, 8),
    await row('pool', 'unix', opts.poolCalls, 8, undefined, undefined, steadyWarmup),
    await row('pool', 'tcp', opts.poolCalls, 8),
    await row('pool', 'unix', perContext, 1, undefined, undefined, steadyWarmup, 8, perContext),
    // One context with 8 callers: calls queued on it, as a block's transactions are (early runs overlap each
    // call's execution with the previous call's commit; a lone caller awaiting each call cannot have them).
    await row('pool', 'unix', perContext, 8, undefined, undefined, steadyWarmup, 8, 0, 1),
    await row('oneshot', 'unix', opts.oneShotCalls, 2),
    // Pool tenancy: a fresh process per call (recycleAfter 1) costs what one-shot costs.
    await row('pool', 'unix', opts.oneShotCalls, 2, 1),
  ];
}

/**
 * The V8 flag a node that runs little but the host may start with: V8 otherwise sizes the host's old generation
 * tightly around its small live heap, and about every other young-generation collection becomes a full one
 * (docs/performance.md, "Hidden classes made per call", end). Not applied by the product: it is a flag of the
 * node's whole process.
 */
export const HEAP_GROWTH_FLAG = '--heap-growing-percent=300';

export interface HeapGrowthRows {
  /** The steady row, alternated: without the flag, with it (the host process's command line; VMs unchanged). */
  plain: ExecutionsRow[];
  flagged: ExecutionsRow[];
}

/** The steady row twice without HEAP_GROWTH_FLAG and twice with it, alternated, each in a fresh process. */
export async function benchHeapGrowth(opts: { poolCalls: number; steadyWarmup?: number }): Promise<HeapGrowthRows> {
  const args: Parameters<typeof measure> = ['pool', 'unix', opts.poolCalls, 8, undefined, undefined, opts.steadyWarmup ?? STEADY_WARMUP_CALLS];
  const out: HeapGrowthRows = { plain: [], flagged: [] };
  for (let round = 0; round < 2; round++) {
    out.plain.push(await inChild<ExecutionsRow>(fileURLToPath(import.meta.url), 'measure', args));
    out.flagged.push(await inChild<ExecutionsRow>(fileURLToPath(import.meta.url), 'measure', args, [HEAP_GROWTH_FLAG]));
  }
  return out;
}

export function printHeapGrowth(h: HeapGrowthRows): void {
  const mean = (rows: ExecutionsRow[], f: (r: ExecutionsRow) => number): number => rows.reduce((n, r) => n + f(r), 0) / rows.length;
  const line = (rows: ExecutionsRow[]): string =>
    `${rows.map((r) => r.perSecond.toFixed(0)).join(', ')} exec/s, host CPU ${rows.map((r) => r.hostCpuUs.toFixed(0)).join(', ')} us/exec, mark-compacts ${rows.map((r) => r.hostGc.markCompactsPer1000.toFixed(2)).join(', ')} per 1,000`;
  process.stdout.write(`host process started with ${HEAP_GROWTH_FLAG} (steady row, alternated twice, fresh processes; a choice for a node that runs little but the host, not applied by Hostlink):\n`);
  process.stdout.write(`  without: ${line(h.plain)}\n  with:    ${line(h.flagged)}\n`);
  process.stdout.write(
    `  with / without: ${(mean(h.flagged, (r) => r.perSecond) / mean(h.plain, (r) => r.perSecond)).toFixed(2)}x executions/s, host CPU ${(mean(h.flagged, (r) => r.hostCpuUs) / mean(h.plain, (r) => r.hostCpuUs)).toFixed(2)}x\n`,
  );
  const failed = [...h.plain, ...h.flagged].filter((r) => r.failures > 0).length;
  if (failed) process.stdout.write(`WARNING: ${failed} of these rows had failed calls\n`);
}

export function printExecutions(rows: ExecutionsRow[]): void {
  const pool = rows.find((r) => r.mode === 'pool' && r.concurrency > 1 && r.contexts === r.concurrency && r.transport === 'unix' && r.recycleAfter === undefined);
  const steady = steadyRow(rows);
  const recycled = rows.find((r) => r.recycleAfter === 1);
  const oneshot = rows.find((r) => r.mode === 'oneshot');
  process.stdout.write('\nkv-store set, executions per second (Host on LMDB, real VM processes)\n');
  process.stdout.write('CPU per execution is user + sys from the OS: host = the row\'s process (each row runs in a fresh one; all its threads), VMs = the pool\'s VM processes alive at the end (one-shot VMs exit: not counted)\n');
  process.stdout.write('host GC = the host\'s scavenges and mark-compacts per 1,000 executions, and their main-thread pause in us per execution\n');
  process.stdout.write('mode      recycle  transport  lanes  ctxs  warm-up  calls   seconds  exec/s  failures  host CPU us/exec (sys)  VM CPU us/exec (sys)  VMs  load  host GC scav/mc/us\n');
  for (const r of rows) {
    const vmCpu = r.mode === 'pool' && r.recycleAfter === undefined ? `${r.vmCpuUs.toFixed(0)} (${r.vmSysUs.toFixed(0)})` : '-';
    const hostCpu = `${r.hostCpuUs.toFixed(0)} (${r.hostSysUs.toFixed(0)})`;
    process.stdout.write(
      `${r.mode.padEnd(9)} ${String(r.recycleAfter ?? '-').padStart(7)}  ${r.transport.padEnd(10)} ${String(r.concurrency).padStart(5)}  ${String(r.contexts).padStart(4)}  ${String(r.warmupCalls).padStart(7)}  ${String(r.calls).padStart(5)}  ${r.seconds.toFixed(2).padStart(8)}  ${r.perSecond.toFixed(0).padStart(6)}  ${String(r.failures).padStart(8)}  ${hostCpu.padStart(21)}  ${vmCpu.padStart(20)}  ${String(r.vms).padStart(3)}  ${r.load.toFixed(1).padStart(4)}  ${`${r.hostGc.scavengesPer1000.toFixed(1)}/${r.hostGc.markCompactsPer1000.toFixed(2)}/${r.hostGc.pauseUs.toFixed(0)}`.padStart(18)}\n`,
    );
  }
  if (pool && oneshot) {
    if (recycled) process.stdout.write(`warm pool / pool with recycleAfter 1 throughput ratio: ${(pool.perSecond / recycled.perSecond).toFixed(1)}x\n`);
    // The target is judged on the row after 16 warm-up calls (VMs whose JIT is still warming up, as a new pool's
    // are); the steady row beside it says what the same pool does once warm.
    const verdict = (r: ExecutionsRow): string => `${r.perSecond.toFixed(0)}/s ${r.perSecond >= 1000 ? 'met' : 'NOT met'}`;
    const warm = steady && steady !== pool ? `; warm (after ${steady.warmupCalls} warm-up calls): ${verdict(steady)}` : '';
    process.stdout.write(`pool / one-shot throughput ratio: ${(pool.perSecond / oneshot.perSecond).toFixed(1)}x; pool target >= 1000/s: ${verdict(pool)} after ${pool.warmupCalls} warm-up calls${warm}\n`);
  }
  if (pool && steady && steady !== pool) {
    process.stdout.write(`steady state (after ${steady.warmupCalls} warm-up calls) / after 16: ${(steady.perSecond / pool.perSecond).toFixed(2)}x executions/s, CPU per execution ${((steady.hostCpuUs + steady.vmCpuUs) / (pool.hostCpuUs + pool.vmCpuUs)).toFixed(2)}x\n`);
  }
  if (steady) printThreads(steady);
  for (const r of rows) if (r.breakdown && r.breakdown.calls > 0) printLaneBreakdown(r.breakdown);
  const failed = rows.filter((r) => r.failures > 0);
  if (failed.length) process.stdout.write(`WARNING: ${failed.length} row(s) had failed calls: their figures do not measure executions (run one call with hostlink call to see why)\n`);
}

/**
 * Where the steady row's CPU goes by thread, and how often each side sleeps and wakes. On a virtual machine a
 * context switch (and a page fault) costs far more than on bare metal, so the switch counts are part of the cost.
 */
export function printThreads(r: ExecutionsRow): void {
  const { host, vms } = r.threads;
  const line = (who: string, t: ThreadTimes, others: string): string =>
    `  ${who}: main thread ${t.mainUs.toFixed(0)} us, ${others} ${t.otherUs.toFixed(0)} us; context switches ${t.voluntary.toFixed(1)} voluntary (blocked), ${t.involuntary.toFixed(1)} involuntary (preempted)\n`;
  process.stdout.write(`steady row (${r.concurrency} lanes, ${r.transport}): ${r.writesPerCommit.toFixed(2)} calls' writes per durable commit (group commit, HostOptions.commitGroupMs)\n`);
  process.stdout.write(`steady row (${r.concurrency} lanes, ${r.transport}), per execution, by thread (from /proc):\n`);
  process.stdout.write(line('host', host, 'other threads (libuv pool: lmdb commits; V8 GC and compiler helpers)'));
  process.stdout.write(line('VMs ', vms, 'other threads (V8 GC and compiler helpers)'));
  // Each VM runs one execution at a time, so the rate is VMs / (a VM main thread's wall time per execution):
  // what that wall time is made of says whether the VMs are bound by their own CPU, by the CPUs being busy,
  // or by waiting for the host.
  const split = (who: string, t: ThreadTimes, threads: number, blocked: string): string => {
    const wall = (r.seconds * 1e6 * threads) / r.calls;
    const parts: [string, number][] = [
      ['on a CPU', t.mainUs],
      ['waiting for a CPU', t.mainWaitUs],
      [`blocked (${blocked})`, Math.max(0, wall - t.mainUs - t.mainWaitUs)],
    ];
    return `  ${who}: ${wall.toFixed(0)} us of wall = ${parts.map(([n, us]) => `${n} ${us.toFixed(0)} (${((100 * us) / wall).toFixed(0)}%)`).join(', ')}\n`;
  };
  process.stdout.write(`main threads' wall time per execution (schedstat; the pool's rate is VMs / a VM's wall time per execution):\n`);
  process.stdout.write(split('host main thread', host, 1, 'idle until a socket, lmdb or a timer wakes it'));
  process.stdout.write(split(`VM main threads (${r.vms})`, vms, r.vms, "waiting for the host's answers and for jobs"));
}

/** One lone call's wall time step by step. */
export function printLaneBreakdown(b: LaneBreakdown): void {
  const steps: [string, number][] = [
    ['host: call submitted -> a VM took the job', b.handOutUs],
    ['VM: job taken -> its first request (wake, parse, instantiate, run)', b.vmFirstRequestUs],
    ['VM: first request -> consume_result (the rest of the run, the host\'s answers)', b.vmRestUs],
    ['host: consume_result -> the commit\'s write()', b.toCommitUs],
    ['commit: write() -> its transaction runs (lmdb batch start, writer thread, back)', b.commitQueueUs],
    ['commit: the transaction (Merkle update, node effects; main thread)', b.commitBodyUs],
    ['commit: transaction done -> durable (page writes, data sync, meta-page sync, back)', b.commitSyncUs],
    ['host: durable -> next call submitted (outcome, lane, caller)', b.afterCommitUs],
  ];
  process.stdout.write(`one lane, one call step by step (means over ${b.calls} further calls on a fresh context, us; the whole call ${b.totalUs.toFixed(0)} us):\n`);
  for (const [name, us] of steps) process.stdout.write(`  ${name.padEnd(84)} ${us.toFixed(0).padStart(6)}  ${((100 * us) / b.totalUs).toFixed(0).padStart(3)}%\n`);
  process.stdout.write(`  (this disk's flush right after: one 4 KiB write + fdatasync, median ${b.flushUs.toFixed(0)} us; a lone durable LMDB commit waits for two, its data pages then its meta page)\n`);
  // The commit-bound limit with this workload's own lone commit (what section 4's one-put commit stands for).
  const commitUs = b.commitQueueUs + b.commitBodyUs + b.commitSyncUs;
  process.stdout.write(
    `  this call's own lone commit, write() to durable: ${commitUs.toFixed(0)} us -> commit-bound limit ${(1e6 / commitUs).toFixed(0)}/s; these calls ran at ${(1e6 / b.totalUs).toFixed(0)}/s, ${(b.totalUs / commitUs).toFixed(2)}x below it\n`,
  );
}

/** The pooled 8-lane unix row measured after the long warm-up (the steady state). */
export function steadyRow(rows: ExecutionsRow[]): ExecutionsRow | undefined {
  return rows.find((r) => r.mode === 'pool' && r.concurrency > 1 && r.contexts === r.concurrency && r.transport === 'unix' && r.recycleAfter === undefined && r.warmupCalls > 16);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printExecutions(await benchExecutions({ poolCalls: 4000, oneShotCalls: 60 }));
}
