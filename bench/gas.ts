/**
 * Gas is a price of time: ns per unit of gas for plain WebAssembly (the metering bench's contracts) and for a
 * loop over every host-function class (bench/gas-workloads.ts), through the real stack (Host on LMDB, a pooled
 * VM process over a unix socket). Each loop ends by out_of_gas, so wall time over the gas limit is what one unit
 * of gas costs for that workload; and the host's CPU per byte of a result and of a write, over the gas those
 * bytes are charged (bench/host-bytes.ts). Target: the worst class within 3x of plain WebAssembly's median, and the
 * default gas limit well inside the default deadline.
 *
 *   node dist/bench/gas.js [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { Host } from '../src/host/host.js';
import { DEFAULT_HOST_OPTIONS } from '../src/host/options.js';
import { DEFAULT_GAS_LIMIT } from '../src/protocol/message.js';
import { engineWorkloads, gasWorkloads, workloadBytes, type GasWorkload } from './gas-workloads.js';
import { benchHostBytes } from './host-bytes.js';
import { benchMeteringAsVm } from './metering.js';

export interface GasRow {
  name: string;
  kind: GasWorkload['kind'];
  nsPerGas: number;
  /** The gas limit of the longer of the two timed calls. */
  gas: bigint;
}

export interface GasBench {
  rows: GasRow[];
  wasmMedian: number;
  worst: GasRow;
  /** The dearest loop: what the default gas limit is timed on. */
  worstLoop: string;
  /** Seconds the default gas limit takes on the worst loop (extrapolated from its ns/gas). */
  defaultLimitSeconds: number;
  /** Seconds one call of the worst class at the default gas limit took, measured (dispatch included). */
  defaultLimitMeasured: number;
  /** How that call ended: `out_of_gas` when gas bounds time, `timeout` when the deadline came first. */
  defaultLimitOutcome: string;
  deadlineSeconds: number;
  quick: boolean;
}

