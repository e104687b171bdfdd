/**
 * The malicious local user: another account on the node's machine. Through the real parts (Host on LMDB, real
 * VM processes, files read by a process of another uid), it must not read the node's state, private storage
 * or blobs, nor hand the node a data directory it controls. Each test failed before its fix: data.mdb was
 * created 0644 in a 0755 directory (private storage readable by every user), and a directory another account
 * created first (or reached through its link) was used as is, so a root node wrote its store where that account
 * pointed it; the self-test's file probe wrote to /tmp/hostlink-probe-PID, so a root self-test wrote through
 * another user's link there, and a directory there made the probe report a block that never happened; a
 * dead node's lock counted as held while any process had its pid, so another account that forked until it got
 * that pid (1m44s here) kept the node from starting again.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isHostlinkError } from '../../src/errors.js';
import { Host } from '../../src/host/host.js';
import { sweepStaleSocketDirs } from '../../src/host/socket-dir.js';
import { LOCK_FILE } from '../../src/host/state/data-dir.js';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { contract, id32, tempDir, utf8 } from '../helpers.js';

const isRoot = process.getuid?.() === 0;
const NOT_ROOT = isRoot ? false : 'needs root to act as another local user (uid 4242)';
const STRANGER = 4242;

/** Reads a file as another user; answers 'read' or the error code. */
function readAs(uid: number, path: string): string {
  const js = `try{require('fs').readFileSync(${JSON.stringify(path)});console.log('read')}catch(e){console.log(e.code)}`;
  return spawnSync(process.execPath, ['-e', js], { uid, gid: uid, encoding: 'utf8' }).stdout.trim();
}

/** Every file and directory below `dir`, with its permission bits. */
function modes(dir: string): [string, number][] {
  const out: [string, number][] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const st = lstatSync(join(dir, name));
    out.push([name, st.mode & 0o777]);
  }
  return out;
}

const refused = (e: unknown, pattern: RegExp): boolean => isHostlinkError(e, 'usage') && pattern.test((e as Error).message);

