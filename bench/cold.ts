/**
 * One-shot cold call: from spawn to result, one VM process per call, every safety layer on (the strongest sandbox
 * mode this machine supports, the VM's secret and hello proof). Printed next to `node -e 0` measured in the same
 * run, with the pieces the cold call is made of measured alone: bare Node start-up, the sandbox around the same
 * `node -e 0` (launcher, namespaces, cgroup, uid), loading the VM's modules, and the VM entry from its start-up
 * snapshot against `hostlink vm` loading its module graph (what every VM did before the snapshot), and the same
 * call in a VM thread of the host (launcher 'thread') against a VM process, both without a sandbox. The variants run interleaved (one of each per round), so the noise of
 * a shared machine falls on all of them alike; medians, not means.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host, type HostOptions } from '../src/host/host.js';
import { prepareSandbox } from '../src/host/sandbox/plan.js';
import { HOSTLINK_BIN, VM_ENVIRONMENT, VM_NODE_FLAGS } from '../src/host/supervisor.js';
import { vmEntryCommand } from '../src/host/vm-entry.js';
import { benchSandboxMode } from './sandbox.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const id = (s: string): Uint8Array => Uint8Array.from(createHash('sha256').update(s).digest());

export interface ColdRow {
  name: string;
  medianMs: number;
  p90Ms: number;
  /** Mean CPU (user + sys, from the OS) of the started processes per sample: the VM and its launcher. */
  childCpuMs: number;
  /** Mean CPU of this process per sample (all its threads): for a call, the host's side (spawn, session, commit). */
  selfCpuMs: number;
  samples: number;
  failures: number;
}

export interface ColdBench {
  rows: ColdRow[];
  sandbox: string;
  /** Which entry the default one-shot VM used ('snapshot' or why not). */
  entry: string;
  load: number;
}

/** Wall time from spawn to exit of one process, ms; rejects on a non-zero exit. */
function timeProcess(start: () => ReturnType<typeof spawn>): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = start();
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code === 0) resolve(ms);
      else reject(new Error(`exit ${code}: ${err.trim().split('\n')[0] ?? ''}`));
    });
  });
}

/**
 * user + sys of this process's reaped children (cutime + cstime of /proc/self/stat), ms: what the VMs and their
 * launchers used, measured by the OS, robust to a shared machine's load where wall time is not.
 */
function childrenCpuMs(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[13]) + Number(rest[14])) / CLK_TCK) * 1000;
  } catch {
    return NaN;
  }
}
const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

