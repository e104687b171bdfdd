/**
 * The session's socket I/O through the addon (src/transport/session-io.ts, native/hostlink_socket.c) over real unix
 * sockets: its own descriptor is closed when the session ends (none left behind, and the peer sees the end of the
 * connection once the net.Socket is destroyed too), a net.Socket destroyed by its owner ends the session, the held
 * bytes come before new ones, and HOSTLINK_SOCKET_IO=libuv turns the addon off. The session's own rules on this path
 * are tested in socket-reads.test.ts and host/session-bounds.test.ts (each runs on both paths).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Job } from '../../src/host/job.js';
import { serveSession, Session, type WorkSource } from '../../src/host/session.js';
import { encodeFrame, FrameReader } from '../../src/protocol/frame.js';
import { MAX_FRAME_BYTES } from '../../src/protocol/generated.js';
import { decodeResponse, encodeRequest } from '../../src/protocol/messages.js';
import { sessionIo, sessionIoMode } from '../../src/transport/session-io.js';
import { MemoryBackend, message, unixSocketPair, utf8 } from '../helpers.js';

const openDescriptors = (): number => readdirSync('/proc/self/fd').length;
const hello = (): Uint8Array => encodeRequest('hello', { minVersion: 1, maxVersion: 1, vmVersion: 'test', pid: 1, proof: new Uint8Array(32) });
const never: WorkSource = { nextJob: () => new Promise(() => undefined) };
const addonBuilt = sessionIoMode().mode === 'polled' || process.env['HOSTLINK_SOCKET_IO'] === 'libuv';
const skip = addonBuilt ? false : 'the host socket addon is not built (no C compiler?)';

describe('session I/O through the socket addon', () => {
  test('the I/O is the addon where it is built; HOSTLINK_SOCKET_IO=libuv turns it off', { skip }, async () => {
    const before = process.env['HOSTLINK_SOCKET_IO'];
    try {
      delete process.env['HOSTLINK_SOCKET_IO'];
      assert.deepEqual(sessionIoMode(), { mode: 'polled' });
      process.env['HOSTLINK_SOCKET_IO'] = 'libuv';
      assert.deepEqual(sessionIoMode(), { mode: 'libuv', reason: 'HOSTLINK_SOCKET_IO=libuv' });
      const { server, close } = await unixSocketPair();
      try {
        assert.equal(sessionIo(server).mode, 'libuv');
      } finally {
        close();
      }
    } finally {
      if (before === undefined) delete process.env['HOSTLINK_SOCKET_IO'];
      else process.env['HOSTLINK_SOCKET_IO'] = before;
    }
  });

  test('sessions that end leave no descriptor behind, and the peer sees the end of the connection', { skip }, async () => {
    const serveOne = async (): Promise<void> => {
      const { server, client, close } = await unixSocketPair();
      try {
        const io = sessionIo(server, { io: 'polled' });
        assert.equal(io.mode, 'polled');
        const served = serveSession(new Session(new MemoryBackend(), { pool: never }), server, 1024, { io });
        const reader = new FrameReader();
        const answers: Buffer[] = [];
        client.on('data', (c: Buffer) => answers.push(...reader.push(c)));
        client.write(encodeFrame(hello()));
        while (answers.length === 0) await new Promise((r) => setTimeout(r, 5));
        assert.equal(decodeResponse('hello', answers[0]!).status, 'ok');
        const ended = once(client, 'end');
        client.end(); // the VM goes: the session ends, then its owner destroys the socket
        assert.deepEqual(await served, {});
        assert.equal(io.gone, true);
        server.destroy();
        await ended;
      } finally {
        close();
      }
    };
    await serveOne(); // the addon and the helpers' first use allocate what they keep
    const before = openDescriptors();
    for (let i = 0; i < 20; i++) await serveOne();
    await new Promise((r) => setTimeout(r, 50)); // libuv closes a watcher's descriptor on its next turn
    assert.equal(openDescriptors(), before, 'descriptors open after 20 sessions');
  });

  test('a socket its owner destroys ends the session it serves', { skip }, async () => {
    const { server, client, close } = await unixSocketPair();
    try {
      const io = sessionIo(server, { io: 'polled' });
      const served = serveSession(new Session(new MemoryBackend(), { pool: never }), server, 1024, { io });
      client.write(encodeFrame(hello()));
      client.write(encodeFrame(encodeRequest('next_message', {}))); // parked: the session waits for work
      await new Promise((r) => setTimeout(r, 50));
      const ended = once(client, 'close');
      client.resume(); // read the answers, so that the end of the stream is seen
      server.destroy();
      assert.deepEqual(await served, {});
      await ended; // and the duplicate did not keep the connection open
    } finally {
      close();
    }
  });

  test('a VM that goes away while an answer waits to be sent ends the session, and the write is released', { skip }, async () => {
    const backend = new MemoryBackend();
    const job = new Job(message({ codeHash: backend.deploy(utf8('\0asm\x01\0\0\0')), method: 'm' }));
    backend.apply(job.message.contextId, [[utf8('big'), new Uint8Array(512 * 1024).fill(3)]]);
    let given = false;
    const once1: WorkSource = { nextJob: () => Promise.resolve(given ? null : ((given = true), job)) };
    const { server, client, close } = await unixSocketPair();
    try {
      const io = sessionIo(server, { io: 'polled' });
      const served = serveSession(new Session(backend, { pool: once1 }), server, MAX_FRAME_BYTES, { io });
      client.pause(); // reads nothing: the 512 KiB answer cannot leave whole
      client.write(Buffer.concat([encodeFrame(hello()), encodeFrame(encodeRequest('next_message', {})), encodeFrame(encodeRequest('storage_read', { key: utf8('big') }))]));
      for (let i = 0; i < 400 && io.bytesUnsent === 0; i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(io.bytesUnsent > 0, 'the answer waits for the VM to read');
      client.destroy(); // the VM dies with the answer unread
      assert.deepEqual(await served, {});
      assert.equal(io.gone, true);
      assert.equal(io.bytesUnsent, 0, 'nothing is held for a connection that is gone');
    } finally {
      close();
    }
  });

  test('bytes the stream held before the addon took over come first, then what follows', { skip }, async () => {
    const { server, client, close } = await unixSocketPair();
    try {
      server.unshift(Buffer.from('held|')); // what the gate does with the hello's rest
      const io = sessionIo(server, { io: 'polled' });
      const got: Buffer[] = [];
      let gone = false;
      io.start((c) => got.push(c), () => (gone = true));
      assert.equal(got.length, 0, 'nothing is delivered inside start()');
      client.write('new');
      for (let i = 0; i < 200 && Buffer.concat(got).toString() !== 'held|new'; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(Buffer.concat(got).toString(), 'held|new');
      io.pause();
      client.write('later');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(Buffer.concat(got).toString(), 'held|new', 'nothing is read while paused');
      io.resume();
      for (let i = 0; i < 200 && !Buffer.concat(got).toString().endsWith('later'); i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(Buffer.concat(got).toString(), 'held|newlater');
      assert.equal(io.bytesRead, 'newlater'.length, 'bytes read from the socket (the unshifted ones were not)');
      client.end();
      for (let i = 0; i < 200 && !gone; i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(gone, 'the end of the stream was reported');
    } finally {
      close();
    }
  });
});
