/**
 * A full disk ends the call that could not commit with a named `store` error and nothing of it written; the
 * host keeps serving reads and commits again once space returns (many calls at once: disk-full-many.test.ts). Runs on a small tmpfs (needs mount
 * permission, so usually root; skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { contract, id32, tempDir, text, utf8 } from '../helpers.js';

const base = tempDir('hostlink-diskfull-');
const mnt = join(base.path, 'mnt');
mkdirSync(mnt);
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], { encoding: 'utf8' });
const skip = mounted.status === 0 ? false : `cannot mount a tmpfs here (${(mounted.stderr || mounted.error?.message || 'mount failed').trim()})`;

describe('disk full', { skip }, () => {
  let host: Host;
  let kv: Uint8Array;
  const ctx = id32('disk');
  const other = id32('disk-bystander');
  const filler = join(mnt, 'filler');
  const set = (c: Uint8Array, key: string, value: string) => host.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key, value })), contextId: c });
  const get = (c: Uint8Array, key: string) => host.call({ codeHash: kv, method: 'get', input: utf8(JSON.stringify({ key })), contextId: c });

  before(async () => {
    host = await Host.open({ dataDir: join(mnt, 'data'), poolSize: 1 });
    kv = await host.deploy(contract('kv-store'));
    assert.equal((await set(ctx, 'a', '1')).result.code, 'return');
    assert.equal((await set(other, 'b', '2')).result.code, 'return');
  });
  after(async () => {
    await host?.close();
    spawnSync('umount', [mnt]);
    base.remove();
  });

  test('the call fails with a store error, nothing written; reads go on; it commits once space returns', async () => {
    // Leave less room than the next commit needs.
    const s = statfsSync(mnt);
    writeFileSync(filler, Buffer.alloc(Math.max(0, s.bavail * s.bsize - 64 * 1024)));
    const before = host.state(ctx);
    const big = 'x'.repeat(512 * 1024);
    const failed = await set(ctx, 'big', big);
    assert.equal(failed.result.code, 'internal_error');
    assert.match((failed.result as { message: string }).message, /^store LMDB commit failed: .* \(disk full or I\/O error: nothing of this write was kept\)$/);
    assert.equal(failed.applied, false);
    assert.deepEqual(host.state(ctx), before, 'nothing partly written');
    assert.equal(text((await get(other, 'b')).result.code === 'return' ? ((await get(other, 'b')).result as { value: Uint8Array }).value : new Uint8Array()), '"2"', 'reads keep working');
    rmSync(filler);
    const ok = await set(ctx, 'big', big);
    assert.equal(ok.result.code, 'return', JSON.stringify(ok.result));
    assert.equal(ok.applied, true);
    assert.equal(text(((await get(ctx, 'big')).result as { value: Uint8Array }).value), JSON.stringify(big));
  });
});

describe('no inodes left when a blob is stored', { skip }, () => {
  test("the call ends with a store error, nothing applied, instead of rejecting; it stores once inodes return", { timeout: 60_000 }, async () => {
    const own = tempDir('hostlink-inodes-');
    const small = join(own.path, 'mnt');
    mkdirSync(small);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,nr_inodes=200', 'tmpfs', small], { encoding: 'utf8' });
    assert.equal(m.status, 0, m.stderr);
    const host = await Host.open({ dataDir: join(small, 'data'), poolSize: 1 });
    try {
      const blobs = await host.deploy(contract('blob-store'));
      const ctx = id32('blob-inodes');
      const upload = (name: string) => host.call({ codeHash: blobs, method: 'upload', input: utf8(JSON.stringify({ name, data: `content of ${name}` })), contextId: ctx });
      assert.equal((await upload('warm')).result.code, 'return');
      // Every inode taken but one: the staging file gets it, the blob's own folder cannot be made.
      const fill = join(small, 'fill');
      mkdirSync(fill);
      let n = 0;
      try {
        for (;;) writeFileSync(join(fill, `f${n++}`), '');
      } catch {
        // no inode left
      }
      unlinkSync(join(fill, 'f0'));
      const before = host.state(ctx);
      const failed = await upload('fresh');
      assert.equal(failed.applied, false);
      assert.match(JSON.stringify(failed.result), /store storing blob [0-9a-f]{64} in .* failed: ENOSPC/);
      assert.deepEqual(host.state(ctx), before, 'nothing applied');
      rmSync(fill, { recursive: true });
      const again = await upload('again');
      assert.equal(again.applied, true, JSON.stringify(again.result));
    } finally {
      await host.close();
      spawnSync('umount', [small]);
      own.remove();
    }
  });
});
