/**
 * Where a pooled execution's CPU goes, on both sides: runs kv-store `set` calls through the real stack (pool
 * mode, unix, 8 contexts, sandbox and authentication as in `npm run bench`) with the VMs started under
 * `node --cpu-prof`, and prints the top functions by self time of the VMs' profiles and, when this process
 * itself runs under --cpu-prof, of the host's. Not part of `npm run bench` (profiling changes the figures);
 * run it by hand when looking for the next thing to fix:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof-host dist/bench/profile-pool.js [calls] [dir-for-vm-profiles] [sandbox] [lanes]
 *
 * `lanes` (default 8) is how many contexts are called at once; 1 profiles one context alone.
 *
 * The VMs write their profiles when they exit (vm-profile-exit.ts makes the pool's SIGTERM a normal exit); a
 * sandboxed VM may not be able to write them (its user, its seccomp filter): pass `off` as the sandbox then.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host } from '../src/host/host.js';
import type { SandboxMode } from '../src/host/sandbox/plan.js';
import { HOSTLINK_BIN, VM_NODE_FLAGS } from '../src/host/supervisor.js';
import { runLanes } from './lanes.js';
import { benchSandboxMode } from './sandbox.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name + file:line) over all profiles in `dir`, as shares of all samples. */
export function topSelf(dir: string, n: number): string {
  const self = new Map<string, number>();
  let total = 0;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Profile;
    const byId = new Map(p.nodes.map((node) => [node.id, node]));
    for (let i = 0; i < p.samples.length; i++) {
      const node = byId.get(p.samples[i]!)!;
      const dt = p.timeDeltas[i] ?? 0;
      const { functionName, url, lineNumber } = node.callFrame;
      const key = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
      self.set(key, (self.get(key) ?? 0) + dt);
      total += dt;
    }
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, n);
  return rows.map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`).join('\n');
}

async function main(): Promise<void> {
  const calls = Number(process.argv[2] ?? 3000);
  const lanes = Number(process.argv[5] ?? 8);
  const profDir = process.argv[3] ?? mkdtempSync(join(tmpdir(), 'hostlink-vm-prof-'));
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-bench-'));
  const exitOnTerm = fileURLToPath(new URL('./vm-profile-exit.js', import.meta.url));
  const vmCommand = [process.execPath, ...VM_NODE_FLAGS, `--import=${exitOnTerm}`, '--cpu-prof', `--cpu-prof-dir=${profDir}`, HOSTLINK_BIN, 'vm'];
  const host = await Host.open({ dataDir: dir, mode: 'pool', transport: 'unix', poolSize: 2, deadlineMs: 30_000, sandbox: (process.argv[4] as SandboxMode | undefined) ?? benchSandboxMode(), vmCommand });
  try {
    const codeHash = await host.deploy(Uint8Array.from(readFileSync(join(ROOT, 'examples/kv-store/build/kv-store.wasm'))));
    const input = (i: number): Uint8Array => Uint8Array.from(Buffer.from(JSON.stringify({ key: `k${i}`, value: `value-${i}` })));
    const { seconds: s, failures } = await runLanes(host, codeHash, calls, lanes, input);
    if (failures > 0) throw new Error(`${failures} of ${calls} calls did not return`);
    process.stdout.write(`${calls} calls on ${lanes} contexts in ${s.toFixed(2)} s (${(calls / s).toFixed(0)}/s, profiled)\n`);
  } finally {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`VM profiles (${profDir}), top self time:\n${topSelf(profDir, 30)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
