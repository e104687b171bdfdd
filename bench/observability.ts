/**
 * What watching a host costs: kv-store `set` executions per second with no listeners, with the Prometheus
 * metrics attached (HostMetrics: every call.finished observed), and with metrics plus recorded reads
 * (traceReads, what `hostlink call --trace` turns on). Rounds alternate the variants in one run, so the ratios
 * compare like with like on a shared machine.
 */
import { id, runLanes } from './lanes.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CallTrace } from '../src/host/call-trace.js';
import type { CallFinished } from '../src/host/events.js';
import { Host } from '../src/host/host.js';
import { HostMetrics } from '../src/metrics/host-metrics.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

type Variant = 'bare' | 'metrics' | 'metrics+reads';
export interface ObservabilityRow {
  variant: Variant;
  calls: number;
  perSecond: number;
}

async function measure(variant: Variant, calls: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-bench-'));
  const host = await Host.open({ dataDir: dir, poolSize: 2, deadlineMs: 30_000, traceReads: variant === 'metrics+reads' });
  const metrics = variant === 'bare' ? null : new HostMetrics(host);
  try {
    const codeHash = await host.deploy(Uint8Array.from(readFileSync(join(ROOT, 'examples/kv-store/build/kv-store.wasm'))));
    const input = (i: number): Uint8Array => Uint8Array.from(Buffer.from(JSON.stringify({ key: `k${i}`, value: `value-${i}` })));
    await Promise.all(Array.from({ length: 16 }, (_, i) => host.call({ codeHash, method: 'set', input: input(i), contextId: id(`w${i % 8}`) })));
    const t0 = process.hrtime.bigint();
    await runLanes(host, codeHash, calls, 8, input);
    if (metrics) await metrics.registry.metrics(); // one scrape, as a Prometheus server would
    return calls / (Number(process.hrtime.bigint() - t0) / 1e9);
  } finally {
    metrics?.close();
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchObservability(opts: { calls: number; rounds: number }): Promise<ObservabilityRow[]> {
  const variants: Variant[] = ['bare', 'metrics', 'metrics+reads'];
  const totals = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  for (let r = 0; r < opts.rounds; r++) for (const v of variants) totals.get(v)!.push(await measure(v, opts.calls));
  // The median round of each variant: one disturbed round on a shared machine does not decide the ratio.
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return variants.map((variant) => ({ variant, calls: opts.calls, perSecond: median(totals.get(variant)!) }));
}

/**
 * The host-side CPU cost in isolation (less disturbed by VM scheduling than executions per second): one
 * call.finished observed by HostMetrics, and one request recorded into a call's trace.
 */
export async function benchObservabilityCpu(n: number): Promise<{ metricsUsPerCall: number; traceUsPerRequest: number }> {
  const host = await Host.open();
  const metrics = new HostMetrics(host);
  const trace = new CallTrace();
  trace.begin(1);
  for (let i = 0; i < 4; i++) trace.record('storage_read', 40, 60, 0, 0.01);
  const event = {
    callId: 1, parentCallId: null, method: 'set', contextId: new Uint8Array(32), codeHash: new Uint8Array(32), mode: 'pool',
    result: 'return', reason: 'ok', message: null, applied: true, gasUsed: 12_000n, stateRoot: new Uint8Array(32), vmPid: 1,
    durations: { queueMs: 0.1, vmMs: 1, applyMs: 0.2, totalMs: 1.3 }, hostCalls: trace.counts, roundTrips: 4, trace: trace.entries,
    traceDropped: 0, messageJson: '{}', reads: null, readsComplete: true, outcome: {} as CallFinished['outcome'],
  } as CallFinished;
  try {
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) host.events.emit('call.finished', event);
    const metricsUsPerCall = Number(process.hrtime.bigint() - t0) / 1e3 / n;
    t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const t = new CallTrace();
      t.begin(1);
      for (let j = 0; j < 4; j++) t.record('storage_read', 40, 60, j, j + 0.01);
    }
    const traceUsPerRequest = Number(process.hrtime.bigint() - t0) / 1e3 / n / 4;
    return { metricsUsPerCall, traceUsPerRequest };
  } finally {
    metrics.close();
    await host.close();
  }
}

export function printObservabilityCpu(r: { metricsUsPerCall: number; traceUsPerRequest: number }): string {
  return `host CPU: metrics per finished call ${r.metricsUsPerCall.toFixed(2)} us; trace per protocol request ${r.traceUsPerRequest.toFixed(3)} us`;
}

export function printObservability(rows: ObservabilityRow[]): string {
  const bare = rows.find((r) => r.variant === 'bare')!.perSecond;
  const lines = ['kv-store set, pool (unix, 8 lanes), executions per second (median round)', 'variant         exec/s   vs bare'];
  for (const r of rows) lines.push(`${r.variant.padEnd(14)} ${r.perSecond.toFixed(0).padStart(7)}   ${(r.perSecond / bare).toFixed(2)}x`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  process.stdout.write(printObservability(await benchObservability({ calls: quick ? 300 : 2000, rounds: quick ? 1 : 3 })) + '\n');
  process.stdout.write(printObservabilityCpu(await benchObservabilityCpu(quick ? 20_000 : 200_000)) + '\n');
}
