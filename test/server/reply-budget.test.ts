/**
 * Answers the node wrote and its readers never took are bounded all together (ReplyBudget): when a new answer
 * needs room, the connections holding the oldest unread answers are closed, and a client that reads is served.
 * A real HTTP server and real sockets on loopback.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { ReplyBudget, sendJson } from '../../src/server/http.js';

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
});
