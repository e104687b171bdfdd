/**
 * The node methods at the protocol level: blob bytes travel in frames of at most 1 MiB (the VM splits, the host
 * refuses larger ones), and a backend without node tables answers `forbidden`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Job } from '../../src/host/job.js';
import { NodeServices } from '../../src/host/node/services.js';
import { Session } from '../../src/host/session.js';
import { createMemoryStore } from '../../src/host/state/memory-store.js';
import { buildMessage } from '../../src/protocol/message.js';
import { decodeResponse, encodeRequest } from '../../src/protocol/messages.js';
import { BLOB_FRAME_BYTES } from '../../src/protocol/node-limits.js';
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, type MethodName } from '../../src/protocol/generated.js';
import type { RequestOf } from '../../src/protocol/messages.js';
import { takeFullFrames, takeRest, type WriteHandle } from '../../src/vm/blob-handles.js';
import { id32, MemoryBackend } from '../helpers.js';

function busySession(withNode: boolean): Session {
  const backend = new MemoryBackend();
  const job = new Job(buildMessage({ codeHash: id32('code'), method: 'm', contextId: id32('ctx'), limits: { maxBlobHandles: 2 } }));
  const session = new Session(withNode ? Object.assign(backend, { node: new NodeServices(createMemoryStore()) }) : backend, { oneShot: job });
  // A session given its job at start is busy with it from hello on (the state is the session's own).
  session.handle(encodeRequest('hello', { minVersion: PROTOCOL_VERSION_MIN, maxVersion: PROTOCOL_VERSION_MAX, vmVersion: 't', pid: 1, proof: new Uint8Array(32) }));
  return session;
}

function ask<M extends MethodName>(session: Session, method: M, fields: RequestOf<M>) {
  const answer = session.handle(encodeRequest(method, fields));
  assert.ok(answer instanceof Uint8Array);
  return decodeResponse(method, answer);
}

describe('blob frames', () => {
  test('the VM splits buffered writes into 1 MiB frames and keeps the rest for blob_finish', () => {
    const h: WriteHandle = { kind: 'write', pending: [], pendingBytes: 0 };
    assert.deepEqual(takeFullFrames(h, new Uint8Array(1000)), []);
    const frames = takeFullFrames(h, new Uint8Array(2 * BLOB_FRAME_BYTES + 5).fill(7));
    assert.deepEqual(frames.map((f) => f.length), [BLOB_FRAME_BYTES, BLOB_FRAME_BYTES]);
    assert.equal(frames[0]![999], 0);
    assert.equal(frames[0]![1000], 7);
    assert.equal(takeRest(h).length, 1005);
    assert.equal(h.pendingBytes, 0);
  });

  test('the host refuses frames over 1 MiB and more uploads than max_blob_handles', () => {
    const s = busySession(true);
    assert.equal(ask(s, 'blob_append', { handle: 1n, data: new Uint8Array(BLOB_FRAME_BYTES + 1) }).status, 'limit_exceeded');
    assert.equal(ask(s, 'blob_read', { blobId: id32('x'), offset: 0n, length: BLOB_FRAME_BYTES + 1 }).status, 'limit_exceeded');
    assert.equal(ask(s, 'blob_append', { handle: 1n, data: new Uint8Array(BLOB_FRAME_BYTES) }).status, 'ok');
    assert.equal(ask(s, 'blob_append', { handle: 2n, data: Uint8Array.of(1) }).status, 'ok');
    assert.equal(ask(s, 'blob_append', { handle: 3n, data: Uint8Array.of(1) }).status, 'limit_exceeded');
    const done = ask(s, 'blob_finish', { handle: 2n, data: Uint8Array.of(2) });
    assert.equal(done.status, 'ok');
    const read = ask(s, 'blob_read', { blobId: (done.fields as { blobId: Uint8Array }).blobId, offset: 1n, length: 10 });
    assert.deepEqual(read, { status: 'ok', fields: { data: Uint8Array.of(2) } }, 'staged blobs are readable by their execution');
  });

  test('a host without node tables answers forbidden', () => {
    const s = busySession(false);
    assert.equal(ask(s, 'private_storage_read', { key: Uint8Array.of(1) }).status, 'forbidden');
    assert.equal(ask(s, 'context_members', {}).status, 'forbidden');
  });
});
