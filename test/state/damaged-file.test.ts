/**
 * A data directory whose data.mdb is not LMDB's, or is shorter than its own meta pages say: lmdb's native open
 * crashed the whole process (SIGSEGV, SIGBUS) with no message. Now every entry point refuses it with one named
 * store error and leaves the file as it was. Through the real CLI (its own process, so the old crash shows as a
 * signal instead of killing this test) and through the store on real files.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isHostlinkError } from '../../src/errors.js';
import { dataFileDamage, openLmdbStore } from '../../src/host/state/lmdb-store.js';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { tempDir } from '../helpers.js';

describe('a damaged or foreign data.mdb is refused, not a crash', () => {
  const dir = tempDir('hostlink-damaged-');
  let good: Buffer;
  before(async () => {
    const store = await openLmdbStore(join(dir.path, 'good'));
    await store.write((t) => {
      for (let i = 0; i < 2000; i++) t.put('state', Buffer.from(`key-${i}`), Buffer.alloc(100, i % 251));
    });
    await store.close();
    good = readFileSync(join(dir.path, 'good', 'data.mdb'));
  });
  after(() => dir.remove());

  const versioned = (): Buffer => {
    const b = Buffer.from(good);
    b.writeUInt32LE(1, 28);
    return b;
  };
  const cases: [string, () => Buffer, RegExp][] = [
    ['a text file', () => Buffer.from('hello\n'), /its data\.mdb is not an LMDB data file\./],
    ['8 KiB of random bytes', () => randomBytes(8192), /its data\.mdb is not an LMDB data file\./],
    ['a real store cut to 20,000 bytes', () => good.subarray(0, 20_000), /its data\.mdb is truncated: its root pages reach byte \d+ and the file has 20000\./],
    ['a real store cut to its first page', () => good.subarray(0, 4096), /its data\.mdb has a damaged second meta page\./],
    ['another LMDB format version', versioned, /its data\.mdb has LMDB format version 1, not 2, the one this build reads\./],
  ];

  for (const [name, bytes, expected] of cases) {
    test(`${name}: the CLI prints one line and exits 1; the file is untouched`, () => {
      const d = join(dir.path, name.replace(/\W+/g, '-'));
      mkdirSync(d, { recursive: true });
      const content = bytes();
      writeFileSync(join(d, 'data.mdb'), content);
      const r = spawnSync(process.execPath, [HOSTLINK_BIN, 'state', 'default', '--data-dir', d], { encoding: 'utf8' });
      assert.equal(r.signal, null, `the CLI died of ${r.signal}`);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, expected);
      assert.match(r.stderr, /^hostlink: the store in .* cannot be opened: .* Nothing was changed: restore the directory from a backup, or move it away to start an empty store\n$/);
      assert.deepEqual(readFileSync(join(d, 'data.mdb')), Buffer.from(content), 'data.mdb unchanged');
      // The store refuses it the same way in process.
      assert.match(dataFileDamage(join(d, 'data.mdb')) ?? '', /./);
    });
  }

  test('a sound store whose file ends before its last allocated page is opened, read and written', async () => {
    // LMDB counts pages it allocated and freed again in a transaction without writing them: the meta's last page
    // may lie past the end of a sound file (seen after one ordinary put). Such a store was refused as truncated.
    const d = join(dir.path, 'short-tail');
    mkdirSync(d, { recursive: true });
    const b = Buffer.from(good);
    for (const at of [0, b.readUInt32LE(48)]) b.writeBigUInt64LE(b.readBigUInt64LE(at + 144) + 3n, at + 144);
    writeFileSync(join(d, 'data.mdb'), b);
    assert.equal(dataFileDamage(join(d, 'data.mdb')), undefined);
    const store = await openLmdbStore(d);
    try {
      assert.equal(Buffer.from(store.get('state', Buffer.from('key-7'))!).toString('hex'), Buffer.alloc(100, 7).toString('hex'));
      await store.write((t) => t.put('state', Buffer.from('after'), Buffer.from('yes')));
      assert.equal(Buffer.from(store.get('state', Buffer.from('after'))!).toString(), 'yes');
    } finally {
      await store.close();
    }
  });

  test('a sound store, an empty file and a missing file are opened', async () => {
    assert.equal(dataFileDamage(join(dir.path, 'good', 'data.mdb')), undefined);
    const empty = join(dir.path, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'data.mdb'), '');
    for (const d of [join(dir.path, 'good'), empty, join(dir.path, 'missing')]) {
      const store = await openLmdbStore(d);
      await store.close();
    }
    await assert.rejects(openLmdbStore(join(dir.path, 'a-text-file')), (e: unknown) => isHostlinkError(e, 'store'));
  });
});
