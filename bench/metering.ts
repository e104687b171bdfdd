/**
 * Metering overhead: AssemblyScript contracts (bench/contracts/*) run instrumented and plain in the same
 * process, plus the time prepareModule takes on a 1 MiB module. Targets (issue 4): geometric mean of the
 * ratios <= 1.35, worst <= 1.7, 1 MiB instrumented in < 150 ms.
 *
 *   node dist/bench/metering.js
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { VM_NODE_FLAGS } from '../src/host/supervisor.js';
import { createMeter, prepareModule, type ModulePolicy } from '../src/vm/instrument/index.js';
import { readModule } from '../src/vm/instrument/reader.js';
import { writeModule } from '../src/vm/instrument/writer.js';
import { inChild } from './child.js';

export interface MeteringCase {
  name: string;
  plainMs: number;
  meteredMs: number;
  ratio: number;
  gasUsed: bigint;
}

export interface MeteringResult {
  cases: MeteringCase[];
  geomean: number;
  worst: number;
  instrument1MiB: { moduleBytes: number; outputBytes: number; medianMs: number; minMs: number };
}

/** A policy generous enough for the benchmarks; the limits are not what is measured. */
export const BENCH_POLICY: ModulePolicy = {
  maxModuleBytes: 16 << 20,
  maxFunctions: 100_000,
  maxLocalsPerFunction: 4096,
  maxTableSize: 100_000,
  maxDataBytes: 4 << 20,
  maxMemoryPages: 1024,
  maxStackHeight: 32768,
  floats: 'canonicalize',
  checkImport: () => undefined,
};

const contractPath = (name: string): string =>
  fileURLToPath(new URL(`../../bench/contracts/${name}/build/${name}.wasm`, import.meta.url));

export function loadContract(name: string): Uint8Array {
  return new Uint8Array(readFileSync(contractPath(name)));
}

type Exports = Record<string, (...args: number[]) => number | bigint>;

const ENV = { env: { abort: (): never => { throw new Error('abort'); } } };

function instantiate(bytes: Uint8Array, metered: boolean, gas: bigint): { exports: Exports; gasUsed: () => bigint } {
  if (!metered) {
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), ENV);
    return { exports: inst.exports as unknown as Exports, gasUsed: () => 0n };
  }
  const prepared = prepareModule(bytes, BENCH_POLICY);
  const meter = createMeter(gas, BENCH_POLICY);
  const inst = new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes), { ...ENV, ...meter.imports });
  return { exports: inst.exports as unknown as Exports, gasUsed: () => meter.gasUsed() };
}

interface Workload {
  name: string;
  contract: string;
  setup?: (e: Exports) => void;
  run: (e: Exports) => number | bigint;
}

const WORKLOADS: Workload[] = [
  { name: 'fib(27) recursive', contract: 'fib', run: (e) => e.fib!(27) },
  {
    name: 'sha-256 4 KiB x 40',
    contract: 'sha256',
    setup: (e) => { new Uint8Array((e.memory as unknown as WebAssembly.Memory).buffer, Number(e.inputPtr!()), 4096).fill(0x61); },
    run: (e) => e.sha256Loop!(4096, 40),
  },
  {
    name: 'copy loop 64 KiB x 100',
    contract: 'memcpy',
    setup: (e) => { e.fill!(65536, 12345); },
    run: (e) => e.copyLoop!(65536, 100),
  },
];

