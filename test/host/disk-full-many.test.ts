/**
 * A full disk while many calls are committing (their writes grouped into shared commits): each failed call ends
 * with a named `store` error, the host lives on and commits again once space returns. lmdb's own promise for a
 * failed batch's commit, unobserved, used to end the process (6 of 6 runs). The scenario runs in a child process
 * (disk-full-lanes.ts) judged by how it ends. The child must also end on its own: calls whose failed batch lmdb
 * noticed late (their `commitError` is never settled) used to wait for that cause forever (about 1 run in 4).
 * Runs on a small tmpfs (needs mount permission, so usually root; skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { tempDir } from '../helpers.js';

const probe = tempDir('hostlink-diskfull-probe-');
const probeMnt = join(probe.path, 'mnt');
mkdirSync(probeMnt);
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probeMnt], { encoding: 'utf8' });
const skip = mounted.status === 0 ? false : `cannot mount a tmpfs here (${(mounted.stderr || mounted.error?.message || 'mount failed').trim()})`;
spawnSync('umount', [probeMnt]);
probe.remove();

const CHILD = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'disk-full-lanes.js');

describe('disk full with many calls committing', { skip }, () => {
  test('the host process lives on: failed calls get store errors, commits resume once space returns', { timeout: 120_000 }, () => {
    const own = tempDir('hostlink-diskfull-many-');
    const mnt = join(own.path, 'mnt');
    mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], { encoding: 'utf8' });
    assert.equal(m.status, 0, m.stderr);
    try {
      const r = spawnSync(process.execPath, [CHILD, mnt], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
      assert.doesNotMatch(r.stderr, /Commit failed \(see commitError/, 'no unhandled rejection of a failed commit');
      assert.equal(r.signal, null, `the child did not end (a call never settled): stdout ${JSON.stringify(r.stdout)}`);
      assert.equal(r.status, 0, r.stderr.slice(-2000));
      assert.match(r.stdout, /^failed [1-9]\d* unnamed 0\nafter 24 of 24\n$/);
    } finally {
      spawnSync('umount', [mnt]);
      own.remove();
    }
  });
});