describe('local user: the data directory is the node user\'s alone', () => {
  test('a dead node\'s lock is taken over even when another account\'s process now has its pid', { skip: NOT_ROOT }, async () => {
    const base = tempDir();
    const dataDir = join(base.path, 'data');
    // The end state of the attack: the pid written in the lock belongs to a process of uid 4242.
    const squatter = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { uid: STRANGER, gid: STRANGER, stdio: 'ignore' });
    try {
      const h = await Host.open({ dataDir, poolSize: 1 });
      await h.close();
      writeFileSync(join(dataDir, LOCK_FILE), `${squatter.pid} 0123456789abcdef\n`, { mode: 0o600 }); // as the dead node left it
      const again = await Host.open({ dataDir, poolSize: 1 });
      await again.close();
      // A live process of the lock owner's uid still holds it.
      writeFileSync(join(dataDir, LOCK_FILE), `${process.pid} 0123456789abcdef\n`, { mode: 0o600 });
      await assert.rejects(Host.open({ dataDir, poolSize: 1 }), (e) => isHostlinkError(e, 'usage') && /is in use by process/.test((e as Error).message));
    } finally {
      squatter.kill('SIGKILL');
      base.remove();
    }
  });

  test('a blobs or staging folder inside the data directory that another account owns or links is refused', { skip: NOT_ROOT }, async () => {
    // Left from when the directory was open to others: the data directory's own checks do not see inside it.
    const base = tempDir();
    try {
      const theirs = join(base.path, 'theirs');
      mkdirSync(theirs, { mode: 0o777 });
      chownSync(theirs, STRANGER, STRANGER);
      chmodSync(theirs, 0o777);
      const cases: [string, (dataDir: string) => void, RegExp][] = [
        ['blobs as their link', (d) => {
          symlinkSync(theirs, join(d, 'blobs'));
          lchownSync(join(d, 'blobs'), STRANGER, STRANGER);
        }, /blobs is a symbolic link of uid 4242/],
        ['blobs as their folder', (d) => {
          mkdirSync(join(d, 'blobs'), { mode: 0o777 });
          chownSync(join(d, 'blobs'), STRANGER, STRANGER);
        }, /blobs belongs to uid 4242/],
        ['blobs/staging as their link', (d) => {
          mkdirSync(join(d, 'blobs'), { mode: 0o700 });
          symlinkSync(theirs, join(d, 'blobs', 'staging'));
          lchownSync(join(d, 'blobs', 'staging'), STRANGER, STRANGER);
        }, /staging is a symbolic link of uid 4242/],
      ];
      for (const [name, plant, expected] of cases) {
        const dataDir = join(base.path, name.replace(/\W+/g, '-'));
        const first = await Host.open({ dataDir, poolSize: 1 });
        await first.close();
        rmSync(join(dataDir, 'blobs'), { recursive: true, force: true });
        plant(dataDir);
        await assert.rejects(Host.open({ dataDir, poolSize: 1 }), (e) => refused(e, expected), name);
        assert.deepEqual(readdirSync(theirs), [], `${name}: nothing was created in the other account's folder`);
      }
    } finally {
      base.remove();
    }
  });

  test('leftovers of a dead host are swept even when another account\'s process now has its pid', { skip: NOT_ROOT }, async () => {
    // Socket directories and blob staging directories are named after their host's pid, like the lock.
    const base = tempDir();
    const squatter = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { uid: STRANGER, gid: STRANGER, stdio: 'ignore' });
    try {
      const sockets = join(base.path, `hostlink-${squatter.pid}-AbC123`);
      mkdirSync(sockets, { mode: 0o711 });
      const mine = join(base.path, `hostlink-${process.pid}-XyZ789`);
      mkdirSync(mine, { mode: 0o711 });
      assert.equal(sweepStaleSocketDirs(base.path), 1);
      assert.equal(existsSync(sockets), false, 'the dead host\'s socket directory is gone');
      assert.equal(existsSync(mine), true, 'this process\'s own stays');

      const dataDir = join(base.path, 'data');
      const staging = join(dataDir, 'blobs', 'staging', `${squatter.pid}-0badf00d`);
      const h = await Host.open({ dataDir, poolSize: 1 });
      await h.close();
      mkdirSync(staging, { mode: 0o700 });
      const again = await Host.open({ dataDir, poolSize: 1 });
      await again.close();
      assert.equal(existsSync(staging), false, 'the dead host\'s blob staging directory is gone');
    } finally {
      squatter.kill('SIGKILL');
      base.remove();
    }
  });

  test('state, private storage and blobs are created readable by the node\'s user only, whatever the umask', async () => {
    const base = tempDir();
    const dataDir = join(base.path, 'data'); // created by the Host
    chmodSync(base.path, 0o755);
    const umask = process.umask(0o022); // the common default, which made data.mdb 0644
    let host: Host | undefined;
    try {
      host = await Host.open({ dataDir, poolSize: 1 });
      const code = await host.deploy(contract('host-calls'));
      const o = await host.call({ codeHash: code, method: 'private_write', input: utf8(JSON.stringify({ key: 'k', value: 'local-user-secret' })), contextId: id32('local-user') });
      assert.equal(o.result.code, 'return', JSON.stringify(o.result));
      assert.equal(statSync(dataDir).mode & 0o777, 0o700);
      const open = modes(dataDir).filter(([, m]) => (m & 0o077) !== 0);
      assert.deepEqual(open, [], 'files or directories others may read');
      if (isRoot) assert.equal(readAs(STRANGER, join(dataDir, 'data.mdb')), 'EACCES');
    } finally {
      process.umask(umask);
      await host?.close();
      base.remove();
    }
  });

  test('files an earlier version left open to others are closed when the directory is opened', async () => {
    const base = tempDir();
    const dataDir = join(base.path, 'data');
    try {
      let host = await Host.open({ dataDir, poolSize: 1 });
      await host.deploy(contract('host-calls'));
      await host.close();
      for (const f of ['data.mdb', 'lock.mdb']) chmodSync(join(dataDir, f), 0o644);
      chmodSync(join(dataDir, 'blobs'), 0o755);
      chmodSync(dataDir, 0o755); // an operator's directory: its own mode is left as it is
      host = await Host.open({ dataDir, poolSize: 1 });
      await host.close();
      for (const f of ['data.mdb', 'lock.mdb']) assert.equal(statSync(join(dataDir, f)).mode & 0o777, 0o600, f);
      assert.equal(statSync(join(dataDir, 'blobs')).mode & 0o777, 0o700);
      if (isRoot) assert.equal(readAs(STRANGER, join(dataDir, 'data.mdb')), 'EACCES');
    } finally {
      base.remove();
    }
  });

  test('a data directory another account created first is refused, and nothing is written in it', { skip: NOT_ROOT }, async () => {
    const base = tempDir();
    const dataDir = join(base.path, 'planted');
    try {
      mkdirSync(dataDir);
      chownSync(dataDir, STRANGER, STRANGER);
      await assert.rejects(Host.open({ dataDir, poolSize: 1 }), (e) => refused(e, /belongs to uid 4242/));
      assert.deepEqual(readdirSync(dataDir), []);
    } finally {
      base.remove();
    }
  });

  test('a data directory reached through another account\'s link is refused, and the link\'s target stays empty', { skip: NOT_ROOT }, async () => {
    const base = tempDir();
    const target = join(base.path, 'where-the-link-points');
    const link = join(base.path, 'data');
    try {
      mkdirSync(target, { mode: 0o700 });
      symlinkSync(target, link);
      lchownSync(link, STRANGER, STRANGER); // the link itself belongs to the other account
      await assert.rejects(Host.open({ dataDir: link, poolSize: 1 }), (e) => refused(e, /symbolic link .* of uid 4242/));
      await assert.rejects(Host.open({ dataDir: join(link, 'below'), poolSize: 1 }), (e) => refused(e, /symbolic link .* of uid 4242/));
      assert.deepEqual(readdirSync(target), []);
    } finally {
      base.remove();
    }
  });

  test('a data directory inside a directory of another account, or writable by others, is refused', { skip: NOT_ROOT }, async () => {
    const base = tempDir();
    try {
      const theirs = join(base.path, 'theirs');
      mkdirSync(theirs);
      chownSync(theirs, STRANGER, STRANGER); // they could rename the data directory away and put their own there
      await assert.rejects(Host.open({ dataDir: join(theirs, 'data'), poolSize: 1 }), (e) => refused(e, /inside .*theirs, which belongs to uid 4242/));
      const open = join(base.path, 'open');
      mkdirSync(open);
      chmodSync(open, 0o777);
      await assert.rejects(Host.open({ dataDir: open, poolSize: 1 }), (e) => refused(e, /is writable by others \(mode 0777/));
      await assert.rejects(Host.open({ dataDir: join(open, 'data'), poolSize: 1 }), (e) => refused(e, /which others may write to \(mode 0777.*without the sticky bit/));
    } finally {
      base.remove();
    }
  });
});

