/**
 * The launcher's cgroup join after the fork (pid namespace): the relay moves the VM into its cgroups while the
 * VM starts Node, and the VM waits for the relay's word before it handles anything from the host. Through the
 * real launcher, real cgroups and the VM's own wait (awaitCgroupJoin, which enterSandbox runs before hello):
 *   - a VM is inside its cgroups when its wait returns, however long the join takes (a FIFO in place of the
 *     first cgroup.procs holds the relay until the test reads it, and shows which pid it was given);
 *   - a join that fails ends the launch with the cgroup named and the VM never past its wait;
 *   - a VM whose launcher sends no word stops with sandbox_unavailable before it says hello.
 * (test/sandbox/sandbox.test.ts checks every process of a VM a real host started is in its memory cgroup.)
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { cgroupSupport, createVmCgroup, type VmCgroup } from '../../src/host/sandbox/cgroup.js';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { launcherStatus, LAUNCHER_PATH } from '../../src/vm/sandbox-native.js';
import { ROOT } from '../helpers.js';

const linux = process.platform === 'linux';
const isRoot = process.getuid?.() === 0;
const SKIP = !linux ? 'Linux only' : launcherStatus().reason ?? (!isRoot ? 'needs root (cgroups and a pid namespace)' : !cgroupSupport().memory ? 'no memory cgroup here' : false);

const SANDBOX_JS = pathToFileURL(join(ROOT, 'dist', 'src', 'vm', 'sandbox.js')).href;
/** A stand-in VM: the real wait, then where it is (its cgroups), or the error and exit 5 as the VM does. */
const VM_SCRIPT = `import(${JSON.stringify(SANDBOX_JS)}).then((m) => { m.awaitCgroupJoin(); process.stdout.write(require('fs').readFileSync('/proc/self/cgroup', 'utf8')); }).catch((e) => { process.stderr.write(e.message + '\\n'); process.exit(5); })`;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function launch(cgroupArgs: string[], onStdout?: (child: ChildProcess) => void): { child: ChildProcess; done: Promise<Ran> } {
  const args = ['--parent', String(process.pid), '--unshare', 'pid,ipc,uts,mnt', ...cgroupArgs, '--', process.execPath, '-e', VM_SCRIPT];
  const child = spawn(LAUNCHER_PATH, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString();
    onStdout?.(child);
  });
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<Ran>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

/**
 * Everything written to `fifo` until `ended` settles. The relay opens a cgroup.procs once per write (the VM's
 * pid, then its own "0") and each open blocks until a reader comes, so one reader per open is kept waiting; once
 * the launcher has ended no writer comes again, and the last reader is let go (a write-side open without
 * blocking, then close, until it has ended) instead of being left to hang the test.
 */
async function readFifoUntil(fifo: string, ended: Promise<unknown>): Promise<string> {
  let over = false;
  void ended.then(() => (over = true));
  let written = '';
  while (!over) {
    // Opening for reading blocks the opener until the relay opens for writing: let a child do it.
    const cat = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
    cat.stdout.on('data', (c: Buffer) => (written += c.toString()));
    const catClosed = new Promise((r) => cat.once('close', r));
    await Promise.race([catClosed, ended]);
    if (over) {
      // The reader may not have reached its open yet: let it go once it has (what it read, if anything, is
      // delivered before its close).
      let gone = false;
      void catClosed.then(() => (gone = true));
      while (!gone) {
        try {
          closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
        } catch {
          // ENXIO: no reader has it open yet
        }
        await Promise.race([catClosed, new Promise((r) => setTimeout(r, 10))]);
      }
    }
  }
  return written;
}

