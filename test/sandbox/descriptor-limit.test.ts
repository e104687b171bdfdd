/**
 * A VM's descriptor limit (RLIMIT_NOFILE, set by the launcher before Node starts) must leave room for the VM's
 * own start-up. Started from the normal entry (no start-up snapshot), Node's module loader opens the VM's module
 * files concurrently, so at the worst moment every one of them is open at once; with a limit of 64 about one such
 * start in 30 died of EMFILE ("too many open files") before saying hello.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { vmProcessTree } from '../../src/host/sandbox/plan.js';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { SNAPSHOT_ENV } from '../../src/host/vm-entry.js';
import { contract, id32, ROOT, tempDir, utf8 } from '../helpers.js';

/** Node's own descriptors beside the modules: stdio, epoll, eventfds, signal pipes, the host socket, the lifeline. */
const NODE_OWN = 32;

/** The compiled files the VM's normal entry loads: static relative imports from the CLI entry and the vm command. */
function normalEntryModules(): string[] {
  const start = [HOSTLINK_BIN, join(ROOT, 'dist', 'src', 'cli', 'main.js'), join(ROOT, 'dist', 'src', 'cli', 'commands', 'vm.js')];
  const seen = new Set<string>();
  const todo = start.filter((f) => existsSync(f));
  while (todo.length) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    // Static imports only: the CLI's dispatcher loads its commands with import(), and only the vm command runs.
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = resolve(dirname(file), m[1]!);
      if (existsSync(target)) todo.push(target);
    }
  }
  return [...seen];
}

/** The soft "Max open files" of a process, or undefined when it is gone. */
function openFilesLimit(pid: number): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return undefined;
  }
}

test("a VM's descriptor limit leaves room for every module of its normal entry open at once", { timeout: 60_000 }, async (t) => {
  const modules = normalEntryModules();
  assert.ok(modules.length > 50, `the walk found the VM's modules (${modules.length})`);
  const saved = process.env[SNAPSHOT_ENV];
  process.env[SNAPSHOT_ENV] = 'off';
  const data = tempDir();
  let host: Host | undefined;
  try {
    host = await Host.open({ dataDir: data.path, mode: 'pool', poolSize: 1 });
    const codeHash = await host.deploy(contract('kv-store'));
    const out = await host.call({ codeHash, method: 'set', input: utf8(JSON.stringify({ key: 'k', value: 'v' })), contextId: id32('nofile') });
    assert.equal(out.result.code, 'return', JSON.stringify(out.result));
    const nodes = host.vmPids().flatMap((pid) => vmProcessTree(pid)).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('hostlink.js');
      } catch {
        return false;
      }
    });
    const limits = nodes.map(openFilesLimit).filter((n): n is number => n !== undefined);
    assert.ok(limits.length > 0, 'found the VM process');
    const own = openFilesLimit(process.pid);
    if (limits.every((l) => l === own)) {
      t.skip(`the VM's descriptor limit is the host's own (${own}): this sandbox mode sets no limits`);
      return;
    }
    for (const limit of limits) {
      assert.ok(limit >= modules.length + NODE_OWN, `RLIMIT_NOFILE ${limit} leaves no room for ${modules.length} module files and Node's own descriptors`);
    }
  } finally {
    await host?.close();
    data.remove();
    if (saved === undefined) delete process.env[SNAPSHOT_ENV];
    else process.env[SNAPSHOT_ENV] = saved;
  }
});
