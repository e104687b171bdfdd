/**
 * What a real pool VM process finds in its environment: PATH, VM_ENVIRONMENT (glibc's malloc tunable, which cuts
 * the VM's start-up page faults) and the sandbox's own variables; nothing of the node's environment.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { VM_ENVIRONMENT } from '../../src/host/supervisor.js';
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
