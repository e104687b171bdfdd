/**
 * Blob contents are files beside the LMDB store, whose commit is fsynced: a blob's file must be durable before
 * its record, `hostlink verify` must find a record whose file is missing or damaged, and the same content uploaded
 * again must replace a damaged file. Real Host on LMDB, real VMs running examples/blob-store, real files, the
 * real CLI.
 *
 * A test cannot cut the power. What is checked instead: the system calls a blob upload makes, in order, under
 * strace (the staged file fsynced, renamed into place, its directory fsynced, all before LMDB syncs the commit
 * that records it); skipped where strace is missing or cannot trace. That the kernel and disk honour fsync is
 * not tested here (blob-powercut in the probes cut a loop device's image instead).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { contract, id32, ROOT, tempDir } from '../helpers.js';
import { callJson, fromHex, jsonOf } from './helpers.js';

const ctx = id32('blob-durability');
const contents = ['first blob ' + 'a'.repeat(70_000), 'second blob ' + 'b'.repeat(50_000), 'third blob ' + 'c'.repeat(30_000)];

async function upload(host: Host, codeHash: Uint8Array, data: string): Promise<{ blob_id: string; size: number }> {
  const o = await callJson(host, codeHash, 'upload', { name: `n${data.length}`, data }, { contextId: ctx });
  assert.equal(o.applied, true, JSON.stringify(o.result));
  return jsonOf(o) as { blob_id: string; size: number };
}

async function download(host: Host, codeHash: Uint8Array, blobId: string): Promise<{ size: number; data: string }> {
  return jsonOf(await callJson(host, codeHash, 'download', { blob_id: blobId }, { contextId: ctx })) as { size: number; data: string };
}

function verify(dir: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [HOSTLINK_BIN, 'verify', '--data-dir', dir], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('blob files and their records', () => {
  const tmp = tempDir('hostlink-blob-durability-');
  after(() => tmp.remove());

  /** A data directory with the three blobs uploaded, and the first missing, the second empty, the third changed. */
  async function damaged(name: string): Promise<{ dataDir: string; code: Uint8Array; ids: string[]; fileOf: (id: string) => string }> {
    const dataDir = join(tmp.path, name);
    const host = await Host.open({ dataDir, poolSize: 1 });
    const ids: string[] = [];
    let code: Uint8Array;
    try {
      code = await host.deploy(contract('blob-store'));
      for (const data of contents) ids.push((await upload(host, code, data)).blob_id);
    } finally {
      await host.close();
    }
    const fileOf = (id: string): string => join(dataDir, 'blobs', id.slice(0, 2), id);
    const sound = verify(dataDir);
    assert.equal(sound.status, 0, sound.stdout + sound.stderr);
    rmSync(fileOf(ids[0]!)); // what a power cut left of a file whose directory entry never reached the disk
    truncateSync(fileOf(ids[1]!), 0); // ...and of one whose data did not
    const changed = readFileSync(fileOf(ids[2]!));
    changed[100] ^= 1;
    writeFileSync(fileOf(ids[2]!), changed);
    return { dataDir, code, ids, fileOf };
  }

  test('verify names a missing, a truncated and a changed blob file, exit 1', async () => {
    const { dataDir, ids } = await damaged('verify');
    const r = verify(dataDir);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /, 3 blobs checked\n/);
    assert.match(r.stdout, new RegExp(`^blob ${ids[0]}: its record says ${contents[0]!.length} bytes, but its file .* is missing$`, 'm'));
    assert.match(r.stdout, new RegExp(`^blob ${ids[1]}: its record says ${contents[1]!.length} bytes, but its file .* has 0$`, 'm'));
    assert.match(r.stdout, new RegExp(`^blob ${ids[2]}: its file .* has the recorded ${contents[2]!.length} bytes, but they hash to [0-9a-f]{64}: the content is damaged$`, 'm'));
    assert.match(r.stderr, /replaced by the next call that writes the same content again/);
    assert.match(r.stderr, /3 problems in the store/);
  });

  test('the same content uploaded again replaces a missing, an empty and a changed file; verify then passes', async () => {
    const { dataDir, code, ids, fileOf } = await damaged('reupload');
    const host = await Host.open({ dataDir, poolSize: 1 });
    try {
      for (const [i, data] of contents.entries()) {
        const again = await upload(host, code, data);
        assert.equal(again.blob_id, ids[i]);
        assert.equal(statSync(fileOf(ids[i]!)).size, data.length, `blob ${i}'s file is whole again`);
        assert.equal(Buffer.from(host.node.blob(fromHex(ids[i]!))!).toString(), data);
        const read = await download(host, code, ids[i]!);
        assert.equal(read.size, data.length);
        assert.equal(read.data, data);
      }
    } finally {
      await host.close();
    }
    const r = verify(dataDir);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /, 3 blobs checked\n.*every blob file its record\n$/s);
  });
});