const rowOf = (rows: GasRow[], w: GasWorkload): GasRow => rows.find((r) => r.name === w.name)!;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** A Host for gas measurements: one pooled VM, a deadline long enough for the slowest old-cost loop. */
export async function openGasHost(): Promise<{ host: Host; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-gas-'));
  const host = await Host.open({ dataDir: dir, poolSize: 1, deadlineMs: 120_000 });
  return {
    host,
    close: async () => {
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const contextId = Uint8Array.from(createHash('sha256').update('gas-bench').digest());

/** Wall time of one call at `gas`, in ns, and what it ended with. */
export async function timeCall(host: Host, codeHash: Uint8Array, gas: bigint): Promise<{ ns: number; code: string; message: string; gasUsed: bigint }> {
  const t0 = process.hrtime.bigint();
  const o = await host.call({ codeHash, method: 'run', contextId, gasLimit: gas });
  const ns = Number(process.hrtime.bigint() - t0);
  return { ns, code: o.result.code, message: 'message' in o.result ? o.result.message : '', gasUsed: o.gasUsed };
}

/**
 * ns per gas of one endless loop: find a gas limit whose call takes about `targetMs`, then time the call at
 * that limit (best of `repeats`: the machine is shared, and interference only ever adds time) and divide.
 * The fixed part of a call (dispatch, instantiation: a few ms) is small against `targetMs`; a slope between
 * two limits would remove it but doubles the noise of a loaded machine.
 */
export async function nsPerGas(host: Host, w: GasWorkload, opts: { targetMs: number; repeats: number }): Promise<GasRow> {
  const codeHash = await host.deploy(await workloadBytes(w));
  // Warm-up: the first calls pay compilation and V8's tier-up, which must not count as the price of gas.
  for (let i = 0; i < 3; i++) await timeCall(host, codeHash, 20_000_000n);
  let gas = 1_000_000n;
  for (;;) {
    const r = await timeCall(host, codeHash, gas);
    if (r.code !== 'vm_error' || r.message !== 'out_of_gas') {
      throw new Error(`${w.name}: expected out_of_gas at gas ${gas}, got ${r.code} ${r.message}`);
    }
    if (r.ns >= opts.targetMs * 1e6 || gas >= 16n * DEFAULT_GAS_LIMIT) break;
    gas *= BigInt(Math.min(16, Math.max(2, Math.ceil((opts.targetMs * 1e6) / Math.max(r.ns, 1)))));
  }
  const best = async (g: bigint): Promise<number> => {
    let min = Infinity;
    for (let i = 0; i < opts.repeats; i++) min = Math.min(min, (await timeCall(host, codeHash, g)).ns);
    return min;
  };
  return { name: w.name, kind: w.kind, nsPerGas: (await best(gas)) / Number(gas), gas };
}

export async function benchGas(opts: { quick?: boolean } = {}): Promise<GasBench> {
  const { host, close } = await openGasHost();
  try {
    // Plain WebAssembly: the metering bench's compiled contracts (recursive calls, SHA-256, a copy loop), best of
    // several runs after warm-up, ns per gas used.
    const metering = await benchMeteringAsVm(opts.quick ? 3 : 7);
    const rows: GasRow[] = metering.cases.map((c) => ({
      name: `wasm: ${c.name}`,
      kind: 'wasm' as const,
      nsPerGas: (c.meteredMs * 1e6) / Number(c.gasUsed),
      gas: c.gasUsed,
    }));
    const loops = [...gasWorkloads(), ...engineWorkloads()];
    for (const w of loops) rows.push(await nsPerGas(host, w, { targetMs: opts.quick ? 100 : 250, repeats: opts.quick ? 2 : 5 }));
    // The host's side of what calls hand it (results, writes), priced by the same unit.
    for (const b of await benchHostBytes(host, opts.quick ? 3 : 7)) rows.push({ name: b.name, kind: 'host', nsPerGas: b.nsPerGas, gas: 0n });
    const wasmMedian = median(rows.filter((r) => r.kind === 'wasm').map((r) => r.nsPerGas));
    const worst = rows.filter((r) => r.kind !== 'wasm').reduce((a, b) => (b.nsPerGas > a.nsPerGas ? b : a));
    // The deadline check runs the worst loop (a call handing over bytes ends long before the default limit).
    const worstLoop = loops.reduce((a, b) => (rowOf(rows, b).nsPerGas > rowOf(rows, a).nsPerGas ? b : a));
    const measured = await timeCall(host, await host.deploy(await workloadBytes(worstLoop)), DEFAULT_GAS_LIMIT);
    return {
      defaultLimitOutcome: `${measured.code} ${measured.message}`,
      defaultLimitMeasured: measured.ns / 1e9,
      rows,
      wasmMedian,
      worst,
      worstLoop: worstLoop.name,
      defaultLimitSeconds: (rowOf(rows, worstLoop).nsPerGas * Number(DEFAULT_GAS_LIMIT)) / 1e9,
      deadlineSeconds: DEFAULT_HOST_OPTIONS.deadlineMs / 1000,
      quick: opts.quick ?? false,
    };
  } finally {
    await close();
  }
}

export function printGas(b: GasBench): string {
  const lines = [`workload${b.quick ? ' (quick run: 2 samples per class, expect noise)' : ''}`.padEnd(36) + '  ns/gas   x wasm median'];
  for (const r of b.rows) {
    lines.push(`${r.name.padEnd(36)} ${r.nsPerGas.toFixed(3).padStart(7)}   ${(r.nsPerGas / b.wasmMedian).toFixed(2).padStart(6)}`);
  }
  const ratio = b.worst.nsPerGas / b.wasmMedian;
  lines.push(`plain WebAssembly median: ${b.wasmMedian.toFixed(3)} ns/gas`);
  lines.push(`worst class (host functions, engine-runtime instructions, the host's side of results and writes): ${b.worst.name}, ${ratio.toFixed(2)}x the WebAssembly median (target <= 3x: ${ratio <= 3 ? 'met' : 'NOT met'})`);
  lines.push(
    `default gas limit (${DEFAULT_GAS_LIMIT}) on the worst loop (${b.worstLoop}): ${b.defaultLimitSeconds.toFixed(2)} s from its ns/gas, ` +
      `${b.defaultLimitMeasured.toFixed(2)} s measured (one call, ended ${b.defaultLimitOutcome}); default deadline ${b.deadlineSeconds} s ` +
      `(${(b.deadlineSeconds / Math.max(b.defaultLimitSeconds, b.defaultLimitMeasured)).toFixed(1)}x headroom)`,
  );
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(printGas(await benchGas({ quick: process.argv.includes('--quick') })) + '\n');
}
