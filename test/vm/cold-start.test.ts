/**
 * VM start-up for one-shot calls: the start-up snapshot the build makes (src/host/vm-entry.ts,
 * scripts/build-vm-snapshot.mjs) and the normal entry (`hostlink vm`) it falls back to, through the real parts: a Host on LMDB,
 * VM processes in the sandbox this machine gives (required where the native parts are built), the secret and the
 * hello proof, a kv-store call and its read back. A snapshot that is corrupt or stale (another Node, other VM
 * flags, a changed module, a moved installation) must never reach Node, which crashes on it: the host falls back
 * to the normal entry and says why, once, on stderr.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, openSync, closeSync, readFileSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Host, type ExecutionMode } from '../../src/host/host.js';
import { vmProcessTree } from '../../src/host/sandbox/plan.js';
import { VM_NODE_FLAGS } from '../../src/host/supervisor.js';
import { CLI_ENTRY, SNAPSHOT_DIR, SNAPSHOT_ENV, snapshotProblem, snapshotVerdict, verifiedStamps, vmEntryCommand } from '../../src/host/vm-entry.js';
import { cliIn } from '../cli/run-cli.js';
import { contract, id32, text, tempDir, utf8 } from '../helpers.js';

const tmp = tempDir('hostlink-cold-');
// VMs may run as the sandbox's unprivileged user: a snapshot copy they start from must be readable by it.
chmodSync(tmp.path, 0o755);
let copies = 0;

/** A copy of the built snapshot directory, changed by `edit`. */
function snapshotCopy(edit: (dir: string) => void): string {
  const dir = join(tmp.path, `snap-${++copies}`);
  cpSync(SNAPSHOT_DIR, dir, { recursive: true });
  chmodSync(dir, 0o755);
  edit(dir);
  return dir;
}

function editMeta(dir: string, change: (meta: Record<string, unknown>) => void): void {
  const meta = JSON.parse(readFileSync(join(dir, 'vm.json'), 'utf8')) as Record<string, unknown>;
  change(meta);
  writeFileSync(join(dir, 'vm.json'), JSON.stringify(meta));
}

/** Runs `fn` with HOSTLINK_VM_SNAPSHOT set (or unset) and stderr captured. */
async function withSnapshotEnv<T>(value: string | undefined, fn: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  const saved = process.env[SNAPSHOT_ENV];
  const write = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  if (value === undefined) delete process.env[SNAPSHOT_ENV];
  else process.env[SNAPSHOT_ENV] = value;
  try {
    return { value: await fn(), stderr };
  } finally {
    process.stderr.write = write;
    if (saved === undefined) delete process.env[SNAPSHOT_ENV];
    else process.env[SNAPSHOT_ENV] = saved;
  }
}

/** set then get of the kv-store through a fresh Host; returns the value read back and the VMs' command lines (pool mode). */
async function kvRoundTrip(mode: ExecutionMode, tag: string): Promise<{ value: string; cmdlines: string[] }> {
  const dir = join(tmp.path, `data-${tag}`);
  const host = await Host.open({ dataDir: dir, mode, poolSize: 1, deadlineMs: 60_000 });
  try {
    const codeHash = await host.deploy(contract('kv-store'));
    const contextId = id32(`cold-${tag}`);
    const set = await host.call({ codeHash, method: 'set', input: utf8(JSON.stringify({ key: 'k', value: `v-${tag}` })), contextId });
    assert.equal(set.result.code, 'return', JSON.stringify(set.result));
    const got = await host.call({ codeHash, method: 'get', input: utf8(JSON.stringify({ key: 'k' })), contextId });
    assert.equal(got.result.code, 'return', JSON.stringify(got.result));
    const cmdlines = host.vmPids().flatMap((pid) => vmProcessTree(pid)).map((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      } catch {
        return '';
      }
    });
    const v = (got.result as { value: unknown }).value;
    return { value: v instanceof Uint8Array ? text(v) : String(v), cmdlines };
  } finally {
    await host.close();
  }
}

