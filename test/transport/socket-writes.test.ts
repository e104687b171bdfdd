/**
 * The host's socket write path (src/transport/socket-writes.ts), over real unix and TCP sockets: writes go
 * straight to the handle on this Node, every byte arrives once and in order, a peer that does not read makes a
 * write wait (and `taken` runs once it reads), a write to a peer that is gone destroys the socket instead of
 * throwing, and sockets that are not plain pipes or TCP are written through the stream.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, Socket as NetSocket, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { socketWriter, type WriteMode } from '../../src/transport/socket-writes.js';
import { unixSocketPair } from '../helpers.js';

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
};

async function tcpSocketPair(): Promise<{ server: Socket; client: Socket; close: () => void }> {
  const listener = createServer({ pauseOnConnect: true });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const address = listener.address();
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const client = connect({ host: '127.0.0.1', port: typeof address === 'object' && address ? address.port : 0 });
  await once(client, 'connect');
  const [server] = await accepted;
  return { server, client, close: () => (client.destroy(), server.destroy(), listener.close()) };
}

describe('socket writes', () => {
  for (const [transport, pair] of [['unix', unixSocketPair], ['tcp', tcpSocketPair]] as const) {
    test(`${transport}: writes go to the handle on this Node; every byte once, in order`, async () => {
      const { server, client, close } = await pair();
      try {
        const writer = socketWriter(server);
        assert.equal(writer.mode, 'handle', 'this Node supports the fast path: the host must not silently fall back');
        const got: Buffer[] = [];
        client.on('data', (c: Buffer) => got.push(c));
        let expected = '';
        for (let i = 0; i < 200; i++) {
          const piece = `w${i}|`;
          expected += piece;
          assert.equal(writer.write(Buffer.from(piece), () => assert.fail('a write the kernel took whole calls nothing')), true);
        }
        await until(() => Buffer.concat(got).length === expected.length, 'every byte');
        assert.equal(Buffer.concat(got).toString(), expected);
      } finally {
        close();
      }
    });
  }

  for (const mode of ['handle', 'stream'] as WriteMode[]) {
    test(`${mode}: a peer that does not read makes a write wait; taken runs once it reads, bytes intact`, async () => {
      const { server, client, close } = await unixSocketPair();
      try {
        const writer = socketWriter(server, { mode });
        assert.equal(writer.mode, mode);
        client.pause();
        // Far more than the socket buffers hold: the write cannot complete while the peer does not read.
        const big = Buffer.alloc(16 * 1024 * 1024);
        for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
        let taken = 0;
        assert.equal(writer.write(big, () => taken++), false, 'the write waits for the peer');
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(taken, 0, 'not taken while the peer does not read');
        const got: Buffer[] = [];
        client.on('data', (c: Buffer) => got.push(c));
        client.resume();
        await until(() => taken === 1, 'taken once the peer reads');
        await until(() => got.reduce((n, c) => n + c.length, 0) === big.length, 'every byte');
        assert.ok(Buffer.concat(got).equals(big), 'the bytes arrive as written');
        assert.equal(taken, 1);
      } finally {
        close();
      }
    });
  }

  test('a write to a peer that is gone destroys the socket instead of throwing; a destroyed socket is not written', async () => {
    const { server, client, close } = await unixSocketPair();
    try {
      const errors: Error[] = [];
      server.on('error', (e: Error) => errors.push(e)); // EPIPE arrives as the socket's error
      const closed = new Promise((r) => server.on('close', r));
      const writer = socketWriter(server);
      client.destroy();
      await new Promise((r) => setTimeout(r, 50));
      // The kernel reports the broken pipe on the first write or the next one.
      for (let i = 0; i < 2 && !server.destroyed; i++) writer.write(Buffer.alloc(64), () => undefined);
      await closed;
      assert.equal(server.destroyed, true);
      assert.match(errors[0]?.message ?? '', /writing to the VM's socket failed: EPIPE/);
      assert.equal(writer.write(Buffer.alloc(8), () => assert.fail('nothing to take')), false);
    } finally {
      close();
    }
  });

  test('a socket without a plain pipe or TCP handle is written through the stream', () => {
    // A net.Socket that has no handle (not connected; a TLS socket's handle is a TLS wrap, not a pipe or TCP).
    const socket = new NetSocket();
    assert.equal(socketWriter(socket).mode, 'stream');
    socket.destroy();
  });
});