describe('sandbox: the relay joins the cgroups, the VM waits for its word', { skip: SKIP }, () => {
  const made: VmCgroup[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-cgjoin-'));
  after(() => {
    for (const c of made) c.remove();
    rmSync(dir, { recursive: true, force: true });
  });
  const cgroup = (): VmCgroup => {
    const c = createVmCgroup({ memoryBytes: 1024 ** 3, maxTasks: 64 })!;
    made.push(c);
    return c;
  };

  test('the VM is in its cgroups when its wait returns, even when the join is slow', async () => {
    const cg = cgroup();
    const fifo = join(dir, 'slow-cgroup.procs');
    const mk = spawn('mkfifo', [fifo]);
    await new Promise((r) => mk.once('close', r));
    // The relay blocks opening the FIFO (the first --cgroup) until this test reads it. Read it once the VM has
    // printed (it did not wait: the test fails below) or after a while; a VM that waits prints only after.
    let release: () => void = () => {};
    const released = new Promise<void>((r) => (release = r));
    const { child, done } = launch(['--cgroup', fifo, ...cg.procsFiles.flatMap((f) => ['--cgroup', f])], () => release());
    const timer = setTimeout(release, 1500);
    await released;
    clearTimeout(timer);
    // The VM: the launcher's (the relay's) child, as the host sees it; forked before the relay joins anything.
    const vmPid = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim());
    const written = await readFifoUntil(fifo, done);
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    // The relay was given the VM's pid as the host sees it, then its own ("0": the writing process).
    assert.ok(vmPid > 0 && vmPid !== child.pid, `the launcher's child: ${vmPid}`);
    assert.equal(written, `${vmPid}0`);
    const memoryDir = cg.procsFiles.find((f) => f.includes('/memory/'))!.replace(/\/cgroup\.procs$/, '');
    const name = memoryDir.split('/').pop()!;
    assert.match(r.stdout, new RegExp(`memory:.*/${name}\\n`), `the VM ran outside its memory cgroup: ${r.stdout}`);
    assert.match(r.stdout, new RegExp(`pids:.*/${name}\\n`), `the VM ran outside its pids cgroup: ${r.stdout}`);
  });

  test('a join that fails ends the launch with the cgroup named; the VM never gets past its wait', async () => {
    const cg = cgroup();
    const gone = join(dir, 'no-such-cgroup', 'cgroup.procs');
    const { done } = launch([...cg.procsFiles.flatMap((f) => ['--cgroup', f]), '--cgroup', gone]);
    const r = await done;
    assert.equal(r.code, 121, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`hostlink-launch: joining the VM's cgroup ${gone.replace(/[/.]/g, '\\$&')}: No such file or directory`));
    assert.equal(r.stdout, '', 'the VM went on after a failed join');
  });

  test('a program that ends before the relay joined it (it never reads the word) still reports its own status', async () => {
    // A FIFO as the first --cgroup holds the relay until the program has ended: the relay then finds it gone
    // (ESRCH, or nothing left to move) and its word unread (EPIPE): neither is a failed launch.
    const cg = cgroup();
    const fifo = join(dir, 'late-cgroup.procs');
    const mk = spawn('mkfifo', [fifo]);
    await new Promise((r) => mk.once('close', r));
    const args = ['--parent', String(process.pid), '--unshare', 'pid', '--cgroup', fifo, ...cg.procsFiles.flatMap((f) => ['--cgroup', f]), '--', '/bin/sh', '-c', 'exit 7'];
    const child = spawn(LAUNCHER_PATH, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const closed = new Promise<[number | null, string | null]>((r) => child.once('close', (c, s) => r([c, s])));
    // The program: the relay's child. Wait until it has ended (a zombie the relay, held by the FIFO, has not
    // reaped): a poll bound, not a timing claim.
    const zombie = (pid: number): boolean => /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    let vmPid = 0;
    for (let i = 0; i < 500 && !(vmPid > 0 && zombie(vmPid)); i++) {
      await new Promise((r) => setTimeout(r, 10));
      vmPid = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim()) || 0;
    }
    assert.ok(vmPid > 0 && zombie(vmPid), 'the program did not end');
    // Now let the relay through the FIFO (it opens it once per write) until it ends.
    const written = await readFifoUntil(fifo, closed);
    assert.equal(written, `${vmPid}0`, 'the relay writes the program\'s pid, then its own ("0")');
    assert.deepEqual(await closed, [7, null], stderr);
  });

  test('hostlink vm without its word (end-of-file) stops with sandbox_unavailable before it says hello', async () => {
    const sock = join(dir, 'host.sock');
    let received = 0;
    let gotBytes: () => void = () => {};
    const bytes = new Promise<void>((r) => (gotBytes = r));
    const server = createServer((s) => {
      s.on('data', (c: Buffer) => {
        received += c.length;
        gotBytes();
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      // Descriptor 3: a pipe whose writer is closed with nothing written, as the relay leaves it when a join fails.
      const child = spawn(process.execPath, [HOSTLINK_BIN, 'vm', '--host', `unix://${sock}`], {
        stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
        env: { PATH: '/usr/bin:/bin', HOSTLINK_SANDBOX: 'best-effort', HOSTLINK_CGROUP_READY_FD: '3' },
      });
      (child.stdio[3] as NodeJS.WritableStream).end(); // end-of-file, no "y"
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((r) => child.once('close', r));
      // Whichever comes first: the VM's exit, or a byte from it (hello) which it must not send.
      const first = await Promise.race([exited, bytes.then(() => 'sent' as const)]);
      if (first === 'sent') child.kill('SIGKILL');
      assert.equal(received, 0, `the VM sent ${received} bytes (hello) without its word`);
      assert.equal(first, 5, stderr);
      assert.match(stderr, /the launcher could not move this VM into its cgroups/);
    } finally {
      server.close();
    }
  });
});
