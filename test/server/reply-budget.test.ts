/**
 * Answers the node wrote and its readers never took are bounded all together (ReplyBudget): when a new answer
 * needs room, the connections holding the oldest unread answers are closed, and a client that reads is served.
 * A real HTTP server and real sockets on loopback.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { BodyBudget, readBody, ReplyBudget, sendJson, statusOf } from '../../src/server/http.js';

const ANSWER = 'x'.repeat(16 * 1024 * 1024); // far more than a loopback socket's buffers take

/** A request whose answer is never read: the socket is paused from the start. */
function unreadRequest(port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.pause();
      s.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      resolve(s);
    });
    s.on('error', () => undefined);
  });
}

describe('unread answers', () => {
  test('the oldest unread answers are dropped to make room; their total stays within the budget; a reader is served', { timeout: 30_000 }, async () => {
    const budget = new ReplyBudget(40 * 1024 * 1024);
    let most = 0;
    let handled = 0;
    const server: Server = createServer((_req, res) => {
      sendJson(res, 200, { answer: ANSWER }, {}, budget);
      most = Math.max(most, budget.bytes);
      handled++;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const stalled: Socket[] = [];
      for (let i = 0; i < 6; i++) {
        stalled.push(await unreadRequest(port));
        while (handled < stalled.length) await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(most <= budget.limit, `${most} bytes of unread answers were held at once, over the budget of ${budget.limit}`);
      // Now read: an answer the node dropped ends short (its connection closed), one it kept arrives whole.
      const whole = await Promise.all(
        stalled.map(
          (s) =>
            new Promise<boolean>((resolve) => {
              let got = 0;
              s.on('data', (c: Buffer) => {
                got += c.length;
                if (got > ANSWER.length) resolve(true);
              });
              s.once('close', () => resolve(got > ANSWER.length));
              s.resume();
            }),
        ),
      );
      assert.deepEqual(whole, [false, false, false, false, true, true], 'room for two answers: the four oldest were dropped');
      // A client that reads gets its whole answer.
      const r = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(((await r.json()) as { answer: string }).answer.length, ANSWER.length);
      for (const s of stalled) s.destroy();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('answers queued behind others on a connection that closes leave the budget with it', { timeout: 30_000 }, async () => {
    // Node 20 gives such an answer neither 'finish' nor 'close': 20 clients pipelining 5,000 requests each and
    // leaving kept 130 MiB of them for good, until the node ran out of memory.
    const budget = new ReplyBudget(64 * 1024 * 1024);
    let handled = 0;
    const server: Server = createServer((_req, res) => {
      handled++;
      // As the node answers: after an await, so the requests of one received chunk all arrive first.
      void Promise.resolve().then(() => sendJson(res, 200, { ok: true }, {}, budget));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const requests = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(5000);
      let closed = 0;
      for (let i = 0; i < 5; i++) {
        const s = connect(port, '127.0.0.1', () => s.end(requests)); // sends them all and reads nothing
        s.on('error', () => undefined);
        s.once('close', () => closed++);
        setTimeout(() => s.destroy(), 200);
      }
      while (closed < 5) await new Promise((r) => setTimeout(r, 20));
      const open = (): Promise<number> => new Promise((resolve) => server.getConnections((_e, n) => resolve(n)));
      while ((await open()) > 0) await new Promise((r) => setTimeout(r, 20)); // the server's ends closed too
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(handled > 5, `${handled} requests handled`);
      assert.equal(budget.bytes, 0, `bytes still counted after ${handled} requests on connections now closed`);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('bodies dropped for the budget', () => {
  test('the oldest body still arriving, dropped to make room, is answered 503 with Retry-After before its connection closes', { timeout: 30_000 }, async () => {
    // Before, its connection was destroyed at once: the client saw a reset and could not tell whether the node
    // had acted on its request.
    const budget = new BodyBudget(1024 * 1024);
    let received = 0;
    const server: Server = createServer((req, res) => {
      req.on('data', (c: Buffer) => (received += c.length));
      readBody(req, 10 * 1024 * 1024, budget).then(
        (body) => sendJson(res, 200, { bytes: body.length }, {}, replies),
        (e: unknown) => {
          const { status, message, headers } = statusOf(e);
          sendJson(res, status, { error: message }, headers, replies);
        },
      );
    });
    const replies = new ReplyBudget(1024 * 1024);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const post = (bytes: number, declared: number): { socket: Socket; answer: () => string; closed: Promise<void> } => {
      let text = '';
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${declared}\r\n\r\n`);
        socket.write(Buffer.alloc(bytes));
      });
      socket.on('error', () => undefined);
      socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
      return { socket, answer: () => text, closed: new Promise((resolve) => socket.once('close', () => resolve())) };
    };
    try {
      const stalled = post(600 * 1024, 2 * 1024 * 1024); // a third of its body, then nothing
      while (received < 600 * 1024) await new Promise((r) => setTimeout(r, 10));
      const newer = post(600 * 1024, 600 * 1024); // whole, but the two do not fit at once
      await stalled.closed;
      assert.match(stalled.answer(), /^HTTP\/1\.1 503 /, `the dropped body's connection got ${stalled.answer().length} bytes`);
      assert.match(stalled.answer(), /\r\nretry-after: 1\r\n/i);
      assert.match(stalled.answer(), /\r\nconnection: close\r\n/i);
      assert.match(stalled.answer(), /this one was the oldest: send it again/);
      while (!newer.answer().includes('\r\n\r\n{')) await new Promise((r) => setTimeout(r, 10));
      assert.match(newer.answer(), /^HTTP\/1\.1 200 [^]*\{"bytes":614400\}$/, 'the newer body is read whole');
      newer.socket.destroy();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