export async function benchCold(opts: { rounds: number }): Promise<ColdBench> {
  const mode = benchSandboxMode();
  const sandbox = prepareSandbox(mode, 'unix', HOSTLINK_BIN);
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const dirs: string[] = [];
  const open = async (vmCommand?: readonly string[], extra: HostOptions = {}): Promise<{ host: Host; codeHash: Uint8Array }> => {
    const dir = mkdtempSync(join(tmpdir(), 'hostlink-bench-cold-'));
    dirs.push(dir);
    const host = await Host.open({ dataDir: dir, mode: 'oneshot', transport: 'unix', deadlineMs: 30_000, sandbox: mode, ...(vmCommand ? { vmCommand } : {}), ...extra });
    const codeHash = await host.deploy(Uint8Array.from(readFileSync(join(ROOT, 'examples/kv-store/build/kv-store.wasm'))));
    return { host, codeHash };
  };
  const snapshotEntry = vmEntryCommand({ nodeFlags: VM_NODE_FLAGS });
  const cliEntry = vmEntryCommand({ nodeFlags: VM_NODE_FLAGS, snapshot: false });
  const withSnapshot = await open(snapshotEntry.command);
  // The same entry with VM_ENVIRONMENT's malloc tunable taken out again (env execs the VM's command without it).
  const noTunable = existsSync('/usr/bin/env') ? await open(['/usr/bin/env', ...Object.keys(VM_ENVIRONMENT).flatMap((k) => ['-u', k]), ...snapshotEntry.command]) : undefined;
  const legacy = await open(cliEntry.command);
  // Thread against process with the same (absent) sandbox: what a VM thread saves is the process start.
  const processNoSandbox = await open(snapshotEntry.command, { sandbox: 'off' });
  const thread = await open(undefined, { sandbox: 'off', launcher: 'thread' });
  let n = 0;
  const call = (h: { host: Host; codeHash: Uint8Array }) => async (): Promise<number> => {
    const i = n++;
    // The VM exits right after its result: wait for that (outside the timed span) so the OS has counted its CPU.
    const exited = new Promise<void>((resolve) => {
      const off = h.host.events.on('vm.exited', () => (off(), resolve()));
    });
    const t0 = process.hrtime.bigint();
    const o = await h.host.call({ codeHash: h.codeHash, method: 'set', input: Uint8Array.from(Buffer.from(JSON.stringify({ key: `k${i}`, value: `v${i}` }))), contextId: id(`c${i % 4}`) });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (o.result.code !== 'return') throw new Error(`${o.result.code}: ${'message' in o.result ? String(o.result.message) : ''}`);
    await exited;
    return ms;
  };
  const importVm = `await import(${JSON.stringify(join(ROOT, 'dist/src/cli/commands/vm.js'))})`;
  const variants: Array<{ name: string; run: () => Promise<number> }> = [
    { name: 'node -e 0', run: () => timeProcess(() => spawn(process.execPath, ['-e', '0'], { stdio: ['ignore', 'ignore', 'pipe'], env })) },
    { name: "node -e 0, the VMs' environment", run: () => timeProcess(() => spawn(process.execPath, ['-e', '0'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...env, ...VM_ENVIRONMENT } })) },
    { name: `node -e 0 in the sandbox (${mode})`, run: () => timeProcess(() => sandbox.spawn(process.execPath, ['-e', '0'], { stdio: ['ignore', 'ignore', 'pipe'], env })) },
    { name: 'node importing the VM modules', run: () => timeProcess(() => spawn(process.execPath, ['--input-type=module', '-e', importVm], { stdio: ['ignore', 'ignore', 'pipe'], env })) },
    { name: 'cold call, hostlink vm (before)', run: call(legacy) },
    { name: `cold call, default entry (${snapshotEntry.kind})`, run: call(withSnapshot) },
    ...(noTunable ? [{ name: 'cold call, default entry, no malloc tunable', run: call(noTunable) }] : []),
    { name: 'cold call, process, sandbox off', run: call(processNoSandbox) },
    { name: 'cold call, VM thread (launcher thread)', run: call(thread) },
  ];
  const samples = variants.map(() => [] as number[]);
  const failures = variants.map(() => 0);
  const cpu = variants.map(() => 0);
  const selfCpu = variants.map(() => 0);
  const load = loadavg()[0]!;
  try {
    for (const v of variants) await v.run().catch(() => 0); // warm the page cache and the host's sandbox plan
    for (let r = 0; r < opts.rounds; r++) {
      for (const [k, v] of variants.entries()) {
        const c0 = childrenCpuMs();
        const s0 = process.cpuUsage();
        try {
          samples[k]!.push(await v.run());
        } catch {
          failures[k]!++;
        }
        cpu[k]! += childrenCpuMs() - c0;
        const s1 = process.cpuUsage(s0);
        selfCpu[k]! += (s1.user + s1.system) / 1000;
      }
    }
  } finally {
    for (const h of [withSnapshot, legacy, processNoSandbox, thread, ...(noTunable ? [noTunable] : [])]) await h.host.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  return {
    rows: variants.map((v, k) => ({ name: v.name, medianMs: quantile(samples[k]!, 0.5), p90Ms: quantile(samples[k]!, 0.9), childCpuMs: cpu[k]! / opts.rounds, selfCpuMs: selfCpu[k]! / opts.rounds, samples: samples[k]!.length, failures: failures[k]! })),
    sandbox: mode,
    entry: snapshotEntry.kind === 'snapshot' ? 'snapshot' : `hostlink vm without the snapshot (${snapshotEntry.reason ?? ''})`,
    load,
  };
}