describe('VM start-up: the snapshot and the normal entry', () => {
  before(() => {
    // The suite's build (npm test's pretest) makes the snapshot: without it the speed-up is silently gone.
    assert.equal(snapshotProblem(VM_NODE_FLAGS), undefined, 'the build made a usable VM start-up snapshot');
  });
  after(() => tmp.remove());

  test('by default VMs start from the snapshot and run a real kv-store call (one-shot), and a pool VM shows it on its command line', async () => {
    const { value: r, stderr } = await withSnapshotEnv(undefined, async () => {
      const entry = vmEntryCommand({ nodeFlags: VM_NODE_FLAGS });
      assert.equal(entry.kind, 'snapshot', entry.reason);
      assert.ok(entry.command.includes('--snapshot-blob'));
      const oneshot = await kvRoundTrip('oneshot', 'snap-oneshot');
      const pool = await kvRoundTrip('pool', 'snap-pool');
      return { oneshot, pool, blob: entry.file };
    });
    assert.equal(r.oneshot.value, '"v-snap-oneshot"');
    assert.equal(r.pool.value, '"v-snap-pool"');
    assert.ok(r.pool.cmdlines.some((c) => c.includes(`--snapshot-blob ${r.blob} ${CLI_ENTRY} vm --host`)), `a pool VM runs from the snapshot: ${r.pool.cmdlines.join(' | ')}`);
    assert.doesNotMatch(stderr, /start-up snapshot/);
  });

  test(`${SNAPSHOT_ENV}=off: VMs start from hostlink vm and run the same call`, async () => {
    const { value: r } = await withSnapshotEnv('off', async () => {
      const entry = vmEntryCommand({ nodeFlags: VM_NODE_FLAGS });
      assert.equal(entry.kind, 'cli');
      return { oneshot: await kvRoundTrip('oneshot', 'cli-oneshot'), pool: await kvRoundTrip('pool', 'cli-pool') };
    });
    assert.equal(r.oneshot.value, '"v-cli-oneshot"');
    assert.equal(r.pool.value, '"v-cli-pool"');
    assert.ok(r.pool.cmdlines.some((c) => c.includes(`${CLI_ENTRY} vm --host`) && !c.includes('--snapshot-blob')), r.pool.cmdlines.join(' | '));
  });

  test('the snapshot entry and hostlink vm compute the same outcome: result, gas, state root and execution hash of the same calls', async () => {
    // The snapshot VM runs code compiled at build time under VM_NODE_FLAGS (a late tier-up); what it computes must
    // not depend on any of that.
    const run = async (env: string | undefined, tag: string): Promise<string[]> => {
      const { value } = await withSnapshotEnv(env, async () => {
        const host = await Host.open({ dataDir: join(tmp.path, `same-${tag}`), mode: 'oneshot', deadlineMs: 60_000 });
        try {
          const codeHash = await host.deploy(contract('kv-store'));
          const contextId = id32('same-outcome');
          const out: string[] = [];
          for (const [method, input] of [['set', { key: 'a', value: 'x'.repeat(300) }], ['set', { key: 'b', value: 'y' }], ['get', { key: 'a' }]] as const) {
            const o = await host.call({ codeHash, method, input: utf8(JSON.stringify(input)), contextId });
            assert.equal(o.result.code, 'return', JSON.stringify(o.result));
            out.push(`${method} gas=${o.gasUsed} root=${Buffer.from(o.stateRoot).toString('hex')} hash=${Buffer.from(o.executionHash).toString('hex')} result=${Buffer.from(o.resultBytes).toString('hex')}`);
          }
          return out;
        } finally {
          await host.close();
        }
      });
      return value;
    };
    const fromSnapshot = await run(undefined, 'snapshot');
    const fromCli = await run('off', 'cli');
    assert.deepEqual(fromSnapshot, fromCli);
  });

  test('a corrupt snapshot never reaches Node (which crashes on it): the call runs from hostlink vm, with one clear stderr line', async () => {
    const dir = snapshotCopy((d) => {
      const blob = readFileSync(join(d, 'vm.blob'));
      for (let i = 0; i < 64; i++) blob[Math.floor(blob.length / 2) + i] ^= 0xff;
      writeFileSync(join(d, 'vm.blob'), blob);
    });
    // What the check prevents: Node given this blob does not start a VM.
    const direct = spawnSync(process.execPath, [...VM_NODE_FLAGS, '--snapshot-blob', join(dir, 'vm.blob'), CLI_ENTRY, 'vm', '--help'], { encoding: 'utf8', timeout: 30_000 });
    assert.ok(direct.status !== 0 || !direct.stdout.includes('usage: hostlink vm'), `node ran the corrupt blob: ${direct.status} ${direct.stdout.slice(0, 80)}`);

    const { value: r, stderr } = await withSnapshotEnv(dir, async () => {
      const first = await kvRoundTrip('oneshot', 'corrupt');
      const second = await kvRoundTrip('oneshot', 'corrupt-again');
      return { first, second, entry: vmEntryCommand({ nodeFlags: VM_NODE_FLAGS }) };
    });
    assert.equal(r.first.value, '"v-corrupt"');
    assert.equal(r.second.value, '"v-corrupt-again"');
    assert.equal(r.entry.kind, 'cli');
    const lines = stderr.split('\n').filter((l) => l.includes('start-up snapshot'));
    assert.equal(lines.length, 1, `said once: ${stderr}`);
    assert.match(lines[0]!, /^hostlink: not using the VM start-up snapshot: .*vm\.blob does not match its checksum \(corrupt or replaced\); VMs start from the normal entry .*build-vm-snapshot\.mjs/);
  });

  test('a stale snapshot falls back with its reason: another Node, other VM flags, a changed module, a moved installation, another format', () => {
    const cases: Array<[string, (d: string) => void, RegExp]> = [
      ['node', (d) => editMeta(d, (m) => (m.node = 'v19.0.0')), new RegExp(`built by Node v19\\.0\\.0 .*this is Node ${process.version.replace(/\./g, '\\.')}`)],
      ['flags', (d) => editMeta(d, (m) => (m.flags = ['--max-old-space-size=64'])), /built for VM flags \["--max-old-space-size=64"\], VMs now use/],
      ['module', (d) => editMeta(d, (m) => (m.sources = { ...(m.sources as Record<string, string>), 'dist/src/vm/runner.js': '00' })), /the compiled module dist\/src\/vm\/runner\.js changed after the snapshot was built/],
      ['root', (d) => editMeta(d, (m) => (m.root = '/elsewhere')), /built for the installation at \/elsewhere/],
      ['format', (d) => editMeta(d, (m) => (m.format = 999)), /has format 999/],
      ['missing', (d) => writeFileSync(join(d, 'vm.json'), '{'), /vm\.json is unreadable/],
    ];
    for (const [name, edit, reason] of cases) {
      const dir = snapshotCopy(edit);
      const entry = vmEntryCommand({ nodeFlags: VM_NODE_FLAGS, dir });
      assert.equal(entry.kind, 'cli', name);
      assert.match(entry.reason ?? '', reason, name);
    }
    // The untouched copy is usable: the checks do not refuse a good snapshot elsewhere.
    assert.equal(vmEntryCommand({ nodeFlags: VM_NODE_FLAGS, dir: snapshotCopy(() => undefined) }).kind, 'snapshot');
  });

  test("the build records the snapshot's file stamps: a host finds it usable without reading the blob and the modules", () => {
    assert.deepEqual(snapshotVerdict(VM_NODE_FLAGS), { reason: undefined, by: 'stamps' });
    // A copy has other inodes: its blob is read and hashed, and found good.
    assert.deepEqual(snapshotVerdict(VM_NODE_FLAGS, snapshotCopy(() => undefined)), { reason: undefined, by: 'content' });
  });

  test('a file changed in place with its size and times put back is read again: the stamps do not hide it', () => {
    // A copy whose description carries stamps taken for it, as the build writes them.
    // Its blob's times are whole seconds, so that they can be set back exactly after the blob is changed.
    const WHEN = 1_700_000_000;
    const stamped = (): string =>
      snapshotCopy((d) => {
        utimesSync(join(d, 'vm.blob'), WHEN, WHEN);
        editMeta(d, (m) => {
          m.stamps = verifiedStamps(d, m.blob as string, m.sources as Record<string, string>);
          assert.ok(m.stamps !== undefined, 'stamps taken for the copy');
        });
      });
    const good = stamped();
    assert.deepEqual(snapshotVerdict(VM_NODE_FLAGS, good), { reason: undefined, by: 'stamps' });
    assert.equal(vmEntryCommand({ nodeFlags: VM_NODE_FLAGS, dir: good }).kind, 'snapshot');

    // 64 bytes of the blob overwritten, same size, its access and modification times set back: only ctime tells.
    const altered = stamped();
    const blob = join(altered, 'vm.blob');
    const before = statSync(blob);
    const fd = openSync(blob, 'r+');
    try {
      writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, Math.floor(before.size / 2));
    } finally {
      closeSync(fd);
    }
    utimesSync(blob, WHEN, WHEN);
    assert.equal(statSync(blob, { bigint: true }).mtimeNs, BigInt(WHEN) * 1_000_000_000n);
    assert.equal(statSync(blob).size, before.size);
    const verdict = snapshotVerdict(VM_NODE_FLAGS, altered);
    assert.equal(verdict.by, 'content');
    assert.match(verdict.reason ?? '', /vm\.blob does not match its checksum \(corrupt or replaced\)/);
    assert.equal(vmEntryCommand({ nodeFlags: VM_NODE_FLAGS, dir: altered }).kind, 'cli');

    // A digest edited in the description after the stamps were taken: the stamps no longer vouch for the module.
    const edited = stamped();
    editMeta(edited, (m) => (m.sources = { ...(m.sources as Record<string, string>), 'dist/src/vm/runner.js': '00' }));
    const v2 = snapshotVerdict(VM_NODE_FLAGS, edited);
    assert.equal(v2.by, 'content');
    assert.match(v2.reason ?? '', /the compiled module dist\/src\/vm\/runner\.js changed after the snapshot was built/);
  });

  test('hostlink doctor says whether VMs start from the snapshot', () => {
    const cli = cliIn(tmp.path);
    const on = cli.json<{ checks: { name: string; ok: boolean; detail: string }[] }>(['doctor', '--sandbox', 'best-effort']);
    const check = on.checks.find((c) => c.name === 'VM start-up snapshot');
    assert.ok(check?.ok, JSON.stringify(check));
    assert.match(check!.detail, /^in use/);
    const stale = snapshotCopy((d) => editMeta(d, (m) => (m.node = 'v19.0.0')));
    const saved = process.env[SNAPSHOT_ENV];
    process.env[SNAPSHOT_ENV] = stale;
    try {
      const off = cli.json<{ ready: boolean; checks: { name: string; ok: boolean; optional?: boolean; detail: string }[] }>(['doctor', '--sandbox', 'best-effort']);
      const c = off.checks.find((x) => x.name === 'VM start-up snapshot');
      assert.equal(c?.ok, false);
      assert.equal(c?.optional, true); // a missing snapshot costs speed only
      assert.match(c!.detail, /^not used: the snapshot was built by Node v19\.0\.0/);
      assert.equal(off.ready, true);
    } finally {
      if (saved === undefined) delete process.env[SNAPSHOT_ENV];
      else process.env[SNAPSHOT_ENV] = saved;
    }
  });
});
