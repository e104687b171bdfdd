/**
 * The host's socket read path (src/transport/socket-reads.ts) and the session served on it, over real unix
 * sockets: reads go to the reused buffer on this Node, chunks are the caller's own copies and arrive in order
 * (bytes the stream already held first), pause stops reading, and the session's checks hold on this path:
 * frames split byte by byte, pipelined frames answered one at a time, an oversized length refused before it is
 * buffered, a session that ended reads nothing more. The session's checks are run on each of its I/O paths: the
 * socket addon (session-io.ts, the default) and libuv's stream handle with either read path.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Job } from '../../src/host/job.js';
import { serveSession, Session, type WorkSource } from '../../src/host/session.js';
import { encodeFrame, FrameReader } from '../../src/protocol/frame.js';
import { decodeResponse, encodeRequest } from '../../src/protocol/messages.js';
import { readChunks, type ReadMode } from '../../src/transport/socket-reads.js';
import { sessionIo, type SessionIoOptions } from '../../src/transport/session-io.js';
import { MemoryBackend, message, unixSocketPair, utf8 } from '../helpers.js';

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
};

describe('socket reads', () => {
  test('reads go to the reused buffer on this Node; chunks are copies, in order, held bytes first', async () => {
    const { server, client, close } = await unixSocketPair();
    try {
      server.unshift(Buffer.from('held|')); // what the gate does with the hello it has checked
      const got: Buffer[] = [];
      const mode = readChunks(server, (c) => got.push(c));
      assert.equal(mode, 'user-buffer', 'this Node supports the fast path: the host must not silently fall back');
      server.resume();
      for (let i = 0; i < 50; i++) {
        client.write(`m${i}|`);
        await until(() => Buffer.concat(got).toString().endsWith(`m${i}|`), `chunk ${i} arrived`);
      }
      const expected = 'held|' + Array.from({ length: 50 }, (_, i) => `m${i}|`).join('');
      assert.equal(Buffer.concat(got).toString(), expected, 'every byte once, in order, with earlier chunks intact');
      // Each read lands at the start of the reused buffer: a chunk that were a view of it would now read as the last one.
      assert.ok(got.length >= 50, `one chunk per write at least (got ${got.length})`);
    } finally {
      close();
    }
  });

  test('a paused socket stops reading; resume delivers the rest', async () => {
    for (const mode of ['user-buffer', 'stream'] as ReadMode[]) {
      const { server, client, close } = await unixSocketPair();
      try {
        let received = 0;
        assert.equal(readChunks(server, (c) => (received += c.length), { mode }), mode);
        server.resume();
        client.write(Buffer.alloc(10));
        await until(() => received === 10, 'first bytes');
        server.pause();
        const flood = Buffer.alloc(8 * 1024 * 1024);
        client.write(flood);
        await new Promise((r) => setTimeout(r, 300));
        const whilePaused = received;
        assert.ok(whilePaused < 4 * 1024 * 1024, `${mode}: read ${whilePaused} bytes while paused`);
        server.resume();
        await until(() => received === 10 + flood.length, `${mode}: the rest after resume`);
      } finally {
        close();
      }
    }
  });
});

/** A hello body as a VM sends it (the session itself does not check the proof: the gate did). */
const hello = (): Uint8Array => encodeRequest('hello', { minVersion: 1, maxVersion: 1, vmVersion: 'test', pid: 1, proof: new Uint8Array(32) });

describe('session on each I/O path', () => {
  const variants: { name: string; options: SessionIoOptions }[] = [
    { name: 'polled (socket addon)', options: { io: 'polled' } },
    { name: 'libuv, user-buffer reads', options: { io: 'libuv', readMode: 'user-buffer' } },
    { name: 'libuv, stream reads', options: { io: 'libuv', readMode: 'stream' } },
  ];
  const setup = async (options: SessionIoOptions, t: { skip(why: string): void }) => {
    const backend = new MemoryBackend();
    const code = backend.deploy(utf8('\0asm\x01\0\0\0'));
    const job = new Job(message({ codeHash: code, method: 'm' }));
    backend.apply(job.message.contextId, [[utf8('k'), utf8('v')]]);
    let given = false;
    const work: WorkSource = { nextJob: () => Promise.resolve(given ? null : ((given = true), job)) };
    const { server, client, close } = await unixSocketPair();
    const io = sessionIo(server, options);
    if (io.mode !== options.io) {
      t.skip('the host socket addon is not built (no C compiler?)');
      close();
      return null;
    }
    const served = serveSession(new Session(backend, { pool: work }), server, 1024, { io });
    const reader = new FrameReader();
    const answers: Buffer[] = [];
    client.on('data', (c: Buffer) => answers.push(...reader.push(c)));
    return { backend, io, client, close, served, answers };
  };

  for (const { name, options } of variants) {
    test(`${name}: frames split byte by byte and pipelined are each answered, in order`, async (t) => {
      const s = await setup(options, t);
      if (s === null) return;
      const { client, close, served, answers } = s;
      try {
        const bytes = Buffer.concat([encodeFrame(hello()), encodeFrame(encodeRequest('next_message', {})), ...Array.from({ length: 20 }, () => encodeFrame(encodeRequest('storage_read', { key: utf8('k') })))]);
        for (const b of bytes) client.write(Uint8Array.of(b));
        await until(() => answers.length === 22, `22 answers (got ${answers.length})`);
        assert.equal(decodeResponse('hello', answers[0]!).status, 'ok');
        assert.equal(decodeResponse('next_message', answers[1]!).status, 'ok');
        for (const a of answers.slice(2)) {
          const r = decodeResponse('storage_read', a);
          assert.equal(r.status, 'ok');
          assert.equal(Buffer.from((r.fields as { value: Uint8Array }).value).toString(), 'v');
        }
        client.end();
        assert.deepEqual(await served, {});
      } finally {
        close();
      }
    });

    test(`${name}: a length over the frame limit ends the session with bad_request, before the body arrives`, async (t) => {
      const s = await setup(options, t);
      if (s === null) return;
      const { client, io, close, served, answers } = s;
      try {
        client.write(encodeFrame(hello()));
        await until(() => answers.length === 1, 'hello answered');
        const head = Buffer.alloc(4);
        head.writeUInt32LE(1025);
        client.write(head); // the limit given to serveSession is 1024: no body needs to follow
        const { error } = await served;
        assert.match(error?.message ?? '', /frame of 1025 bytes exceeds the maximum of 1024 bytes/);
        await until(() => answers.length === 2, 'bad_request sent');
        assert.equal(decodeResponse('storage_read', answers[1]!).status, 'bad_request');
        const readBefore = io.bytesRead;
        client.write(Buffer.alloc(64 * 1024));
        await new Promise((r) => setTimeout(r, 100));
        assert.ok(io.bytesRead - readBefore <= 64 * 1024 && answers.length === 2, 'nothing answered after the session ended');
      } finally {
        close();
      }
    });
  }
});