describe('blob durability, in the system calls an upload makes', () => {
  const tmp = tempDir('hostlink-blob-strace-');
  let trace: string | undefined;
  let blobId = '';
  let skip: string | false = false;
  after(() => tmp.remove());

  before(() => {
    const dataDir = join(tmp.path, 'data');
    const out = join(tmp.path, 'strace.out');
    // VMs as threads of the traced process: one process whose threads strace follows, the Host and its LMDB writer.
    const script = `
      import { Host } from ${JSON.stringify(join(ROOT, 'dist', 'src', 'host', 'host.js'))};
      import { readFileSync } from 'node:fs';
      const host = await Host.open({ dataDir: ${JSON.stringify(dataDir)}, launcher: 'thread', sandbox: 'off', poolSize: 1 });
      const code = await host.deploy(Uint8Array.from(readFileSync(${JSON.stringify(join(ROOT, 'examples', 'blob-store', 'build', 'blob-store.wasm'))})));
      process.stdout.write('UPLOAD\\n');
      const o = await host.call({ codeHash: code, method: 'upload', input: new TextEncoder().encode(JSON.stringify({ name: 'n', data: 'x'.repeat(100000) })), contextId: new Uint8Array(32).fill(3) });
      if (!o.applied) throw new Error(JSON.stringify(o.result));
      process.stdout.write('ID ' + JSON.parse(Buffer.from(o.result.value).toString()).blob_id + '\\n');
      await host.close();
    `;
    const r = spawnSync('strace', ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync,msync,rename,renameat,renameat2,write', '-e', 'signal=none', '-o', out, process.execPath, '--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, HOSTLINK_SANDBOX: 'off' },
    });
    if (r.error !== undefined) {
      skip = `strace cannot run here (${r.error.message})`;
      return;
    }
    if (r.status !== 0) {
      skip = /ptrace|Operation not permitted/.test(r.stderr) ? `strace cannot trace here: ${r.stderr.trim().split('\n')[0]}` : false;
      if (skip === false) assert.fail(`the traced upload failed: ${r.stderr}`);
      return;
    }
    blobId = /^ID ([0-9a-f]{64})$/m.exec(r.stdout)?.[1] ?? '';
    trace = readFileSync(out, 'utf8');
  });

  test('staged file fsynced, renamed into place, its directory fsynced, then LMDB syncs the record', (t) => {
    if (skip !== false) return t.skip(skip);
    assert.match(blobId, /^[0-9a-f]{64}$/);
    // strace -f splits a call that another thread interrupts into "<unfinished ...>" and "<... resumed>" lines:
    // each call is taken whole, with the line it began on and the line it ended on.
    const calls: { text: string; began: number; ended: number }[] = [];
    const open = new Map<string, { text: string; began: number }>();
    trace!.split('\n').forEach((line, i) => {
      const pid = line.split(' ')[0]!;
      if (line.endsWith('<unfinished ...>')) open.set(pid, { text: line, began: i });
      else if (line.includes(' resumed>')) {
        const first = open.get(pid);
        open.delete(pid);
        if (first !== undefined) calls.push({ text: first.text + line, began: first.began, ended: i });
      } else calls.push({ text: line, began: i, ended: i });
    });
    // From the marker the script writes before the upload: the deploy's commit before it is not the blob's.
    const marker = calls.find((c) => /write\(1<[^>]*>, "UPLOAD\\n"/.test(c.text));
    assert.ok(marker !== undefined, 'the upload marker is in the trace');
    const find = (what: string, re: RegExp): { began: number; ended: number } => {
      const c = calls.find((x) => x.began > marker.began && re.test(x.text) && / = 0$/.test(x.text));
      assert.ok(c !== undefined, `${what} is in the trace:\n${trace}`);
      return c;
    };
    const part = '/blobs/staging/[^/>]+/\\d+\\.part';
    const hh = blobId.slice(0, 2);
    const fileSync = find('the fsync of the staged file', new RegExp(`\\bf(data)?sync\\(\\d+<[^>]*${part}>`));
    const renamed = find('the rename into place', new RegExp(`rename(at2?)?\\(.*${part}.*/blobs/${hh}/${blobId}`));
    const dirSync = find('the fsync of the blob directory', new RegExp(`\\bfsync\\(\\d+</[^>]*/blobs/${hh}>\\)`));
    // LMDB's commit syncs data.mdb: the first sync of it after the upload began is the commit with the blob's record.
    const lmdbSync = find('the LMDB commit sync', /\b(fdatasync|fsync|msync)\(\d+<[^>]*\/data\.mdb>/);
    assert.ok(fileSync.ended < renamed.began, 'the staged file is synced before it is renamed into place');
    assert.ok(renamed.ended < dirSync.began, 'the directory is synced after the rename');
    assert.ok(dirSync.ended < lmdbSync.began, 'the blob is durable before the commit that records it is synced');
  });
});
