/**
 * The pieces a pooled kv-store `set` execution is made of, each measured alone in this process, and the
 * ceiling they add up to (the issue's table): what the full pooled execution would cost if the pieces were all
 * there is. Each figure is CPU microseconds (user + sys of the measuring process, from the OS) of a loop with
 * nothing else of ours running: wall time on the shared machine would count whatever else runs on the core.
 *
 * The VM's pieces (parse, instantiate, the in-process execution) are measured in child processes started like a
 * VM (`node` with the VMs' flags, this file as the entry), one piece per process, not in the bench's own
 * process: a wasm instance's memory is freed only by a garbage collection, and in the bench process (its heap
 * grown by the earlier sections) each collection cost several times what it costs in a VM, which made
 * "instantiate" alone look dearer than instantiate + run, and whichever variant ran second in an alternated
 * pair pay for the first one's garbage. The collections stay inside the timed blocks: freeing each execution's
 * memory is part of what an execution costs a VM.
 *
 *   message parse            parseMessage of the execution message
 *   instantiate              new WebAssembly.Instance of the cached instrumented module as the runner makes
 *                            it: the module's import functions built once (ModuleLink), a recycled memory
 *                            (memory-pool.ts), a fresh meter and Execution per instance; printed beside it,
 *                            instantiate + run `set` as the runner does, with fresh closures, with a fresh
 *                            memory per instance, and with fresh memories under V8's trap handler (the
 *                            runner before each change), each in its own processes, alternated
 *   the rest of the VM work  runInProcess (a real Session over the in-process channel: parse, instantiate,
 *                            the contract's wasm, its host functions, result and effects encoded) minus the
 *                            two above, printed in two parts: the contract's run with its host functions
 *                            (instantiate + run minus instantiate, storage served from memory), and the
 *                            rest (the runner, the session and its handlers, result and effects encoding)
 *   two round trips          next_message + consume_result: 2 x the native channel against Hostlink's session
 *                            (section 1's median with both ends on one CPU, where a round trip's wall time is
 *                            the work of both ends; across CPUs it also holds the wake-ups' latency)
 *   durable commit           one store.write() of a set's entries, 64 in flight (group commit), LMDB synced:
 *                            CPU of every thread, lmdb's writer thread included
 *   state root               applyDelta of one key at 10k keys (section 2)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInProcess } from '../src/host/in-process.js';
import type { SessionBackend } from '../src/host/methods.js';
import { openLmdbStore } from '../src/host/state/lmdb-store.js';
import { buildMessage, parseMessage } from '../src/protocol/message.js';
import { createMeter, HOSTLINK_MODULE, MEMORY_IMPORT_NAME, prepareModule } from '../src/vm/instrument/index.js';
import { MemoryPool, type MemoryLimits } from '../src/vm/memory-pool.js';
import { policyFor } from '../src/vm/policy.js';
import { CodeCache } from '../src/vm/runner.js';
import { Execution } from '../src/vm/execution.js';
import { IMPLEMENTATIONS, isCatalogued, ModuleLink } from '../src/vm/imports/index.js';
import { VM_NODE_FLAGS } from '../src/host/supervisor.js';
import type { LaneBreakdown } from './executions.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const sha = (b: Uint8Array | string): Uint8Array => Uint8Array.from(createHash('sha256').update(b).digest());
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

export interface Pieces {
  /** runInProcess as a whole. */
  vmWorkUs: number;
  /** parseMessage of the execution message alone. */
  parseUs: number;
  /** new WebAssembly.Instance of the cached (instrumented, compiled) kv-store module as the runner makes it: the module's import functions reused, a fresh meter and Execution. */
  instantiateUs: number;
  /** Instantiate and run `set` with the import functions built once (ModuleLink) and with fresh closures, alternated. */
  linkUs: number;
  freshUs: number;
  /** Instantiate and run `set` (import functions built once, a fresh memory each) in processes with V8's trap handler instead of the VMs' inline bounds checks, alternated with linkUs. */
  trapHandlerUs: number;
  /** Instantiate and run `set` with a fresh memory per instance instead of a recycled one (the runner before), alternated with linkUs. */
  freshMemoryUs: number;
  commitUs: number;
  /** Wall time of one durable write with nothing else in flight: what bounds one context's calls. */
  serialCommitUs: number;
  /** CPU of that write (every thread): a commit nobody shares, paid by every call of a context alone. */
  serialCommitCpuUs: number;
}

