/**
 * The VM's OS sandbox through the real parts: real hosts with LMDB, real VM processes, the launcher, the
 * seccomp filter, cgroups, /proc. Each defect gets a test that failed before the sandbox existed: the host's
 * LMDB descriptor in every VM, VMs as root without no_new_privs or seccomp, VMs that outlive a killed host.
 * The same checks run from a copy of the installation without the native parts (what a machine without a C
 * compiler has): there 'required' must refuse and 'best-effort' must still close what was inherited.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { MIN_VM_MEMORY_BYTES, MIN_VM_OPEN_FILES, MIN_VM_TASKS } from '../../src/protocol/bounds.generated.js';
import { MAX_MEMORY_PAGES_LIMIT } from '../../src/protocol/limits.generated.js';
import { wat } from '../instrument/helpers.js';
import { assessSandbox } from '../../src/host/sandbox/plan.js';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { launcherStatus, sandboxAddon } from '../../src/vm/sandbox-native.js';
import { contract, contractPath, id32, ROOT, tempDir } from '../helpers.js';
import { inspectVm, waitConnected, type VmView } from './host-script.js';

const linux = process.platform === 'linux';
const native = linux && sandboxAddon().addon !== undefined && launcherStatus().reason === undefined;
const NO_NATIVE = !linux ? 'Linux only' : native ? false : 'the native sandbox parts are not built (node scripts/build-native.mjs)';
const isRoot = process.getuid?.() === 0;
// VMs drop to an unprivileged uid, unless this checkout is unreadable by it and the runner chose root VMs (scripts/test.mjs).
const dropsUid = isRoot && process.env.HOSTLINK_SANDBOX_USER !== 'root';
const ROOT_VMS = 'the checkout is not readable by the VM user: VMs run as root here (scripts/test.mjs)';
const UNLIMITED_GAS = 2n ** 62n;

/**
 * Descriptors above stderr that name a path: what a VM must never hold (files, directories, devices). Node
 * opens /dev/null for itself, which holds nothing.
 */
