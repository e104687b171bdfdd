/**
 * Remote workers: kv-store `set` executions per second through two `hostlink worker` processes on loopback
 * (TLS registration, TLS slot connections relayed to sandboxed VMs), next to the local pool with the same
 * number of VMs, measured in the same run. The ratio is the cost of the extra hop (TLS + the worker's relay);
 * on one machine the workers also compete with the node for the same cores, so it is a lower bound of what
 * separate machines give. Skipped (with the reason) when the openssl binary is missing.
 */
import { id, runLanes } from './lanes.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host, type HostOptions } from '../src/host/host.js';
import { makeCerts, opensslMissing } from './certs.js';
import { benchSandboxMode } from './sandbox.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface RemoteRow {
  where: 'local pool' | 'remote workers';
  vms: number;
  lanes: number;
  calls: number;
  seconds: number;
  perSecond: number;
  failures: number;
  /** CPU of this process (the node) per execution, user + sys. With remote workers the VMs are elsewhere, so this is what one execution costs the node. */
  nodeCpuUs: number;
}

async function measure(host: Host, where: RemoteRow['where'], vms: number, calls: number, lanes: number): Promise<RemoteRow> {
  const codeHash = await host.deploy(Uint8Array.from(readFileSync(join(ROOT, 'examples/kv-store/build/kv-store.wasm'))));
  const input = (i: number): Uint8Array => Uint8Array.from(Buffer.from(JSON.stringify({ key: `k${i}`, value: `value-${i}` })));
  await Promise.all(Array.from({ length: lanes * 2 }, (_, i) => host.call({ codeHash, method: 'set', input: input(i), contextId: id(`w${i % lanes}`) })));
  const cpu0 = process.cpuUsage();
  const { seconds, failures } = await runLanes(host, codeHash, calls, lanes, input);
  const cpu = process.cpuUsage(cpu0);
  return { where, vms, lanes, calls, seconds, perSecond: calls / seconds, failures, nodeCpuUs: (cpu.user + cpu.system) / calls };
}

async function withHost<T>(options: HostOptions, fn: (host: Host, dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-bench-remote-'));
  const host = await Host.open({ dataDir: join(dir, 'data'), deadlineMs: 30_000, sandbox: benchSandboxMode(), ...options });
  try {
    return await fn(host, dir);
  } finally {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Rows for the local pool and for 2 workers with `slotsPerWorker` slots each; null (and why) without openssl. */
export async function benchRemote(opts: { calls: number; slotsPerWorker?: number; lanes?: number }): Promise<RemoteRow[] | string> {
  const missing = opensslMissing();
  if (missing !== undefined) return missing;
  const slots = opts.slotsPerWorker ?? 2;
  const vms = 2 * slots;
  const lanes = opts.lanes ?? 8;
  const local = await withHost({ poolSize: vms }, (host) => measure(host, 'local pool', vms, opts.calls, lanes));
  const certDir = mkdtempSync(join(tmpdir(), 'hostlink-bench-certs-'));
  const workers: ChildProcess[] = [];
  try {
    const certs = makeCerts(certDir);
    const remote = await withHost({ poolSize: vms, workers: { listen: '127.0.0.1:0', tls: certs.node } }, async (host) => {
      for (let i = 0; i < 2; i++) {
        const args = [join(ROOT, 'bin', 'hostlink.js'), 'worker', '--runtime', host.remote!.address!, '--slots', String(slots), '--listen', '127.0.0.1:0',
          '--cert', certs.worker.cert, '--key', certs.worker.key, '--ca', certs.worker.ca, '--sandbox', benchSandboxMode()];
        workers.push(spawn(process.execPath, args, { stdio: 'ignore' }));
      }
      const until = Date.now() + 30_000;
      while (host.remote!.launcher.workers().length < 2) {
        if (Date.now() > until) throw new Error('the bench workers did not register within 30 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      return measure(host, 'remote workers', vms, opts.calls, lanes);
    });
    return [local, remote];
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => (w.exitCode !== null || w.signalCode !== null ? undefined : new Promise((r) => w.once('exit', r)))));
    rmSync(certDir, { recursive: true, force: true });
  }
}

export function printRemote(rows: RemoteRow[] | string): void {
  if (typeof rows === 'string') {
    process.stdout.write(`skipped: ${rows}\n`);
    return;
  }
  process.stdout.write('kv-store set through 2 loopback workers (TLS, relayed) vs the local pool, same VM count, same run\n');
  process.stdout.write('node CPU = this process only (user + sys per execution); with remote workers the VMs run in other processes\n');
  process.stdout.write('where            VMs  lanes  calls  seconds  exec/s  failures  node CPU us/exec\n');
  for (const r of rows) {
    process.stdout.write(
      `${r.where.padEnd(15)}  ${String(r.vms).padStart(3)}  ${String(r.lanes).padStart(5)}  ${String(r.calls).padStart(5)}  ${r.seconds.toFixed(2).padStart(7)}  ${r.perSecond.toFixed(0).padStart(6)}  ${String(r.failures).padStart(8)}  ${r.nodeCpuUs.toFixed(0).padStart(16)}\n`,
    );
  }
  const [local, remote] = rows;
  if (local && remote) {
    process.stdout.write(`remote / local throughput ratio: ${(remote.perSecond / local.perSecond).toFixed(2)}\n`);
    // One node core spends nodeCpuUs per remote execution: that bounds what one node can drive, whatever the slots.
    process.stdout.write(`one node core drives at most ~${(1e6 / remote.nodeCpuUs).toFixed(0)} remote executions/s (1e6 / node CPU us per execution)\n`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printRemote(await benchRemote({ calls: process.argv.includes('--quick') ? 400 : 2000 }));
}