function timeOnce(f: () => unknown): number {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Runs both variants alternately (so that machine noise hits both) and keeps the best of `rounds`. */
function measure(w: Workload, rounds: number): MeteringCase {
  const bytes = loadContract(w.contract);
  const plain = instantiate(bytes, false, 0n);
  const metered = instantiate(bytes, true, 1n << 62n);
  w.setup?.(plain.exports);
  w.setup?.(metered.exports);
  const a = w.run(plain.exports);
  const b = w.run(metered.exports);
  if (a !== b) throw new Error(`${w.name}: instrumented result ${b} differs from plain ${a}`);
  const gasBefore = metered.gasUsed();
  w.run(metered.exports);
  const gasUsed = metered.gasUsed() - gasBefore;
  // Warm up until both are tiered up, then measure.
  for (let i = 0; i < 3; i++) { w.run(plain.exports); w.run(metered.exports); }
  const p: number[] = [];
  const m: number[] = [];
  for (let i = 0; i < rounds; i++) {
    p.push(timeOnce(() => w.run(plain.exports)));
    m.push(timeOnce(() => w.run(metered.exports)));
  }
  const plainMs = Math.min(...p);
  const meteredMs = Math.min(...m);
  return { name: w.name, plainMs, meteredMs, ratio: meteredMs / plainMs, gasUsed };
}

/** A module of at least `size` bytes made of copies of the sha256 contract's functions. */
export function bigModule(size: number): Uint8Array {
  const base = loadContract('sha256');
  const m = readModule(base);
  const n = m.codes.length;
  let bytes = base.length;
  for (let i = 0; bytes < size; i = (i + 1) % n) {
    m.functions.push(m.functions[i]!);
    m.codes.push(m.codes[i]!);
    bytes += m.codes[i]!.code.length + 4;
  }
  return writeModule(m, size);
}

export async function benchMetering(rounds = 7): Promise<MeteringResult> {
  const cases = WORKLOADS.map((w) => measure(w, rounds));
  const geomean = Math.exp(cases.reduce((s, c) => s + Math.log(c.ratio), 0) / cases.length);
  const worst = Math.max(...cases.map((c) => c.ratio));

  const big = bigModule(1 << 20);
  let outputBytes = 0;
  const times: number[] = [];
  for (let i = 0; i < 9; i++) times.push(timeOnce(() => { outputBytes = prepareModule(big, BENCH_POLICY).bytes.length; }));
  return {
    cases,
    geomean,
    worst,
    instrument1MiB: { moduleBytes: big.length, outputBytes, medianMs: median(times), minMs: Math.min(...times) },
  };
}

/** A MeteringResult as JSON carries it (gas as a decimal string). */
type MeteringJson = Omit<MeteringResult, 'cases'> & { cases: (Omit<MeteringCase, 'gasUsed'> & { gasUsed: string })[] };

/** benchMetering for a child process (bench/child.ts): its result as JSON can carry it. */
export async function benchMeteringJson(rounds?: number): Promise<MeteringJson> {
  const r = await benchMetering(rounds);
  return { ...r, cases: r.cases.map((c) => ({ ...c, gasUsed: String(c.gasUsed) })) };
}

/**
 * benchMetering in a fresh process started with the VMs' node flags (VM_NODE_FLAGS): contracts compiled as a VM
 * compiles them (WebAssembly by the baseline compiler only), which is what gas prices.
 */
export async function benchMeteringAsVm(rounds?: number): Promise<MeteringResult> {
  const r = await inChild<MeteringJson>(fileURLToPath(import.meta.url), 'benchMeteringJson', [rounds ?? null], VM_NODE_FLAGS);
  return { ...r, cases: r.cases.map((c) => ({ ...c, gasUsed: BigInt(c.gasUsed) })) };
}

export function printMetering(r: MeteringResult): string {
  const lines = ['metering overhead (best of runs, plain and metered in one process started with the VMs\' node flags)', '| workload | plain ms | metered ms | ratio | gas |', '|---|---:|---:|---:|---:|'];
  for (const c of r.cases) {
    lines.push(`| ${c.name} | ${c.plainMs.toFixed(2)} | ${c.meteredMs.toFixed(2)} | ${c.ratio.toFixed(3)} | ${c.gasUsed} |`);
  }
  lines.push(`geometric mean ${r.geomean.toFixed(3)} (target <= 1.35), worst ${r.worst.toFixed(3)} (target <= 1.7)`);
  const b = r.instrument1MiB;
  lines.push(`prepareModule on ${(b.moduleBytes / 1048576).toFixed(2)} MiB -> ${(b.outputBytes / 1048576).toFixed(2)} MiB: median ${b.medianMs.toFixed(1)} ms, min ${b.minMs.toFixed(1)} ms (target < 150 ms)`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(printMetering(await benchMeteringAsVm()));
}