/** Runs one self-test probe unsandboxed (mode off) as pid 1 of a new pid namespace: its pid is known in advance. */
function probeAsPid1(name: string): { outcome?: string; detail?: string; raw: string } {
  const r = spawnSync('unshare', ['--pid', '--fork', '--kill-child', process.execPath, HOSTLINK_BIN, 'vm', '--sandbox-probe', name], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOSTLINK_SANDBOX: 'off', HOSTLINK_PROBE: '{}' },
    timeout: 60_000,
  });
  const raw = `${r.stdout}${r.stderr}`;
  try {
    return { ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as { outcome: string; detail: string }), raw };
  } catch {
    return { raw };
  }
}

const NO_UNSHARE = !isRoot ? 'needs root (a pid namespace and another user\'s files)' : spawnSync('unshare', ['--pid', '--fork', 'true']).status !== 0 ? 'unshare --pid is not available here' : false;

describe('local user: the sandbox self-test\'s file probe', { skip: NO_UNSHARE }, () => {
  const planted = '/tmp/hostlink-probe-1'; // where the probe of pid 1 used to write

  test('does not write through another user\'s link, and reports an unsandboxed create as allowed', () => {
    const base = tempDir();
    const victim = join(base.path, 'victim');
    try {
      writeFileSync(victim, 'root only', { mode: 0o600 });
      rmSync(planted, { recursive: true, force: true });
      symlinkSync(victim, planted);
      lchownSync(planted, STRANGER, STRANGER);
      const r = probeAsPid1('create_file');
      assert.equal(readFileSync(victim, 'utf8'), 'root only', 'the probe wrote through the planted link');
      assert.equal(r.outcome, 'allowed', r.raw);
    } finally {
      rmSync(planted, { recursive: true, force: true });
      base.remove();
    }
  });

  test('a directory another user put in its way does not turn into a block', () => {
    try {
      rmSync(planted, { recursive: true, force: true });
      mkdirSync(planted);
      chownSync(planted, STRANGER, STRANGER);
      const r = probeAsPid1('create_file');
      assert.equal(r.outcome, 'allowed', r.raw);
      assert.deepEqual(readdirSync('/tmp').filter((n) => n.startsWith('hostlink-probe-1-')), [], 'the probe left its file behind');
    } finally {
      rmSync(planted, { recursive: true, force: true });
    }
  });
});