/**
 * CPU microseconds (user + sys of this process, every thread) since `before`. CPU rather than wall time: on a
 * shared machine a loaded core stretches wall time by whatever else runs, while the CPU a piece costs is what
 * the ceiling adds up.
 */
const cpuSince = (before: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(before);
  return d.user + d.system;
};

/**
 * Median CPU microseconds per call of `fn` over 5 blocks of `per` calls, after two warm-up blocks (the JIT and
 * the heap's collection rhythm settle: a block then holds several collections, so each pays its share).
 */
function perCall(per: number, fn: (i: number) => void): number {
  for (let i = 0; i < 2 * per; i++) fn(i);
  const blocks: number[] = [];
  for (let b = 0; b < 5; b++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < per; i++) fn(i);
    blocks.push(cpuSince(t0) / per);
  }
  return median(blocks);
}

/** runInProcess of kv-store `set` with a warm code cache: microseconds per execution (median of 5 blocks). */
export function vmWork(calls: number): number {
  const code = Uint8Array.from(readFileSync(join(ROOT, 'examples/kv-store/build/kv-store.wasm')));
  const codeHash = sha(code);
  const state = new Map<string, Uint8Array>();
  const backend: SessionBackend = {
    getCode: (h) => (Buffer.from(h).equals(Buffer.from(codeHash)) ? code : undefined),
    readState: (_ctx, key) => state.get(Buffer.from(key).toString('hex')),
  };
  const cache = new CodeCache();
  const contextId = sha('pieces');
  const message = (i: number): string =>
    buildMessage({ codeHash, method: 'set', input: Uint8Array.from(Buffer.from(JSON.stringify({ key: `k${i}`, value: `value-${i}` }))), contextId });
  const run = (i: number): void => {
    const end = runInProcess(backend, message(i), cache);
    if (end.kind !== 'result' || end.result.code !== 'return') throw new Error(`kv-store set failed in process: ${JSON.stringify(end.kind)}`);
  };
  run(0); // compile; perCall warms the JIT up
  return perCall(calls, run);
}

/** The kv-store `set` message and its module as the VM caches it (validated, instrumented, compiled once). */
function kvSetSetup(): { json: string; msg: ReturnType<typeof parseMessage>; policy: ReturnType<typeof policyFor>; module: WebAssembly.Module; memory: MemoryLimits } {
  const code = readFileSync(join(ROOT, 'examples/kv-store/build/kv-store.wasm'));
  const json = buildMessage({ codeHash: sha(code), method: 'set', input: Uint8Array.from(Buffer.from('{"key":"k1","value":"value-1"}')), contextId: sha('pieces') });
  const msg = parseMessage(json);
  const policy = policyFor(msg);
  const prepared = prepareModule(code, policy, { importMemory: true });
  return { json, msg, policy, module: new WebAssembly.Module(prepared.bytes), memory: prepared.importedMemory! };
}

/** parseMessage of the execution message alone: CPU microseconds per parse. */
export function parseAlone(calls: number): number {
  const { json } = kvSetSetup();
  return perCall(calls, () => parseMessage(json));
}

/**
 * Instantiation alone, on the same message and module as vmWork, as the runner makes it: the module's import
 * functions built once (ModuleLink), a fresh meter and a fresh Execution per instance. The instances are not
 * run; their memories are freed by the collections inside the timed blocks, as in a VM.
 */
export function instantiateAlone(calls: number): number {
  const { msg, policy, module, memory: limits } = kvSetSetup();
  const link = new ModuleLink(WebAssembly.Module.imports(module));
  const pool = new MemoryPool();
  return perCall(calls, () => {
    const meter = createMeter(msg.gasLimit, policy);
    pool.lend(limits, (memory) => link.run(new Execution(msg, { readMany: () => [] }, meter), meter, (imports) => new WebAssembly.Instance(module, imports), memory));
  });
}

