/**
 * A call sees the blobs stored as of its view of node tables, as it sees members and aliases: a blob another
 * call commits while it runs is absent at every read of the call, never absent and then present. Real VM
 * processes, two calls at once on two contexts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { id32 } from '../helpers.js';
import { openHost } from './helpers.js';
import { call, Probe } from './probe.js';

const sha256 = (b: Uint8Array): Uint8Array => Uint8Array.from(createHash('sha256').update(b).digest());

test('blob reads and announcements in one call agree, whatever another call commits meanwhile', { timeout: 120_000 }, async () => {
  const t = await openHost({ poolSize: 3 });
  try {
    const content = new TextEncoder().encode(`a blob committed while another call runs ${process.pid}`);
    const blobId = sha256(sha256(content)); // one chunk: the id is the SHA-256 of the chunk's SHA-256
    const p = new Probe();
    const data = p.buf(content);
    const idOut = p.out(32);
    const bid = p.buf(blobId);
    const other = p.buf(id32('blob-view-other'));
    const buf = p.out(128);
    const res = p.out(32);
    p.method('writer', `(local $fd i64)
      (local.set $fd ${call('blob_create')})
      (drop (call $blob_write (local.get $fd) (i64.const ${data})))
      (drop (call $blob_close (local.get $fd) (i64.const ${idOut.desc})))
      ${call('ret_i64', 1)}`);
    // Reads and announces the blob, counts long enough for the writer to commit, then reads and announces again.
    p.method('reader', `(local $i i32)
      (i64.store (i32.const ${res.at}) (call $blob_read ${call('blob_open', bid)} (i64.const ${buf.desc})))
      (i64.store (i32.const ${res.at + 8}) (i64.extend_i32_u ${call('blob_announce_to_context', bid, other)}))
      (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 400000000))))
      (i64.store (i32.const ${res.at + 16}) (call $blob_read ${call('blob_open', bid)} (i64.const ${buf.desc})))
      (i64.store (i32.const ${res.at + 24}) (i64.extend_i32_u ${call('blob_announce_to_context', bid, other)}))
      ${call('ret_mem', res.at, 32)}`);
    const code = await t.host.deploy(await p.build());
    let readerStarted!: () => void;
    const started = new Promise<void>((resolve) => (readerStarted = resolve));
    t.host.events.on('call.started', (e) => {
      if (e.method === 'reader') readerStarted();
    });
    const reader = t.host.call({ codeHash: code, method: 'reader', contextId: id32('blob-view-reader'), gasLimit: 10n ** 12n });
    await started;
    await new Promise((r) => setTimeout(r, 50)); // past its first reads
    const writer = await t.host.call({ codeHash: code, method: 'writer', contextId: id32('blob-view-writer') });
    assert.equal(writer.applied, true, JSON.stringify(writer.result));
    const r = await reader;
    assert.equal(r.result.code, 'return', JSON.stringify(r.result));
    const v = Buffer.from((r.result as { value: Uint8Array }).value);
    const [firstRead, firstAnnounce, laterRead, laterAnnounce] = [0, 8, 16, 24].map((o) => v.readBigUInt64LE(o));
    assert.deepEqual([laterRead, laterAnnounce], [firstRead, firstAnnounce], 'one call, one view of the stored blobs');
    // A call after the commit sees it.
    const after = await t.host.call({ codeHash: code, method: 'reader', contextId: id32('blob-view-after'), gasLimit: 10n ** 12n });
    assert.equal(Buffer.from((after.result as { value: Uint8Array }).value).readBigUInt64LE(0), BigInt(content.length));
  } finally {
    await t.close();
  }
});