export function printCold(b: ColdBench): void {
  process.stdout.write(`one-shot kv-store set, spawn to result, sandbox ${b.sandbox}, authenticated; default VM entry: ${b.entry}; load ${b.load.toFixed(2)}\n`);
  process.stdout.write('CPU = user + sys from the OS, mean per sample (robust to load, unlike wall time): of the started processes (VM, launcher), and of this process (the host)\n');
  process.stdout.write('what                                         median ms  p90 ms  CPU ms  host CPU ms  samples  failures\n');
  for (const r of b.rows) {
    process.stdout.write(
      `${r.name.padEnd(44)} ${r.medianMs.toFixed(1).padStart(9)}  ${r.p90Ms.toFixed(1).padStart(6)}  ${r.childCpuMs.toFixed(1).padStart(6)}  ${r.selfCpuMs.toFixed(1).padStart(11)}  ${String(r.samples).padStart(7)}  ${String(r.failures).padStart(8)}\n`,
    );
  }
  const node = b.rows[0]!;
  const before = b.rows.find((r) => r.name.startsWith('cold call, hostlink vm'));
  const after = b.rows.find((r) => r.name.startsWith('cold call, default entry'))!;
  if (before) {
    process.stdout.write(
      `cold call before / after: ${before.medianMs.toFixed(1)} ms / ${after.medianMs.toFixed(1)} ms median (${(before.medianMs / after.medianMs).toFixed(2)}x); ` +
        `VM CPU ${before.childCpuMs.toFixed(1)} ms / ${after.childCpuMs.toFixed(1)} ms (${(before.childCpuMs / after.childCpuMs).toFixed(2)}x)\n`,
    );
  }
  const untuned = b.rows.find((r) => r.name.endsWith('no malloc tunable'));
  if (untuned) {
    process.stdout.write(
      `cold call without / with the VMs' malloc tunable (${Object.entries(VM_ENVIRONMENT).map(([k, v]) => `${k}=${v}`).join(' ')}): ${untuned.medianMs.toFixed(1)} ms / ${after.medianMs.toFixed(1)} ms median; ` +
        `VM CPU ${untuned.childCpuMs.toFixed(1)} ms / ${after.childCpuMs.toFixed(1)} ms (${(untuned.childCpuMs / after.childCpuMs).toFixed(2)}x)\n`,
    );
  }
  const proc = b.rows.find((r) => r.name === 'cold call, process, sandbox off');
  const thread = b.rows.find((r) => r.name.startsWith('cold call, VM thread'));
  if (proc && thread) {
    // A VM thread's CPU is the host's own (host CPU column); a VM process's is its child CPU plus the host's.
    process.stdout.write(
      `cold call, process / VM thread (both sandbox off): ${proc.medianMs.toFixed(1)} ms / ${thread.medianMs.toFixed(1)} ms median (${(proc.medianMs / thread.medianMs).toFixed(2)}x); ` +
        `CPU ${(proc.childCpuMs + proc.selfCpuMs).toFixed(1)} ms / ${(thread.childCpuMs + thread.selfCpuMs).toFixed(1)} ms\n`,
    );
  }
  process.stdout.write(`VM CPU of a cold call / CPU of node -e 0: ${(after.childCpuMs / node.childCpuMs).toFixed(2)}x\n`);
  process.stdout.write(
    `cold call / node -e 0: ${(after.medianMs / node.medianMs).toFixed(2)}x; target <= 100 ms median: ${after.medianMs <= 100 ? 'met' : 'NOT met'}` +
      ` (wall times grow with the load average, ${b.load.toFixed(1)} at the start; the CPU figures do not)\n`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printCold(await benchCold({ rounds: Number(process.argv[2] ?? 15) }));
}
