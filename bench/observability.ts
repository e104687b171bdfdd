/**
 * What watching a host costs: kv-store `set` executions per second with no listeners, with the Prometheus
 * metrics attached (HostMetrics: every call.finished observed), and with metrics plus recorded reads
 * (traceReads, what `hostlink call --trace` turns on). Rounds alternate the variants in one run, so the ratios
 * compare like with like on a shared machine.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host } from '../src/host/host.js';
import { HostMetrics } from '../src/metrics/host-metrics.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const id = (s: string): Uint8Array => Uint8Array.from(createHash('sha256').update(s).digest());

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
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 8 }, async (_, lane) => {
        while (next < calls) {
          const i = next++;
          await host.call({ codeHash, method: 'set', input: input(i), contextId: id(`lane${lane}`) });
        }
      }),
    );
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

export function printObservability(rows: ObservabilityRow[]): string {
  const bare = rows.find((r) => r.variant === 'bare')!.perSecond;
  const lines = ['kv-store set, pool (unix, 8 lanes), executions per second (median round)', 'variant         exec/s   vs bare'];
  for (const r of rows) lines.push(`${r.variant.padEnd(14)} ${r.perSecond.toFixed(0).padStart(7)}   ${(r.perSecond / bare).toFixed(2)}x`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  process.stdout.write(printObservability(await benchObservability({ calls: quick ? 300 : 2000, rounds: quick ? 1 : 3 })) + '\n');
}
