/**
 * The real `hostlink` on a full and on a read-only filesystem: the refusal says what happened and what to do,
 * and no attempt leaves a lock staging file behind. Runs on a small tmpfs (needs mount permission, so usually
 * root; skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { contractPath, tempDir } from '../helpers.js';
import { cliIn } from './run-cli.js';

const base = tempDir('hostlink-cli-diskfull-');
const mnt = join(base.path, 'mnt');
mkdirSync(mnt);
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], { encoding: 'utf8' });
const skip = mounted.status === 0 ? false : `cannot mount a tmpfs here (${(mounted.stderr || mounted.error?.message || 'mount failed').trim()})`;

describe('hostlink on a full or read-only filesystem', { skip }, () => {
  const { run } = cliIn(base.path);
  const data = join(mnt, 'data');
  const staging = (): string[] => readdirSync(data).filter((f) => f.startsWith('hostlink.lock'));
  after(() => {
    spawnSync('umount', [mnt]);
    base.remove();
  });

  test('a full disk: "no space left", free space; a read-only one: remount; no staging file left', () => {
    const deployed = run('deploy', contractPath('kv-store'), '--data-dir', data);
    assert.equal(deployed.code, 0, deployed.stderr);

    const filler = join(mnt, 'filler');
    const s = statfsSync(mnt);
    writeFileSync(filler, Buffer.alloc(s.bavail * s.bsize));
    for (const args of [['state', 'default'], ['contexts']]) {
      const r = run(...args, '--data-dir', data);
      assert.deepEqual(staging(), [], `${args[0]} left no lock file behind`);
      assert.deepEqual([r.code, r.stderr], [2, `hostlink: cannot lock data directory ${data}: no space left on its filesystem (ENOSPC): free some space there\n`], args[0]);
    }
    rmSync(filler);

    const ro = spawnSync('mount', ['-o', 'remount,ro', mnt], { encoding: 'utf8' });
    assert.equal(ro.status, 0, ro.stderr);
    try {
      const r = run('contexts', '--data-dir', data);
      assert.deepEqual(
        [r.code, r.stderr],
        [2, `hostlink: cannot lock data directory ${data}: its filesystem is read-only (EROFS): remount it read-write, or copy the directory to a writable place and use that --data-dir\n`],
      );
    } finally {
      assert.equal(spawnSync('mount', ['-o', 'remount,rw', mnt]).status, 0);
    }
    const codes = run('codes', '--data-dir', data);
    assert.equal(codes.code, 0, codes.stderr);
    assert.match(codes.stdout, new RegExp(`^${deployed.stdout.trim()} `), 'space is back: it runs');
    assert.deepEqual(staging(), []);
  });
});
