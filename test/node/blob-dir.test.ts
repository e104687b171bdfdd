/**
 * Where a Host keeps blob contents when it is given a store: a persistent store (LMDB) with contents in memory
 * lost them at close while their records stayed (after a reopen every blob read as empty), so it needs a
 * directory (HostOptions.blobDir, or dataDir). Real Host on LMDB, real VMs running examples/blob-store.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isHostlinkError } from '../../src/errors.js';
import { Host } from '../../src/host/host.js';
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import { createMemoryStore } from '../../src/host/state/memory-store.js';
import { contract, id32, tempDir } from '../helpers.js';
import { callJson, fromHex, jsonOf } from './helpers.js';

const ctx = id32('blob-dir');
const contents = ['a blob ' + 'a'.repeat(70_000)];

async function upload(host: Host, codeHash: Uint8Array, data: string): Promise<{ blob_id: string; size: number }> {
  const o = await callJson(host, codeHash, 'upload', { name: 'n', data }, { contextId: ctx });
  assert.equal(o.applied, true, JSON.stringify(o.result));
  return jsonOf(o) as { blob_id: string; size: number };
}

async function download(host: Host, codeHash: Uint8Array, blobId: string): Promise<{ size: number; data: string }> {
  return jsonOf(await callJson(host, codeHash, 'download', { blob_id: blobId }, { contextId: ctx })) as { size: number; data: string };
}

describe('blob contents of a Host given a store', () => {
  const tmp = tempDir('hostlink-blob-dir-');
  after(() => tmp.remove());

  test('Host.open({ store }) with a persistent store: refused without blobDir; with it, contents outlive the host', async () => {
    const dir = join(tmp.path, 'given-store');
    let store = await openLmdbStore(dir);
    try {
      await assert.rejects(
        Host.open({ store, poolSize: 1 }),
        (e: unknown) => isHostlinkError(e, 'usage') && /keeps its tables on disk, but blob contents would be kept in memory .*pass blobDir/.test((e as Error).message),
      );
      let host = await Host.open({ store, blobDir: join(dir, 'blobs'), poolSize: 1 });
      let code: Uint8Array;
      let id: string;
      try {
        code = await host.deploy(contract('blob-store'));
        id = (await upload(host, code, contents[0]!)).blob_id;
      } finally {
        await host.close();
      }
      await store.close();
      store = await openLmdbStore(dir);
      host = await Host.open({ store, blobDir: join(dir, 'blobs'), poolSize: 1 });
      try {
        assert.equal(host.node.blobSizeOf(fromHex(id)), BigInt(contents[0]!.length));
        assert.equal((await download(host, code, id)).data, contents[0]);
      } finally {
        await host.close();
      }
    } finally {
      await store.close();
    }
    // A memory store, or none, still keeps blobs in memory (tests and embedding without a directory).
    const host = await Host.open({ store: createMemoryStore(), poolSize: 1 });
    try {
      const code = await host.deploy(contract('blob-store'));
      const { blob_id } = await upload(host, code, 'in memory');
      assert.equal((await download(host, code, blob_id)).data, 'in memory');
    } finally {
      await host.close();
    }
  });
});
