/**
 * Executions per second of the kv-store `set` through the real stack: Host on LMDB in a temp dir, VM
 * processes over unix sockets, in pool mode (warm VMs) and one-shot mode (a process per call), measured in
 * the same run. Product target: >= 1,000/s in pool mode on a 2-core machine.
 */
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { Host, type ExecutionMode } from '../src/host/host.js';
import type { Transport } from '../src/host/supervisor.js';
import { benchSandboxMode } from './sandbox.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ExecutionsRow {
  mode: ExecutionMode;
  transport: Transport;
  calls: number;
  concurrency: number;
  seconds: number;
  perSecond: number;
  failures: number;
}

const id = (s: string): Uint8Array => Uint8Array.from(createHash('sha256').update(s).digest());

async function measure(mode: ExecutionMode, transport: Transport, calls: number, concurrency: number): Promise<ExecutionsRow> {
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-bench-'));
  const host = await Host.open({ dataDir: dir, mode, transport, poolSize: 2, deadlineMs: 30_000, sandbox: benchSandboxMode() });
  try {
    const codeHash = await host.deploy(Uint8Array.from(readFileSync(join(ROOT, 'examples/kv-store/build/kv-store.wasm'))));
    const input = (i: number): Uint8Array => Uint8Array.from(Buffer.from(JSON.stringify({ key: `k${i}`, value: `value-${i}` })));
    // Warm-up: start the pool, compile the module in each VM.
    await Promise.all(Array.from({ length: concurrency * 2 }, (_, i) => host.call({ codeHash, method: 'set', input: input(i), contextId: id(`w${i % concurrency}`) })));
    let next = 0;
    let failures = 0;
    const t0 = process.hrtime.bigint();
    // `concurrency` lanes, each on its own context (calls on one context are serialized by design).
    await Promise.all(
      Array.from({ length: concurrency }, async (_, lane) => {
        while (next < calls) {
          const i = next++;
          const o = await host.call({ codeHash, method: 'set', input: input(i), contextId: id(`lane${lane}`) });
          if (o.result.code !== 'return') failures++;
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { mode, transport, calls, concurrency, seconds, perSecond: calls / seconds, failures };
  } finally {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchExecutions(opts: { poolCalls: number; oneShotCalls: number }): Promise<ExecutionsRow[]> {
  // 8 lanes: a node serves many contexts at once (calls on one context are serialized by design, so one lane
  // measures latency, several measure throughput).
  return [
    await measure('pool', 'unix', opts.poolCalls, 8),
    await measure('pool', 'tcp', opts.poolCalls, 8),
    await measure('pool', 'unix', Math.ceil(opts.poolCalls / 4), 1),
    await measure('oneshot', 'unix', opts.oneShotCalls, 2),
  ];
}

export function printExecutions(rows: ExecutionsRow[]): void {
  const pool = rows.find((r) => r.mode === 'pool' && r.concurrency > 1 && r.transport === 'unix');
  const oneshot = rows.find((r) => r.mode === 'oneshot');
  process.stdout.write('\nkv-store set, executions per second (Host on LMDB, real VM processes)\n');
  process.stdout.write('mode      transport  lanes  calls   seconds  exec/s   failures\n');
  for (const r of rows) {
    process.stdout.write(
      `${r.mode.padEnd(9)} ${r.transport.padEnd(10)} ${String(r.concurrency).padStart(5)}  ${String(r.calls).padStart(5)}  ${r.seconds.toFixed(2).padStart(8)}  ${r.perSecond.toFixed(0).padStart(6)}   ${r.failures}\n`,
    );
  }
  if (pool && oneshot) {
    process.stdout.write(`pool / one-shot throughput ratio: ${(pool.perSecond / oneshot.perSecond).toFixed(1)}x; pool target >= 1000/s: ${pool.perSecond >= 1000 ? 'met' : 'NOT met'}\n`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printExecutions(await benchExecutions({ poolCalls: 4000, oneShotCalls: 60 }));
}