function pathFds(v: VmView): string[] {
  return v.fds.filter((f) => Number(f.split('=')[0]) > 2 && /=\//.test(f) && !f.endsWith('=/dev/null'));
}
const sockets = (v: VmView): string[] => v.fds.filter((f) => Number(f.split('=')[0]) > 2 && f.includes('=socket:'));
/** The node process of a VM (with a pid namespace the launcher stays as its parent). */
const nodeOf = (views: VmView[]): VmView => views[views.length - 1]!;

/** Starts a call that loops until its VM is killed, inspects the VM, kills it, and waits for the call. */
async function inspectBusyVm(host: Host, call: () => Promise<unknown>, during?: (views: VmView[]) => void, connected = true): Promise<VmView[]> {
  const done = call();
  let pids: number[] = [];
  while (pids.length === 0) {
    await new Promise((r) => setTimeout(r, 20));
    pids = host.busyVmPids();
  }
  try {
    if (connected) await waitConnected(pids[0]!);
    else await new Promise((r) => setTimeout(r, 500)); // a process that never connects: let the launcher exec it
    const views = inspectVm(pids[0]!);
    during?.(views);
    return views;
  } finally {
    try {
      process.kill(pids[0]!, 'SIGKILL');
    } catch {
      // already ended
    }
    await done;
  }
}

describe('sandbox: a VM holds nothing of the host\'s and runs inside every layer', { skip: NO_NATIVE }, () => {
  const dir = tempDir();
  let host: Host;
  let hold: Uint8Array;
  const hostNs: Record<string, string> = {};

  before(async () => {
    host = await Host.open({ dataDir: dir.path, poolSize: 1, killGraceMs: 100, sandbox: 'required' });
    hold = await host.deploy(contract('hold'));
    for (const n of ['net', 'ipc', 'mnt', 'uts', 'pid']) hostNs[n] = readlinkSync(`/proc/self/ns/${n}`);
  });
  after(async () => {
    await host.close();
    dir.remove();
  });

  for (const mode of ['pool', 'oneshot'] as const) {
    test(`${mode}: no descriptor of the host's (its LMDB file) in the VM, only stdio, its channel and Node's own`, async () => {
      const views = await inspectBusyVm(host, () => host.call({ codeHash: hold, method: 'write_then_loop', contextId: id32(`fds-${mode}`), mode, deadlineMs: 60_000, gasLimit: UNLIMITED_GAS }));
      for (const v of views) assert.deepEqual(pathFds(v), [], `pid ${v.pid} holds ${pathFds(v).join(', ')}`);
      assert.equal(sockets(nodeOf(views)).length, 1, `exactly one socket above stderr (the channel): ${nodeOf(views).fds.join(' ')}`);
    });
  }

  test('every VM process: unprivileged uid, no capabilities, no_new_privs, seccomp, own namespaces, a memory cgroup', async () => {
    const views = await inspectBusyVm(host, () => host.call({ codeHash: hold, method: 'write_then_loop', contextId: id32('status'), mode: 'oneshot', deadlineMs: 60_000, gasLimit: UNLIMITED_GAS }));
    const layers = Object.fromEntries(assessSandbox('required', 'unix', HOSTLINK_BIN).layers.map((l) => [l.name, l.state]));
    for (const v of views) {
      if (dropsUid) {
        assert.doesNotMatch(v.status.Uid!, /(^|\s)0(\s|$)/, `pid ${v.pid} has uid 0: ${v.status.Uid}`);
        assert.doesNotMatch(v.status.Gid!, /(^|\s)0(\s|$)/);
        assert.equal(v.status.Groups, '');
      }
      if (isRoot === dropsUid) assert.equal(v.status.CapEff, '0000000000000000');
      assert.equal(v.status.NoNewPrivs, '1');
      assert.equal(v.status.Seccomp, '2', `pid ${v.pid} runs without a seccomp filter`);
      if (layers.namespaces === 'on') for (const n of ['net', 'ipc', 'mnt', 'uts']) assert.notEqual(v.ns[n], hostNs[n], `${n} namespace shared with the host`);
      if (layers.memory === 'on') assert.match(v.cgroup, /memory:.*\/hostlink-\d+-vm-\d+/);
    }
    if (layers.namespaces === 'on') assert.notEqual(nodeOf(views).ns.pid, hostNs.pid);
  });

  test('the VM socket: another local user may not connect to it, the VM uid may', { skip: (!isRoot && 'needs root to act as other users') || (!dropsUid && ROOT_VMS) }, async () => {
    // A "VM" that never dials keeps its listener open: the window in which another user would race the VM.
    const h = await Host.open({ mode: 'oneshot', sandbox: 'required', killGraceMs: 100, vmCommand: [process.execPath, '-e', 'setInterval(() => {}, 1000)', '--'] });
    const code = await h.deploy(contract('hold'));
    const tryAs = (uid: number, path: string): string => {
      const js = `require('net').connect(${JSON.stringify(path)}).on('connect',()=>{console.log('connected');process.exit(0)}).on('error',(e)=>{console.log(e.code);process.exit(0)})`;
      return spawnSync(process.execPath, ['-e', js], { uid, gid: uid, encoding: 'utf8' }).stdout.trim();
    };
    let stranger = '';
    let vmUser = '';
    try {
      await inspectBusyVm(
        h,
        () => h.call({ codeHash: code, method: 'write', contextId: id32('socket'), deadlineMs: 60_000 }),
        (views) => {
          const cmdline = readFileSync(`/proc/${nodeOf(views).pid}/cmdline`, 'utf8');
          const path = /--host\0unix:\/\/([^\0]+)/.exec(cmdline)![1]!;
          stranger = tryAs(4242, path);
          vmUser = tryAs(Number(nodeOf(views).status.Uid!.split(/\s+/)[0]), path);
        },
        false,
      );
    } finally {
      await h.close();
    }
    assert.equal(stranger, 'EACCES');
    assert.equal(vmUser, 'connected');
  });

  test('memory: a VM process that allocates past its cgroup bound is stopped, the host is not', async (t) => {
    const layer = assessSandbox('required', 'unix', HOSTLINK_BIN).layers.find((l) => l.name === 'memory');
    if (layer?.state !== 'on') return t.skip(`no memory cgroup here: ${layer?.detail}`);
    // A "VM" that touches 256 MiB more than the smallest bound outside the V8 heap (what a V8 escape or a
    // compile-time blow-up does) then exits.
    const chunks = MIN_VM_MEMORY_BYTES / (16 << 20) + 16;
    const hog = `const a = []; for (let i = 0; i < ${chunks}; i++) a.push(Buffer.alloc(16 << 20, 1)); process.exit(0)`;
    const h = await Host.open({ mode: 'oneshot', killGraceMs: 100, sandbox: { mode: 'required', memoryBytes: MIN_VM_MEMORY_BYTES }, vmCommand: [process.execPath, '-e', hog, '--'] });
    try {
      const code = await h.deploy(contract('hold'));
      const o = await h.call({ codeHash: code, method: 'write', contextId: id32('hog'), deadlineMs: 60_000 });
      assert.equal(o.result.code, 'internal_error');
      assert.equal(o.crash?.signal, 'SIGKILL', `the VM ended by ${o.crash?.signal ?? `exit ${o.crash?.exitCode}`}, not by the memory bound`);
    } finally {
      await h.close();
    }
  });

  test('memory: the smallest bound a node may set holds the most guest memory a message may ask for', async (t) => {
    const layer = assessSandbox('required', 'unix', HOSTLINK_BIN).layers.find((l) => l.name === 'memory');
    if (layer?.state !== 'on') return t.skip(`no memory cgroup here: ${layer?.detail}`);
    // The main instance grows to max_memory_pages_limit pages and touches every OS page, then starts a sandbox
    // that does the same with the half it may have, and so on as deep as sandboxes nest: 15,872 pages (992 MiB)
    // held at once. Under a 900 MiB bound the VM is killed (vm_crash): the call's result would be the node's.
    const module = await wat(`(module
      (import "env" "sandbox" (func $sandbox (param i64 i64 i32 i64) (result i32)))
      (import "env" "value_return" (func $value_return (param i64)))
      (memory (export "memory") 1)
      (data (i32.const 0) "\\48\\00\\00\\00\\00\\00\\00\\00\\04\\00\\00\\00\\00\\00\\00\\00")
      (data (i32.const 72) "fill")
      (func $fill (local $a i32) (local $end i32)
        (block $full (loop $grow (br_if $full (i32.eq (memory.grow (i32.const 64)) (i32.const -1))) (br $grow)))
        (block $full (loop $grow (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1))) (br $grow)))
        (i32.store offset=128 (i32.const 0) (memory.size))
        (local.set $end (i32.shl (memory.size) (i32.const 16)))
        (local.set $a (i32.const 4096))
        (block $done (loop $touch
          (br_if $done (i32.ge_u (local.get $a) (local.get $end)))
          (i32.store8 (local.get $a) (i32.const 1))
          (local.set $a (i32.add (local.get $a) (i32.const 4096)))
          (br $touch)))
        (i32.store offset=132 (i32.const 0) (call $sandbox (i64.const 0) (i64.const 16) (i32.const 0) (i64.const 0))))
      (func (export "fill") (call $fill))
      (func (export "run")
        (call $fill)
        (i64.store (i32.const 96) (i64.const 0))
        (i64.store (i32.const 104) (i64.const 128))
        (i64.store (i32.const 112) (i64.const 8))
        (call $value_return (i64.const 96))))`);
    const h = await Host.open({ mode: 'oneshot', sandbox: { mode: 'required', memoryBytes: MIN_VM_MEMORY_BYTES } });
    try {
      const code = await h.deploy(module);
      const o = await h.call({ codeHash: code, method: 'run', contextId: id32('most-memory'), gasLimit: UNLIMITED_GAS, deadlineMs: 120_000, limits: { maxMemoryPages: MAX_MEMORY_PAGES_LIMIT } });
      assert.equal(o.result.code, 'return', JSON.stringify(o.result));
      const held = Buffer.from((o.result as { value: Uint8Array }).value);
      // Every page the message allows, and every nested sandbox returned.
      assert.deepEqual([held.readUInt32LE(0), held.readUInt32LE(4)], [MAX_MEMORY_PAGES_LIMIT, 0]);
    } finally {
      await h.close();
    }
  });

  test('hostlink vm --sandbox-self-test: every forbidden action fails, and a sandboxed VM still runs wasm', { skip: isRoot && !dropsUid && ROOT_VMS }, () => {
    const r = spawnSync(process.execPath, [HOSTLINK_BIN, 'vm', '--sandbox-self-test', '--sandbox', 'required'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    for (const action of ['open a file', 'connect a unix socket', 'connect a TCP socket', 'fork a process', 'execve', 'ptrace the host', 'raise RLIMIT_NOFILE', "write to an inherited descriptor (the host's LMDB file)"]) {
      assert.match(r.stdout, new RegExp(`\\n  ok    ${action.replace(/[()]/g, '\\$&')}`), `${action}: ${r.stdout}`);
    }
    assert.match(r.stdout, /killed by seccomp \(SIGSYS\)/);
    assert.match(r.stdout, /every forbidden action was blocked/);
  });

  test('the self-test with the sandbox off reports what is allowed and ends: its ptrace probe leaves the host running', { skip: !isRoot && 'only a root VM may ptrace the host with the sandbox off' }, () => {
    // As root with the sandbox off, the probe's attach succeeds: PTRACE_ATTACH stopped the self-test's own host
    // process and the command hung for good.
    const r = spawnSync(process.execPath, [HOSTLINK_BIN, 'vm', '--sandbox-self-test', '--sandbox', 'off'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.signal, null, `the self-test did not end (${r.signal}): ${r.stdout}`);
    assert.match(r.stdout, /\n  FAIL  ptrace the host +allowed: the system call succeeded/);
    assert.match(r.stdout, /check\(s\) failed: .*ptrace/);
  });

  test('a VM may not run as root unless the operator says so', { skip: !isRoot && 'only a root host switches users' }, async () => {
    const h = await Host.open({ sandbox: { mode: 'best-effort', user: 'no-such-hostlink-user' }, mode: 'oneshot' });
    try {
      const code = await h.deploy(contract('hold'));
      // No VM starts: the call ends without running, with the refusal as its reason, and nothing is applied.
      const o = await h.call({ codeHash: code, method: 'write', contextId: id32('root') });
      assert.equal(o.result.code, 'internal_error');
      assert.match((o.result as { message: string }).message, /could not start a VM process: .*refusing to run contracts as root: the VM user 'no-such-hostlink-user' does not exist/);
      assert.equal(o.applied, false);
    } finally {
      await h.close();
    }
  });
});

/** Runs host-script.js from `root` (a copy or the real tree) and returns its process and first JSON line. */
function startHost(root: string, mode: string, sandbox: string, dataDir: string, inspect = false): Promise<{ child: ChildProcess; report: { hostPid: number; vms: VmView[]; layers: string[] } }> {
  return new Promise((resolve, reject) => {
    const args = [join(root, 'dist', 'test', 'sandbox', 'host-script.js'), mode, sandbox, dataDir, contractPath('hold'), ...(inspect ? ['inspect'] : [])];
    const user = process.env.HOSTLINK_SANDBOX_USER; // the runner's choice of VM user (scripts/test.mjs) holds for this host too
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(user !== undefined ? { HOSTLINK_SANDBOX_USER: user } : {}) };
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, report: JSON.parse(out.slice(0, nl)) as { hostPid: number; vms: VmView[]; layers: string[] } });
    });
    child.once('exit', (code) => reject(new Error(`host script exited (${code}) before reporting: ${err}`)));
  });
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(safeRead(`/proc/${pid}/status`));
function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** Polls until every pid is gone; the bound is a failure bound, not a timing claim. */
async function goneWithin(pids: number[], ms: number): Promise<number[]> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pids.every((p) => !alive(p))) return [];
    await new Promise((r) => setTimeout(r, 50));
  }
  return pids.filter(alive);
}

