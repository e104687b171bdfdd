/**
 * What a real pool VM process finds in its environment: PATH, VM_ENVIRONMENT (glibc's malloc tunable, which cuts
 * the VM's start-up page faults) and the sandbox's own variables; nothing of the node's environment.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { HOSTLINK_BIN, VM_ENVIRONMENT, vmMallocHugePages } from '../../src/host/supervisor.js';
import { contract, id32, tempDir, utf8 } from '../helpers.js';

const SANDBOX_VARIABLES = ['HOSTLINK_SANDBOX', 'HOSTLINK_HOST_PID', 'HOSTLINK_LIFELINE_FD', 'HOSTLINK_DEATH_SIGNAL', 'HOSTLINK_CGROUP_READY_FD'];

/** The variables of a process, or undefined when this user may not read them (a VM running as another uid). */
function environOf(pid: number): Map<string, string> | undefined {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return undefined;
  }
  const vars = new Map<string, string>();
  for (const entry of raw.split('\0').filter((e) => e !== '')) {
    const eq = entry.indexOf('=');
    vars.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return vars;
}

test("a pool VM's environment: PATH, the malloc tunable and the sandbox's variables, nothing of the node's", { timeout: 60_000 }, async (t) => {
  const data = tempDir();
  process.env.HOSTLINK_TEST_CANARY = 'not for VMs';
  const host = await Host.open({ dataDir: data.path, mode: 'pool', poolSize: 1 });
  try {
    const codeHash = await host.deploy(contract('kv-store'));
    const out = await host.call({ codeHash, method: 'set', input: utf8(JSON.stringify({ key: 'k', value: 'v' })), contextId: id32('environment') });
    assert.equal(out.result.code, 'return');
    const pids = host.vmPids();
    assert.ok(pids.length > 0, 'the pool has a VM');
    const vars = environOf(pids[0]!);
    if (vars === undefined) {
      t.skip(`this user cannot read /proc/${pids[0]}/environ (the VM runs as another user)`);
      return;
    }
    for (const [name, value] of Object.entries(VM_ENVIRONMENT)) assert.equal(vars.get(name), value, `${name} in the VM's environment`);
    assert.ok(vars.has('PATH'));
    const allowed = new Set(['PATH', ...Object.keys(VM_ENVIRONMENT), ...SANDBOX_VARIABLES]);
    for (const name of vars.keys()) assert.ok(allowed.has(name), `the VM saw ${name}`);
  } finally {
    delete process.env.HOSTLINK_TEST_CANARY;
    await host.close();
    data.remove();
  }
});

test('whether the tunable takes effect: glibc 2.35 or newer and transparent huge pages always or madvise', () => {
  const dir = tempDir();
  try {
    const thp = (mode: string): string => {
      const f = join(dir.path, `thp-${mode}`);
      writeFileSync(f, ['always', 'madvise', 'never'].map((m) => (m === mode ? `[${m}]` : m)).join(' ') + '\n');
      return f;
    };
    assert.equal(vmMallocHugePages(thp('madvise'), '2.36').used, true);
    assert.equal(vmMallocHugePages(thp('always'), '2.35').used, true);
    assert.equal(vmMallocHugePages(thp('always'), '3.0').used, true);
    const never = vmMallocHugePages(thp('never'), '2.36');
    assert.equal(never.used, false);
    assert.match(never.detail, /transparent huge pages never; .*echo madvise >/);
    const old = vmMallocHugePages(thp('madvise'), '2.34');
    assert.equal(old.used, false);
    assert.match(old.detail, /glibc 2\.34 \(needs 2\.35 or newer/);
    assert.match(vmMallocHugePages(thp('madvise'), null).detail, /^not glibc/);
    assert.match(vmMallocHugePages(join(dir.path, 'missing'), '2.36').detail, /unknown \(.*missing unreadable\)/);
  } finally {
    dir.remove();
  }
});

test('hostlink doctor says whether the VMs get huge pages here, as the assessment does', () => {
  const r = spawnSync(process.execPath, [HOSTLINK_BIN, 'doctor', '--json', '--sandbox', 'best-effort'], { encoding: 'utf8' });
  const out = JSON.parse(r.stdout) as { checks: { name: string; ok: boolean; optional?: boolean; detail: string }[] };
  const check = out.checks.find((c) => c.name === 'VM malloc huge pages');
  const here = vmMallocHugePages();
  assert.deepEqual(check, { name: 'VM malloc huge pages', ok: here.used, optional: true, detail: here.detail });
});