/**
 * The instantiate-and-call step of the runner one way: import functions built once per module (`link`,
 * ModuleLink, what the runner does) or fresh closures per execution (`fresh`, what it did before). Each
 * execution gets a fresh meter, Execution (storage served from memory, no host) and instance, and runs kv-store
 * `set`. CPU microseconds per execution. The two ways are measured in separate processes (benchPieces), so
 * neither pays for the other's garbage.
 */
export function instantiateAndRun(calls: number, how: 'link' | 'fresh' | 'fresh-memory'): number {
  const { msg, policy, module, memory: limits } = kvSetSetup();
  // 'fresh-memory': a new memory for every instance, as VMs did before they recycled them.
  const pool = new MemoryPool(how !== 'fresh-memory');
  const wanted = WebAssembly.Module.imports(module);
  const link = new ModuleLink(wanted);
  const source = { readMany: (keys: Uint8Array[]) => keys.map(() => null) };
  const call = (instance: WebAssembly.Instance, ex: Execution): void => {
    ex.attachMemory(instance.exports.memory as WebAssembly.Memory);
    (instance.exports.set as () => void)();
    if (ex.returnValue === null || !ex.returnValue.ok) throw new Error('kv-store set did not return Ok in the bench');
  };
  const viaLink = (): void => {
    const meter = createMeter(msg.gasLimit, policy);
    const ex = new Execution(msg, source, meter);
    pool.lend(limits, (memory) => link.run(ex, meter, (imports) => call(new WebAssembly.Instance(module, imports), ex), memory));
  };
  type Impl = (ex: Execution, ...args: (bigint | number)[]) => bigint | number | void;
  const fresh = (): void => {
    const meter = createMeter(msg.gasLimit, policy);
    const ex = new Execution(msg, source, meter);
    const env: Record<string, (...args: (bigint | number)[]) => bigint | number | void> = {};
    for (const { module: m, name } of wanted) {
      if (m !== 'env' || !isCatalogued(name)) continue;
      const impl = IMPLEMENTATIONS[name] as Impl | undefined;
      if (impl === undefined) continue;
      env[name] = (...args) => {
        ex.enter(name);
        return impl(ex, ...args);
      };
    }
    pool.lend(limits, (memory) => call(new WebAssembly.Instance(module, { env, [HOSTLINK_MODULE]: { ...meter.imports[HOSTLINK_MODULE], [MEMORY_IMPORT_NAME]: memory } }), ex));
  };
  return perCall(calls, how === 'fresh' ? fresh : viaLink);
}

/** The pieces a child process measures (`node pieces.js PIECE CALLS` prints the CPU microseconds per call). */
const CHILD_PIECES = {
  parse: parseAlone,
  instantiate: instantiateAlone,
  link: (calls: number) => instantiateAndRun(calls, 'link'),
  fresh: (calls: number) => instantiateAndRun(calls, 'fresh'),
  'fresh-memory': (calls: number) => instantiateAndRun(calls, 'fresh-memory'),
  'vm-work': vmWork,
} as const;
type ChildPiece = keyof typeof CHILD_PIECES;

/** The VMs' node flags without their inline wasm bounds checks: V8's trap handler and its guard regions. */
const TRAP_HANDLER_FLAGS = VM_NODE_FLAGS.filter((f) => f !== '--disable-wasm-trap-handler');

/** Measures one VM piece in a fresh process started with the VMs' node flags (a VM's heap, not the bench's). */
function inChild(piece: ChildPiece, calls: number, flags: readonly string[] = VM_NODE_FLAGS): number {
  const out = execFileSync(process.execPath, [...flags, fileURLToPath(import.meta.url), piece, String(calls)], { encoding: 'utf8' });
  const us = Number(out.trim());
  if (!Number.isFinite(us)) throw new Error(`bench piece ${piece} printed ${JSON.stringify(out)}`);
  return us;
}

/**
 * Durable LMDB writes of one 64-byte key + ~60-byte value, `inFlight` at a time: CPU microseconds per write
 * (every thread) and wall microseconds per write, medians of three runs.
 */