/** VM cgroup directories named after `hostPid` in any mounted cgroup hierarchy. */
function staleCgroups(hostPid: number): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let names: string[] = [];
    try {
      names = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      return;
    }
    for (const n of names) {
      if (n.startsWith(`hostlink-${hostPid}-vm-`)) out.push(join(dir, n));
      else if (depth < 4 && !n.startsWith('hostlink-')) walk(join(dir, n), depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return out;
}

/** A copy of the installation without native/build: what `npm install` leaves on a machine without a C compiler. */
function copyWithoutNative(): { root: string; remove: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'hostlink-nonative-'));
  chmodSync(root, 0o755); // the VM user must be able to read the installation
  for (const p of ['dist', 'bin', 'package.json']) cpSync(join(ROOT, p), join(root, p), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

describe('sandbox settings', () => {
  test('a memory bound below min_vm_memory_bytes, or a number out of range, is refused when the host opens', async () => {
    // A smaller bound let a node kill calls the protocol allows (vm_crash) where other nodes return them.
    await assert.rejects(Host.open({ sandbox: { mode: 'best-effort', memoryBytes: 1024 ** 3 } }), (e: Error) => {
      assert.match(e.message, new RegExp(`sandbox.memoryBytes 1073741824 is below min_vm_memory_bytes \\(${MIN_VM_MEMORY_BYTES}\\).*give ${MIN_VM_MEMORY_BYTES} or more`));
      return true;
    });
    // Below min_vm_tasks or min_vm_open_files a VM could not start or run: every call failed on this node alone.
    const below = [{ maxTasks: MIN_VM_TASKS - 1 }, { maxTasks: 4 }, { maxOpenFiles: MIN_VM_OPEN_FILES - 1 }, { maxOpenFiles: 16 }];
    for (const bad of [{ memoryBytes: Number.NaN }, { memoryBytes: 2 ** 60 }, { maxTasks: 0 }, { maxOpenFiles: -1 }, { maxUserProcesses: 1.5 }, ...below]) {
      await assert.rejects(Host.open({ sandbox: { mode: 'best-effort', ...bad } }), /^HostlinkError: sandbox\.\w+( \(min_vm_\w+ is the least\))? must be an integer from \d+ to \d+/, JSON.stringify(bad));
    }
    const h = await Host.open({ sandbox: { mode: 'best-effort', memoryBytes: MIN_VM_MEMORY_BYTES, maxTasks: MIN_VM_TASKS, maxOpenFiles: MIN_VM_OPEN_FILES } });
    await h.close();
  });
});

describe('sandbox: a VM dies with its host', { skip: !linux && 'Linux only' }, () => {
  const variants = [
    ...(native ? [{ name: 'launcher + addon', root: ROOT, sandbox: 'required' }] : []),
    { name: 'no native parts', root: '', sandbox: 'best-effort' },
  ];
  let copy: { root: string; remove: () => void } | undefined;
  before(() => {
    copy = copyWithoutNative();
  });
  after(() => copy?.remove());

  for (const v of variants) {
    for (const mode of ['pool', 'oneshot'] as const) {
      test(`${v.name}, ${mode}: SIGKILL of the host mid-call (wasm loop) ends its VM processes`, async () => {
        const dir = tempDir();
        chmodSync(dir.path, 0o755);
        try {
          const { child, report } = await startHost(v.root || copy!.root, mode, v.sandbox, dir.path);
          const pids = report.vms.map((x) => x.pid);
          assert.ok(pids.every(alive), 'the VM runs before the host is killed');
          child.kill('SIGKILL');
          assert.deepEqual(await goneWithin(pids, 5000), [], 'VM processes still alive 5 s after the host was killed');
          // The dead host's VM cgroups are swept by the next host that probes cgroups (here: hostlink doctor).
          const cgroups = report.vms[0]!.cgroup.split('\n').filter((l) => l.includes(`/hostlink-${report.hostPid}-vm-`));
          if (cgroups.length > 0) {
            spawnSync(process.execPath, [join(v.root || copy!.root, 'bin', 'hostlink.js'), 'doctor'], { encoding: 'utf8' });
            const left = readFileSync('/proc/self/mountinfo', 'utf8').includes('cgroup') ? staleCgroups(report.hostPid) : [];
            assert.deepEqual(left, [], 'cgroups of the killed host were left behind');
          }
        } finally {
          dir.remove();
        }
      });
    }
  }

  for (const mode of ['pool', 'oneshot'] as const) {
    test(`no native parts, ${mode}: best-effort still keeps the host's LMDB descriptor out of the VM`, async () => {
      const dir = tempDir();
      chmodSync(dir.path, 0o755);
      try {
        const { child, report } = await startHost(copy!.root, mode, 'best-effort', dir.path, true);
        await new Promise((r) => child.once('exit', r));
        for (const vm of report.vms) assert.deepEqual(pathFds(vm), [], `pid ${vm.pid} holds ${pathFds(vm).join(', ')}`);
        assert.ok(report.layers.includes('seccomp:off'), 'the copy really has no native parts');
        if (dropsUid) for (const vm of report.vms) assert.doesNotMatch(vm.status.Uid!, /(^|\s)0(\s|$)/, 'VM runs as root');
      } finally {
        dir.remove();
      }
    });
  }

  test("no native parts: sandbox 'required' refuses to run a VM and names what is missing", () => {
    const script = `import('${join(copy!.root, 'dist', 'src', 'host', 'host.js')}').then(async ({ Host }) => {
      const h = await Host.open({ sandbox: 'required', mode: 'oneshot' });
      const code = await h.deploy(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]), { check: false });
      try { const o = await h.call({ codeHash: code, method: 'x', contextId: new Uint8Array(32) }); console.log(o.result.message); }
      catch (e) { console.log('threw ' + e.message); }
      await h.close();
    })`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.match(r.stdout, /^vm_crash .*could not start a VM process: sandbox 'required' but these layers cannot be installed here: .*seccomp \(the sandbox addon is not built .*build-native\.mjs/m, r.stdout + r.stderr);
    const doctor = spawnSync(process.execPath, [join(copy!.root, 'bin', 'hostlink.js'), 'doctor', '--sandbox', 'required'], { encoding: 'utf8' });
    assert.equal(doctor.status, 1);
    assert.match(doctor.stdout, /FAIL\s+sandbox seccomp/);
  });
});
