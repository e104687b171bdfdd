/**
 * `hostlink vm --sandbox-self-test`: checks this machine's VM sandbox in one command. It prints the layers, then
 * starts one real VM process per forbidden action, through the same launcher, uid, cgroup and seccomp filter as
 * the host's VMs, while this process holds an LMDB environment open (the descriptor that used to leak). Each VM
 * tries its action from JavaScript (src/vm/sandbox-probes.ts). Exit 0 only when every action was blocked and
 * the control VM ran.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROBES, type ProbeResult } from '../../vm/sandbox-probes.js';
import { openLmdbStore } from '../state/lmdb-store.js';
import { HOSTLINK_BIN, VM_NODE_FLAGS } from '../supervisor.js';
import { prepareSandbox, type PreparedSandbox, type SandboxMode } from './plan.js';
import { extend } from '../../extend.js';

interface Row {
  name: string;
  title: string;
  ok: boolean;
  how: string;
}

function listen(server: Server, ...args: unknown[]): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    (server.listen as (...a: unknown[]) => void)(...args, () => resolve());
  });
}

function runOne(sandbox: PreparedSandbox, name: string, context: string): Promise<{ result?: ProbeResult; signal: string | null; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = sandbox.spawn(process.execPath, [...VM_NODE_FLAGS, HOSTLINK_BIN, 'vm', '--sandbox-probe', name], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { HOSTLINK_PROBE: context },
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', (e) => resolve({ signal: null, code: null, stderr: e.message }));
    child.once('close', (code, signal) => {
      let result: ProbeResult | undefined;
      try {
        result = out.trim() ? (JSON.parse(out.trim().split('\n').pop()!) as ProbeResult) : undefined;
      } catch {
        result = undefined;
      }
      resolve(extend((result ? { result } : {}), { signal, code, stderr: err.trim() }));
    });
  });
}

export async function runSandboxSelfTest(mode: SandboxMode, out: (line: string) => void): Promise<number> {
  let sandbox: PreparedSandbox;
  try {
    sandbox = prepareSandbox(mode, 'unix', HOSTLINK_BIN);
  } catch (e) {
    out(`sandbox self-test: ${(e as Error).message}`);
    return 1;
  }
  out(`sandbox mode ${mode}; layers:`);
  for (const l of sandbox.assessment.layers) out(`  ${l.state.padEnd(6)} ${l.name.padEnd(12)} ${l.detail}`);

  const dir = mkdtempSync(join(tmpdir(), 'hostlink-selftest-'));
  const store = await openLmdbStore(join(dir, 'lmdb')); // an open LMDB environment, as in a real host
  const unixServer = createServer((s) => s.destroy());
  const tcpServer = createServer((s) => s.destroy());
  const rows: Row[] = [];
  try {
    const unixPath = join(dir, 'probe.sock');
    await listen(unixServer, unixPath);
    sandbox.grantSocket({ kind: 'unix', path: unixPath }); // reachable by the VM's uid: only the sandbox stops it
    await listen(tcpServer, 0, '127.0.0.1');
    const addr = tcpServer.address();
    const context = JSON.stringify({ unixPath, tcpPort: typeof addr === 'object' && addr ? addr.port : 0 });
    out('forbidden actions, each tried by a sandboxed VM process:');
    const names = Object.keys(PROBES);
    const results = await Promise.all(names.map((n) => runOne(sandbox, n, context)));
    for (const [i, name] of names.entries()) {
      const probe = PROBES[name]!;
      const r = results[i]!;
      let ok: boolean;
      let how: string;
      if (r.result) {
        ok = r.result.outcome === probe.expect;
        how = `${r.result.outcome}: ${r.result.detail}`;
      } else if (r.signal === 'SIGSYS') {
        ok = probe.expect === 'blocked';
        how = 'blocked: the process was killed by seccomp (SIGSYS)';
      } else {
        ok = false;
        how = `the probe VM failed (${r.signal ? `signal ${r.signal}` : `exit ${r.code}`}): ${r.stderr.split('\n').pop() ?? ''}`;
      }
      rows.push({ name, title: probe.title, ok, how });
    }
  } finally {
    unixServer.close();
    tcpServer.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const width = Math.max(...rows.map((r) => r.title.length));
  for (const r of rows) out(`  ${r.ok ? 'ok  ' : 'FAIL'}  ${r.title.padEnd(width)}  ${r.how}`);
  const failed = rows.filter((r) => !r.ok);
  out(failed.length === 0 ? 'every forbidden action was blocked' : `${failed.length} check(s) failed: ${failed.map((r) => r.name).join(', ')}`);
  return failed.length === 0 ? 0 : 1;
}