async function durableCommit(writes: number, inFlight: number): Promise<{ cpuUs: number; wallUs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-bench-commit-'));
  const store = await openLmdbStore(dir);
  try {
    const key = (i: number): Uint8Array => {
      const k = new Uint8Array(64);
      new DataView(k.buffer).setUint32(60, i);
      return k;
    };
    const value = new Uint8Array(60).fill(7);
    const go = async (n: number): Promise<{ cpuUs: number; wallUs: number }> => {
      let next = 0;
      const t0 = process.cpuUsage();
      const w0 = process.hrtime.bigint();
      await Promise.all(Array.from({ length: inFlight }, async () => {
        while (next < n) {
          const i = next++;
          await store.write((txn) => txn.put('state', key(i), value));
        }
      }));
      return { cpuUs: cpuSince(t0) / n, wallUs: Number(process.hrtime.bigint() - w0) / 1000 / n };
    };
    await go(Math.min(500, writes));
    const runs = [await go(writes), await go(writes), await go(writes)];
    return { cpuUs: median(runs.map((r) => r.cpuUs)), wallUs: median(runs.map((r) => r.wallUs)) };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchPieces(opts: { calls: number; writes: number }): Promise<Pieces> {
  // The two ways of linking, each in its own processes, alternated over three rounds (median): the load hits
  // both alike, and neither pays for the other's garbage.
  // The same for the VMs' inline bounds checks against the trap handler's guard regions (each fresh memory
  // then reserves and unmaps 10 GiB of address space).
  const link: number[] = [];
  const fresh: number[] = [];
  const trapHandler: number[] = [];
  const freshMemory: number[] = [];
  for (let round = 0; round < 3; round++) {
    const pair = [
      () => link.push(inChild('link', opts.calls)),
      () => fresh.push(inChild('fresh', opts.calls)),
      () => trapHandler.push(inChild('fresh-memory', opts.calls, TRAP_HANDLER_FLAGS)),
      () => freshMemory.push(inChild('fresh-memory', opts.calls)),
    ];
    for (let i = 0; i < pair.length; i++) pair[(i + round) % pair.length]!();
  }
  const serial = await durableCommit(Math.ceil(opts.writes / 8), 1);
  return {
    vmWorkUs: inChild('vm-work', opts.calls),
    parseUs: inChild('parse', opts.calls),
    instantiateUs: inChild('instantiate', opts.calls),
    linkUs: median(link),
    freshUs: median(fresh),
    trapHandlerUs: median(trapHandler),
    freshMemoryUs: median(freshMemory),
    commitUs: (await durableCommit(opts.writes, 64)).cpuUs,
    serialCommitUs: serial.wallUs,
    serialCommitCpuUs: serial.cpuUs,
  };
}

export interface Ceiling {
  pieces: [string, number][];
  totalUs: number;
  linkUs?: number;
  freshUs?: number;
  trapHandlerUs?: number;
  freshMemoryUs?: number;
}

export function ceiling(p: Pieces, roundTripUs: number | undefined, stateRootUs: number | undefined): Ceiling {
  // The in-process execution beyond parse and instantiation, split with the instantiate + run figure: the
  // contract's run with its host functions (storage served from memory), and what remains of runInProcess.
  // Differences of medians from separate processes: a side that comes out negative is noise and counts as 0.
  const rest = Math.max(0, p.vmWorkUs - p.parseUs - p.instantiateUs);
  const run = Math.min(rest, Math.max(0, p.linkUs - p.instantiateUs));
  const pieces: [string, number][] = [
    ['parse the execution message', p.parseUs],
    ['instantiate the cached kv-store module: its import functions reused, fresh meter and Execution', p.instantiateUs],
    ["run set: the contract's wasm and its host functions, storage served from memory (instantiate + run minus instantiate)", run],
    ['the rest of the in-process execution: runner, the host session and its handlers over the in-process channel, result and effects encoding', rest - run],
    ['two host round trips (native channel against the session, both ends on one CPU)', 2 * (roundTripUs ?? 0)],
    ['durable commit, 64 in flight (group commit)', p.commitUs],
    ['state root for one changed key at 10k keys', stateRootUs ?? 0],
  ];
  return { pieces, totalUs: pieces.reduce((s, [, us]) => s + us, 0), linkUs: p.linkUs, freshUs: p.freshUs, trapHandlerUs: p.trapHandlerUs, freshMemoryUs: p.freshMemoryUs };
}

export function printCeiling(c: Ceiling, pooled: { perSecond: number; hostCpuUs: number; vmCpuUs: number } | undefined, cores: number): void {
  process.stdout.write('pieces of one pooled kv-store set, each measured alone (CPU us; the round trips and the state root are section 1 and 2 figures)\n');
  for (const [name, us] of c.pieces) process.stdout.write(`  ${us.toFixed(1).padStart(8)}  ${name}\n`);
  const ceilingPerSecond = (cores * 1e6) / c.totalUs;
  if (c.linkUs !== undefined && c.freshUs !== undefined) {
    process.stdout.write(`  (instantiate + run set, alternated: import functions built once ${c.linkUs.toFixed(1)} us, fresh closures per execution as before ${c.freshUs.toFixed(1)} us: ${(c.freshUs / c.linkUs).toFixed(2)}x)\n`);
  }
  if (c.linkUs !== undefined && c.freshMemoryUs !== undefined) {
    process.stdout.write(`  (same runs: each instance's memory recycled, zero-filled, as in VMs ${c.linkUs.toFixed(1)} us, a fresh memory per instance as before ${c.freshMemoryUs.toFixed(1)} us: ${(c.freshMemoryUs / c.linkUs).toFixed(2)}x)\n`);
  }
  if (c.freshMemoryUs !== undefined && c.trapHandlerUs !== undefined) {
    process.stdout.write(`  (same runs, fresh memories: wasm bounds checked inline as in VMs ${c.freshMemoryUs.toFixed(1)} us, by V8's trap handler with guard regions as before ${c.trapHandlerUs.toFixed(1)} us: ${(c.trapHandlerUs / c.freshMemoryUs).toFixed(2)}x)\n`);
  }
  process.stdout.write(`  ${c.totalUs.toFixed(1).padStart(8)}  ceiling: CPU per execution if the pieces were all there is -> ${ceilingPerSecond.toFixed(0)} executions/s on ${cores} cores\n`);
  if (pooled) {
    const cpu = pooled.hostCpuUs + pooled.vmCpuUs;
    process.stdout.write(
      `full pooled execution (8 lanes, unix, steady state): ${cpu.toFixed(0)} us of CPU (host ${pooled.hostCpuUs.toFixed(0)} + VMs ${pooled.vmCpuUs.toFixed(0)}), ${pooled.perSecond.toFixed(0)} executions/s\n` +
        `ratio to the ceiling: CPU ${(cpu / c.totalUs).toFixed(2)}x, throughput ${(ceilingPerSecond / pooled.perSecond).toFixed(2)}x below (target: within 2x)\n`,
    );
  }
}

/**
 * One context alone: its calls are serialized, so each waits for the previous one's durable commit. The
 * commit-bound limit is one call per durable commit with nothing else in flight (wall time); the target is
 * the 1-lane pooled row within 2x of it. That limit leaves out the execution itself, which one context cannot
 * overlap with its own commit either: the serial limit adds the pieces of one execution (the ceiling without
 * its group-commit share) to the lone commit's wall time, the honest bound for one lane on this machine.
 *
 * The lone commit measured here is one 60-byte put into a nearly empty store (2-3 pages), a lower bound of any
 * call's commit; a kv `set` writes its value, its context's key index and the tree's root value (~15 pages, two
 * flushes). So the one-lane row's breakdown (section 3) also times the calls' own lone commits, and the target is
 * printed against both: the call's own commit is the limit a context of such calls is bound by.
 */
export function printOneContext(
  p: Pieces,
  oneLane: { perSecond: number; hostCpuUs: number; vmCpuUs: number; warmupCalls: number; breakdown?: LaneBreakdown } | undefined,
  c?: Ceiling,
  /** The same calls with 8 callers on the one context: calls queued on it (early runs overlap them with commits). */
  queued?: { perSecond: number; hostCpuUs: number; vmCpuUs: number; concurrency: number; calls: number; earlyRuns: { runs: number; discarded: number } },
): void {
  const limit = 1e6 / p.serialCommitUs;
  process.stdout.write(
    `one context alone: durable commit with nothing else in flight ${p.serialCommitUs.toFixed(0)} us wall (${p.serialCommitCpuUs.toFixed(0)} us CPU, every thread, shared with no other call) -> commit-bound limit ${limit.toFixed(0)} executions/s`,
  );
  if (oneLane) process.stdout.write(`; measured (1 lane, pool, unix, after ${oneLane.warmupCalls} warm-up calls) ${oneLane.perSecond.toFixed(0)}/s, ${(limit / oneLane.perSecond).toFixed(2)}x below (target: within 2x; a minimal commit's limit)`);
  process.stdout.write('\n');
  const b = oneLane?.breakdown;
  const own = b === undefined ? undefined : b.commitQueueUs + b.commitBodyUs + b.commitSyncUs;
  if (b !== undefined && own !== undefined) {
    process.stdout.write(
      `  against the calls' own lone commit (section 3's breakdown, ${b.calls} calls on a fresh context): ${own.toFixed(0)} us write() to durable -> limit ${(1e6 / own).toFixed(0)}/s; they ran at ${(1e6 / b.totalUs).toFixed(0)}/s, ${(b.totalUs / own).toFixed(2)}x below (target: within 2x)\n`,
    );
  }
  if (queued !== undefined) {
    // A caller that awaits each call cannot overlap one call's execution with the previous one's commit; calls
    // queued on the context can (docs/state.md, "Early runs"): the commit-bound limit is theirs to reach.
    const ownPart = own === undefined ? '' : `, ${((1e6 / own) / queued.perSecond).toFixed(2)}x below the calls' own lone commit's`;
    process.stdout.write(
      `  one context, ${queued.concurrency} callers (calls queued on it, as a block's transactions): ${queued.perSecond.toFixed(0)}/s, ${(limit / queued.perSecond).toFixed(2)}x below the minimal commit's limit${ownPart} (target: within 2x); CPU per execution host ${queued.hostCpuUs.toFixed(0)} + VM ${queued.vmCpuUs.toFixed(0)} us; early runs ${queued.earlyRuns.runs} of ${queued.calls} calls, ${queued.earlyRuns.discarded} run again${oneLane ? `; ${(queued.perSecond / oneLane.perSecond).toFixed(2)}x the lone caller's rate` : ''}\n`,
    );
  }
  if (c === undefined) return;
  const groupCommit = c.pieces.find(([name]) => name.startsWith('durable commit'))?.[1] ?? 0;
  const serialUs = c.totalUs - groupCommit + p.serialCommitUs;
  process.stdout.write(`  serial limit: one execution's pieces (${(c.totalUs - groupCommit).toFixed(0)} us) then its lone commit (${p.serialCommitUs.toFixed(0)} us wall) -> ${(1e6 / serialUs).toFixed(0)} executions/s`);
  if (oneLane) {
    process.stdout.write(`; measured ${(1e6 / oneLane.perSecond).toFixed(0)} us per call, ${((1e6 / serialUs) / oneLane.perSecond).toFixed(2)}x below; its CPU per execution host ${oneLane.hostCpuUs.toFixed(0)} + VM ${oneLane.vmCpuUs.toFixed(0)} us`);
  }
  process.stdout.write('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // A child of benchPieces: measure one VM piece in this fresh process and print its CPU microseconds per call.
  const [piece, calls] = process.argv.slice(2);
  if (piece === undefined || !(piece in CHILD_PIECES)) {
    process.stderr.write(`usage: node pieces.js (${Object.keys(CHILD_PIECES).join('|')}) CALLS\n`);
    process.exit(2);
  }
  process.stdout.write(`${CHILD_PIECES[piece as ChildPiece](Number(calls ?? 1000))}\n`);
}
