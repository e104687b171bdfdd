/**
 * Blobs through real VM processes: streamed to the host in frames, stored under the data dir, ids as the
 * reference defines them, descriptors from 1 up to max_blob_handles, staged until the call succeeds.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { contract, id32 } from '../helpers.js';
import { callJson, hex, jsonOf, openHost, type TestHost } from './helpers.js';
import { assertVmError, call, Probe, returned, returnedU64 } from './probe.js';

const MiB = 1024 * 1024;
/** The reference's id, computed independently: SHA-256 over the SHA-256 of each 1 MiB chunk. */
function referenceId(content: Uint8Array): string {
  const outer = createHash('sha256');
  for (let at = 0; at < content.length; at += MiB) outer.update(createHash('sha256').update(content.subarray(at, at + MiB)).digest());
  return outer.digest('hex');
}
const pattern = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 10)) & 0xff);

describe('blobs', () => {
  let t: TestHost;
  let host: Host;
  let store: Uint8Array;
  let probe: Uint8Array;
  const ctx = id32('blobs-ctx');
  const big = pattern(3 * MiB + 12345);
  const run = (method: string, input: unknown) => callJson(host, store, method, input, { contextId: ctx });
  // Megabytes streamed both ways and returned: more than the default gas limit pays for (round trips and what
  // is handed to the host are priced per byte).
  const BLOB_GAS = 10n ** 10n;
  const runProbe = (method: string, limits?: Record<string, number>) =>
    host.call({ codeHash: probe, method, contextId: ctx, gasLimit: BLOB_GAS, ...(limits ? { limits } : {}) });
  const stagedFiles = (): string[] => {
    const root = join(t.dataDir, 'blobs', 'staging');
    return readdirSync(root).flatMap((d) => readdirSync(join(root, d)));
  };

  before(async () => {
    t = await openHost();
    host = t.host;
    store = await host.deploy(contract('blob-store'));
    const p = new Probe(big.length + 64 * 1024);
    const bigData = p.buf(big);
    const small = p.buf('hello');
    const five = p.buf('12345');
    const id = p.out(32);
    const shortId = p.out(31);
    const oob = p.desc(1 << 30, 4);
    const readBuf = p.out(big.length);
    const known = p.buf(Uint8Array.from(Buffer.from(referenceId(new TextEncoder().encode('hello')), 'hex')));
    const missing = p.buf(id32('no such blob'));
    const ctxId = p.buf(ctx);
    // $fd: local for descriptors; results via ret_i64 / ret_mem.
    p.method('fds', `(local $a i64) (local $b i64)
      (local.set $a ${call('blob_create')}) (local.set $b ${call('blob_create')})
      (call $ret_i64 (i64.or (local.get $a) (i64.shl (local.get $b) (i64.const 32))))`);
    p.method('write_big_then_read', `(local $fd i64)
      (local.set $fd ${call('blob_create')})
      (drop ${call('blob_write', '(local.get $fd)', bigData)})
      (drop ${call('blob_close', '(local.get $fd)', id.desc)})
      (local.set $fd ${call('blob_open', id.desc)})
      (drop ${call('blob_read', '(local.get $fd)', readBuf.desc)})
      (call $ret_mem (i64.const ${readBuf.at}) (i64.const ${big.length}))`);
    p.method('write_big_return_id', `(local $fd i64)
      (local.set $fd ${call('blob_create')})
      (drop ${call('blob_write', '(local.get $fd)', bigData)})
      (drop ${call('blob_close', '(local.get $fd)', id.desc)})
      (call $ret_mem (i64.const ${id.at}) (i64.const 32))`);
    p.method('write_then_trap', `(local $fd i64)
      (local.set $fd ${call('blob_create')})
      (drop ${call('blob_write', '(local.get $fd)', small)})
      (drop ${call('blob_close', '(local.get $fd)', id.desc)})
      unreachable`);
    p.method('write_unclosed', `(drop ${call('blob_write', call('blob_create'), small)})`);
    p.method('read_missing', `(call $ret_i64 ${call('blob_read', call('blob_open', missing), readBuf.desc)})`);
    p.method('announce_missing', `(call $ret_i64 (i64.extend_i32_u ${call('blob_announce_to_context', missing, ctxId)}))`);
    p.method('announce_then_trap', `(drop ${call('blob_announce_to_context', known, ctxId)}) unreachable`);
    p.method('three_handles', `(drop ${call('blob_create')}) (drop ${call('blob_open', known)}) (drop ${call('blob_create')})`);
    p.method('reuse_after_close', `(local $fd i64)
      (drop ${call('blob_create')}) (local.set $fd ${call('blob_open', known)})
      (drop ${call('blob_close', '(local.get $fd)', id.desc)})
      (call $ret_i64 ${call('blob_create')})`);
    p.method('chunk_too_large', `(drop ${call('blob_write', call('blob_create'), five)})`);
    p.method('write_unknown_fd', `(drop ${call('blob_write', 99, small)})`);
    p.method('read_fd_zero', `(drop ${call('blob_read', 0, readBuf.desc)})`);
    p.method('read_write_handle', `(drop ${call('blob_read', call('blob_create'), readBuf.desc)})`);
    p.method('write_read_handle', `(drop ${call('blob_write', call('blob_open', known), small)})`);
    p.method('write_after_close', `(local $fd i64)
      (local.set $fd ${call('blob_create')})
      (drop ${call('blob_close', '(local.get $fd)', id.desc)})
      (drop ${call('blob_write', '(local.get $fd)', small)})`);
    p.method('close_unknown', `(drop ${call('blob_close', 5, id.desc)})`);
    p.method('close_short_id', `(drop ${call('blob_close', call('blob_create'), shortId.desc)})`);
    p.method('write_oob', `(drop ${call('blob_write', call('blob_create'), oob)})`);
    p.method('open_oob', `(drop ${call('blob_open', oob)})`);
    p.method('open_short', `(drop ${call('blob_open', shortId.desc)})`);
    p.method('read_oob', `(drop ${call('blob_read', call('blob_open', known), oob)})`);
    p.method('announce_oob', `(drop ${call('blob_announce_to_context', known, oob)})`);
    p.method('close_oob', `(drop ${call('blob_close', call('blob_create'), oob)})`);
    p.method('open_over_limit', `(drop ${call('blob_create')}) (drop ${call('blob_create')}) (drop ${call('blob_open', known)})`);
    probe = await host.deploy(await p.build());
  });
  after(() => t.close());

  test('upload and download through the blob-store example; the id is the reference id', async () => {
    const up = jsonOf(await run('upload', { name: 'a.txt', data: 'hello' })) as { blob_id: string; size: number };
    assert.equal(up.blob_id, referenceId(new TextEncoder().encode('hello')));
    assert.equal(up.size, 5);
    assert.equal(Buffer.from(host.node.blob(Buffer.from(up.blob_id, 'hex'))!).toString(), 'hello');
    assert.deepEqual(jsonOf(await run('download', { blob_id: up.blob_id, chunk_size: 2 })), { blob_id: up.blob_id, size: 5, data: 'hello' });
    const empty = jsonOf(await run('upload', { name: 'empty', data: '' })) as { blob_id: string };
    assert.equal(empty.blob_id, createHash('sha256').digest('hex'), 'the empty blob is SHA-256 of nothing');
    assert.deepEqual(jsonOf(await run('info', { blob_id: up.blob_id })), { blob_id: up.blob_id, name: 'a.txt', size: 5 });
    assert.equal(jsonOf(await run('info', { blob_id: hex(id32('unknown')) })), null);
    assert.deepEqual(jsonOf(await run('list', {})), [
      { blob_id: up.blob_id, name: 'a.txt', size: 5 },
      { blob_id: empty.blob_id, name: 'empty', size: 0 },
    ]);
  });

  test('a disk that fills while a blob is staged: a store error (not the VM\'s fault), nothing kept, uploads work again', async () => {
    // Each upload stages into the next `<n>.part` of this host's staging directory: point the next ones at
    // /dev/full, where every write fails with ENOSPC as on a full disk. It used to be reported as the VM
    // breaking the protocol.
    const staging = join(t.dataDir, 'blobs', 'staging');
    const mine = join(staging, readdirSync(staging).find((d) => d.startsWith(`${process.pid}-`))!);
    const full = Array.from({ length: 64 }, (_, i) => join(mine, `${i}.part`)).filter((f) => !existsSync(f));
    for (const f of full) symlinkSync('/dev/full', f);
    const before = host.state(ctx);
    try {
      const o = await run('upload', { name: 'full.txt', data: 'x'.repeat(4096) });
      assert.equal(o.result.code, 'internal_error', JSON.stringify(o.result));
      assert.match((o.result as { message: string }).message, /^store staging a blob in .* failed: ENOSPC/);
      assert.equal(o.applied, false);
      assert.deepEqual(host.state(ctx), before, 'nothing applied');
    } finally {
      for (const f of full) rmSync(f, { force: true });
    }
    const again = jsonOf(await run('upload', { name: 'after.txt', data: 'space again' })) as { size: number };
    assert.equal(again.size, 11);
  });

  test('a blob over several 1 MiB chunks and frames: streamed both ways, read back in the same call', async () => {
    assert.deepEqual(Buffer.from(returned(await runProbe('write_big_then_read'))), Buffer.from(big));
    const id = returned(await runProbe('write_big_return_id'));
    assert.equal(hex(id), referenceId(big));
    assert.equal(host.node.blobSizeOf(id), BigInt(big.length));
    assert.deepEqual(Buffer.from(host.node.blob(id)!), Buffer.from(big));
    // Through the SDK's BlobWriter/BlobReader: text over two 1 MiB chunks, written and read in uneven pieces.
    const textBlob = Array.from({ length: MiB + 300_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    const gasLimit = 1n << 40n;
    const up = jsonOf(await callJson(host, store, 'upload', { name: 't', data: textBlob, chunk_size: 300_000 }, { contextId: ctx, gasLimit })) as { blob_id: string; chunks: number };
    assert.equal(up.blob_id, referenceId(new TextEncoder().encode(textBlob)));
    assert.equal(up.chunks, 5);
    const down = jsonOf(await callJson(host, store, 'download', { blob_id: up.blob_id, chunk_size: 700_000 }, { contextId: ctx, gasLimit })) as { data: string };
    assert.equal(down.data, textBlob);
    // One SDK write larger than max_blob_chunk_size: the SDK hands it over in pieces.
    const whole = { name: 't', data: textBlob, chunk_size: 2_000_000 };
    const once = await callJson(host, store, 'upload', whole, { contextId: ctx, gasLimit, limits: { maxBlobChunkSize: MiB } });
    assert.equal((jsonOf(once) as { blob_id: string }).blob_id, up.blob_id);
  });

  test('blobs written by a failed call, or never closed, are not stored and leave no files', async () => {
    const before = host.node.blobSizeOf(Buffer.from(referenceId(new TextEncoder().encode('hello')), 'hex'));
    const o = await runProbe('write_then_trap');
    assert.equal(o.result.code, 'vm_error');
    assert.equal(host.node.blobSizeOf(Buffer.from(referenceId(new TextEncoder().encode('hello')), 'hex')), before);
    assert.equal((await runProbe('write_unclosed')).result.code, 'return');
    assert.deepEqual(stagedFiles(), []);
  });

  test('a missing blob opens, reads as empty and is not announced', async () => {
    assert.equal(returnedU64(await runProbe('read_missing')), 0n);
    assert.equal(returnedU64(await runProbe('announce_missing')), 0n);
    assert.equal(jsonOf(await run('announce', { blob_id: hex(id32('no such blob')) })), false);
  });

  test('announcements are recorded after success only', async () => {
    const id = referenceId(new TextEncoder().encode('hello'));
    assert.equal((await runProbe('announce_then_trap')).result.code, 'vm_error');
    assert.deepEqual(host.node.announcedBlobs(ctx).map(hex), []);
    assert.equal(jsonOf(await run('announce', { blob_id: id })), true);
    assert.deepEqual(host.node.announcedBlobs(ctx).map(hex), [id]);
  });

  test('descriptors are numbered from 1; at most max_blob_handles are open', async () => {
    assert.equal(returnedU64(await runProbe('fds')), 1n | (2n << 32n));
    assertVmError(await runProbe('three_handles', { maxBlobHandles: 2 }), 'TooManyBlobHandles', 'blob_create');
    assertVmError(await runProbe('open_over_limit', { maxBlobHandles: 2 }), 'TooManyBlobHandles', 'blob_open');
    assert.equal(returnedU64(await runProbe('reuse_after_close', { maxBlobHandles: 2 })), 3n, 'closing frees room; numbers are not reused');
  });

  test('max_blob_chunk_size bounds one blob_write', async () => {
    assertVmError(await runProbe('chunk_too_large', { maxBlobChunkSize: 4 }), 'BlobWriteTooLarge', 'blob_write');
    assert.equal((await runProbe('chunk_too_large', { maxBlobChunkSize: 5 })).result.code, 'return');
  });

  test('descriptors that are not open, or open the other way, trap InvalidBlobHandle', async () => {
    assertVmError(await runProbe('write_unknown_fd'), 'InvalidBlobHandle', 'blob_write');
    assertVmError(await runProbe('read_fd_zero'), 'InvalidBlobHandle', 'blob_read');
    assertVmError(await runProbe('read_write_handle'), 'InvalidBlobHandle', 'blob_read');
    assertVmError(await runProbe('write_read_handle'), 'InvalidBlobHandle', 'blob_write');
    assertVmError(await runProbe('write_after_close'), 'InvalidBlobHandle', 'blob_write');
    assertVmError(await runProbe('close_unknown'), 'InvalidBlobHandle', 'blob_close');
  });

  test('out-of-bounds buffers and ids of the wrong size trap InvalidMemoryAccess', async () => {
    assertVmError(await runProbe('close_short_id'), 'InvalidMemoryAccess', 'blob_close');
    assertVmError(await runProbe('write_oob'), 'InvalidMemoryAccess', 'blob_write');
    assertVmError(await runProbe('open_oob'), 'InvalidMemoryAccess', 'blob_open');
    assertVmError(await runProbe('open_short'), 'InvalidMemoryAccess', 'blob_open');
    assertVmError(await runProbe('read_oob'), 'InvalidMemoryAccess', 'blob_read');
    assertVmError(await runProbe('announce_oob'), 'InvalidMemoryAccess', 'blob_announce_to_context');
    assertVmError(await runProbe('close_oob'), 'InvalidMemoryAccess', 'blob_close');
  });

  test('stored blobs survive a restart; a host without a data dir keeps blobs in memory', async () => {
    const id = Buffer.from(referenceId(big), 'hex');
    await host.close();
    host = t.host = await Host.open({ dataDir: t.dataDir, poolSize: 1 });
    assert.equal(host.node.blobSizeOf(id), BigInt(big.length));
    const memory = await Host.open({ poolSize: 1 });
    try {
      const code = await memory.deploy(contract('blob-store'));
      const up = jsonOf(await callJson(memory, code, 'upload', { name: 'm', data: 'in memory' }, { contextId: ctx })) as { blob_id: string };
      const down = jsonOf(await callJson(memory, code, 'download', { blob_id: up.blob_id }, { contextId: ctx }));
      assert.deepEqual(down, { blob_id: up.blob_id, size: 9, data: 'in memory' });
    } finally {
      await memory.close();
    }
  });
});
