/**
 * The cost of the VM sandbox, measured side by side in one run: VM start-up (one-shot calls, one process each,
 * one after another: spawn + launcher + Node start + connect + sandbox + one execution) and pool executions per
 * second (warm VMs, 8 lanes), each with the sandbox off and on. The sandbox's work is per process (launcher,
 * cgroup, filter installation); per execution the filter adds one BPF run per system call.
 */
import { id, runLanes } from './lanes.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host, type ExecutionMode } from '../src/host/host.js';
import { defaultVmUserCannotRead, type SandboxMode } from '../src/host/sandbox/plan.js';
import { HOSTLINK_BIN } from '../src/host/supervisor.js';
import { launcherStatus, sandboxAddon } from '../src/vm/sandbox-native.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The strongest mode this machine supports: what a node runs with. */
export function benchSandboxMode(): SandboxMode {
  return sandboxAddon().addon && launcherStatus().reason === undefined ? 'required' : 'best-effort';
}

/**
 * Run as root, VMs drop to the user nobody, which must be able to read the checkout; a clone in a private folder
 * (mktemp -d, /root) is not readable, and every VM would be refused. As the test runner does, the bench then runs
 * VMs as root with every other sandbox layer on (HOSTLINK_SANDBOX_USER, inherited by the bench's child processes)
 * and returns the note saying so; undefined when nothing had to change.
 */
export function benchVmUser(): string | undefined {
  if (process.env.HOSTLINK_SANDBOX_USER !== undefined) return undefined;
  const why = defaultVmUserCannotRead(HOSTLINK_BIN);
  if (why === undefined) return undefined;
  process.env.HOSTLINK_SANDBOX_USER = 'root';
  return `${why}: VMs run as root (HOSTLINK_SANDBOX_USER=root), every other sandbox layer on`;
}

export interface SandboxRow {
  sandbox: SandboxMode;
  /** Mean wall time of one one-shot call (process start included), ms. */
  oneShotMs: number;
  poolPerSecond: number;
  failures: number;
}

async function run(sandbox: SandboxMode, mode: ExecutionMode, calls: number, lanes: number): Promise<{ seconds: number; failures: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-bench-sandbox-'));
  const host = await Host.open({ dataDir: dir, mode, poolSize: 2, deadlineMs: 30_000, sandbox });
  try {
    const codeHash = await host.deploy(Uint8Array.from(readFileSync(join(ROOT, 'examples/kv-store/build/kv-store.wasm'))));
    const input = (i: number): Uint8Array => Uint8Array.from(Buffer.from(JSON.stringify({ key: `k${i}`, value: `v${i}` })));
    await Promise.all(Array.from({ length: 2 }, (_, i) => host.call({ codeHash, method: 'set', input: input(i), contextId: id(`warm${i}`) })));
    const { seconds, failures } = await runLanes(host, codeHash, calls, lanes, input);
    return { seconds, failures };
  } finally {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchSandbox(opts: { oneShotCalls: number; poolCalls: number }): Promise<SandboxRow[]> {
  const modes: SandboxMode[] = ['off', benchSandboxMode()];
  const rows: SandboxRow[] = modes.map((sandbox) => ({ sandbox, oneShotMs: 0, poolPerSecond: 0, failures: 0 }));
  // Alternate off/on in two halves so that a load change on the shared machine hits both sides alike.
  for (let half = 0; half < 2; half++) {
    for (const row of rows) {
      const one = await run(row.sandbox, 'oneshot', Math.ceil(opts.oneShotCalls / 2), 1);
      const pool = await run(row.sandbox, 'pool', Math.ceil(opts.poolCalls / 2), 8);
      row.oneShotMs += (one.seconds * 1000) / Math.ceil(opts.oneShotCalls / 2) / 2;
      row.poolPerSecond += Math.ceil(opts.poolCalls / 2) / pool.seconds / 2;
      row.failures += one.failures + pool.failures;
    }
  }
  return rows;
}

export function printSandbox(rows: SandboxRow[]): void {
  process.stdout.write('\nkv-store set with the VM sandbox off and on (Host on LMDB, unix sockets, same run)\n');
  process.stdout.write('sandbox      one-shot ms/call (VM start-up)  pool exec/s (8 lanes)  failures\n');
  for (const r of rows) {
    process.stdout.write(`${r.sandbox.padEnd(12)} ${r.oneShotMs.toFixed(1).padStart(30)}  ${r.poolPerSecond.toFixed(0).padStart(21)}  ${String(r.failures).padStart(8)}\n`);
  }
  const [off, on] = rows;
  if (off && on) {
    process.stdout.write(
      `sandbox ${on.sandbox} / off: one-shot time ${(on.oneShotMs / off.oneShotMs).toFixed(2)}x, pool throughput ${(on.poolPerSecond / off.poolPerSecond).toFixed(2)}x\n`,
    );
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printSandbox(await benchSandbox({ oneShotCalls: 40, poolCalls: 4000 }));
}
