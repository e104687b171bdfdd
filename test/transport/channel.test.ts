/**
 * The socket channels (native addon and pure JS) over unix and TCP. The channel runs in a child process
 * (fixtures/vm-client.ts) as in the real VM; the host runs here (fixtures/echo-host.ts) or, when it must
 * die, in another child.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { startEchoHost } from './fixtures/echo-host.js';
import { runVmClient, spawnEchoHost } from './fixtures/child.js';
import { sha256, type ClientReport, type ClientResult } from './fixtures/vm-client.js';
import { channelInfo } from '../../src/transport/connect.js';

const dir = mkdtempSync(join(tmpdir(), 'hostlink-channel-test-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const IMPLS = ['native', 'js'] as const;
const TRANSPORTS = ['unix', 'tcp'] as const;
const nativeMissing = channelInfo().native.available ? false : `native addon unavailable: ${channelInfo().native.reason}`;
let counter = 0;
const where = (t: (typeof TRANSPORTS)[number]) => (t === 'unix' ? { unix: join(dir, `h${counter++}.sock`) } : { tcp: true as const });

function results(report: ClientReport, i: number): ClientResult[] {
  const s = report.sessions[i]!;
  assert.ok('results' in s, `session ${i} failed to connect: ${JSON.stringify(s)}`);
  return s.results;
}

function assertError(r: ClientResult | undefined, code: string, text?: RegExp): void {
  assert.ok(r && !r.ok, `expected ${code}, got ${JSON.stringify(r)}`);
  assert.equal(r.code, code, r.message);
  if (text) assert.match(r.message, text);
}

async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const a = s.address();
  await new Promise((resolve) => s.close(resolve));
  return typeof a === 'object' && a ? a.port : 0;
}

for (const impl of IMPLS) {
  for (const transport of TRANSPORTS) {
    test(`${impl} over ${transport}: round trips, errors, closing`, { skip: impl === 'native' && nativeMissing, timeout: 90_000 }, async () => {
      const host = await startEchoHost(where(transport));
      const big = Buffer.alloc(4 << 20, 7);
      const medium = Buffer.alloc(70_000, 1); // above the 64 KiB scratch buffer: the split read path
      try {
        const a = host.address;
        const report = await runVmClient({
          impl,
          sessions: [
            { address: a, requests: [{ text: 'hello' }, { fill: 7, length: big.length }, { sequential: 1000, length: 32 }, { text: '' }, { fill: 1, length: medium.length }] },
            { address: a, requests: [{ text: 'ctl:oversize' }, { text: 'after' }] },
            { address: a, requests: [{ text: 'ctl:partial-body' }, { text: 'after' }] },
            { address: a, requests: [{ text: 'ctl:partial-header' }] },
            { address: a, requests: [{ text: 'ctl:close-later' }, { text: 'after' }] },
            { address: a, requests: [{ text: 'ctl:close' }] },
            { address: a, requests: [{ text: 'ctl:reset' }] },
            { address: a, requests: [{ text: 'ctl:extra' }] },
            { address: a, maxFrameBytes: 1000, requests: [{ text: 'small' }, { fill: 2, length: 2000 }] },
          ],
        });
        assert.equal(report.kind, impl);

        const [hello, large, seq, empty, med] = results(report, 0);
        assert.deepEqual(hello, { ok: true, length: 5, sha256: sha256(Buffer.from('hello')), text: 'hello' });
        assert.deepEqual(large, { ok: true, length: big.length, sha256: sha256(big) });
        assert.deepEqual(seq, { ok: true, count: 1000, mismatches: 0 });
        assert.deepEqual(empty, { ok: true, length: 0, sha256: sha256(Buffer.alloc(0)), text: '' });
        assert.deepEqual(med, { ok: true, length: medium.length, sha256: sha256(medium) });

        // An oversized length is refused at once (the host keeps the socket open and sends no body).
        assertError(results(report, 1)[0], 'protocol', /4294967280 bytes exceeds the maximum/);
        assertError(results(report, 1)[1], 'channel_closed', /unusable after an earlier error/);
        assertError(results(report, 2)[0], 'channel_closed', /^the host closed the connection.*got 10 of 100 body bytes/);
        assertError(results(report, 2)[1], 'channel_closed', /unusable/);
        assertError(results(report, 3)[0], 'channel_closed', /^the host closed the connection.*frame header/);
        // The request was blocked in read when the host closed: it must return, not hang.
        assertError(results(report, 4)[0], 'channel_closed', /^the host closed the connection$/);
        assertError(results(report, 4)[1], 'channel_closed', /unusable/);
        assertError(results(report, 5)[0], 'channel_closed', /^the host closed the connection$/);
        assertError(results(report, 6)[0], 'channel_closed', transport === 'tcp' ? /^the host closed the connection \(ECONNRESET\)$/ : /^the host closed the connection$/);
        assertError(results(report, 7)[0], 'protocol', /3 bytes beyond/);
        assert.deepEqual(results(report, 8)[0], { ok: true, length: 5, sha256: sha256(Buffer.from('small')), text: 'small' });
        assertError(results(report, 8)[1], 'protocol', /2000 bytes exceeds the maximum of 1000/);
      } finally {
        await host.close();
      }
    });

    test(`${impl} over ${transport}: a blocked request ends with channel_closed when the host process dies`, { skip: impl === 'native' && nativeMissing, timeout: 60_000 }, async () => {
      const { address, child } = await spawnEchoHost(where(transport));
      const exited = new Promise((resolve) => child.on('exit', resolve));
      try {
        const report = await runVmClient({ impl, sessions: [{ address, requests: [{ text: 'before' }, { text: 'ctl:die' }, { text: 'after' }] }] });
        const [before, died, after] = results(report, 0);
        assert.equal(before?.ok, true);
        assertError(died, 'channel_closed', /^the host closed the connection/);
        assertError(after, 'channel_closed', /unusable/);
        assert.equal(await exited, null); // killed by its own SIGKILL, not exited normally
      } finally {
        child.kill('SIGKILL');
      }
    });
  }

  for (const transport of TRANSPORTS) {
    test(`${impl} over ${transport}: two requests sent together get their two answers, in order`, { skip: impl === 'native' && nativeMissing, timeout: 90_000 }, async () => {
      const host = await startEchoHost(where(transport));
      const big = 70_000; // each above the 64 KiB scratch buffer: sent in turn, the answers read whole
      try {
        const a = host.address;
        const report = await runVmClient({
          impl,
          sessions: [
            { address: a, requests: [{ pair: ['first', 'second'] }, { text: 'then' }, { pair: ['', 'x'] }, { pair: { fill: 3, length: big } }, { pair: ['a', 'b'] }] },
            { address: a, requests: [{ pair: ['no', 'never read'], refuse: 'no' }, { text: 'after' }] },
            { address: a, requests: [{ pair: ['ok', 'ctl:extra'] }, { text: 'after' }] },
            { address: a, requests: [{ pair: ['ok', 'ctl:close'] }] },
          ],
        });
        const text = (t: string) => ({ length: t.length, sha256: sha256(Buffer.from(t)), text: t });
        const [pair, then, empty, large, last] = results(report, 0);
        assert.deepEqual(pair, { ok: true, pair: [text('first'), text('second')] });
        assert.deepEqual(then, { ok: true, ...text('then') }, 'nothing of the pair is left over for the next request');
        assert.deepEqual(empty, { ok: true, pair: [text(''), text('x')] });
        assert.deepEqual(large, { ok: true, pair: [{ length: big, sha256: sha256(Buffer.alloc(big, 3)) }, { length: big, sha256: sha256(Buffer.alloc(big, 4)) }] });
        assert.deepEqual(last, { ok: true, pair: [text('a'), text('b')] });
        // The first answer's check throws: that error, at once, and the channel is closed.
        assertError(results(report, 1)[0], 'protocol', /first answer refused: no/);
        assertError(results(report, 1)[1], 'channel_closed', /unusable after an earlier error/);
        // Bytes beyond the second answer: the two sides disagree on the stream.
        assertError(results(report, 2)[0], 'protocol', /3 bytes beyond the 2-byte response frame/);
        assertError(results(report, 2)[1], 'channel_closed', /unusable/);
        assertError(results(report, 3)[0], 'channel_closed', /^the host closed the connection$/);
      } finally {
        await host.close();
      }
    });
  }

  if (impl === 'native') {
    test('native: a host that does not answer within timeoutMs gives a timeout error, then the channel is closed', { skip: nativeMissing, timeout: 60_000 }, async () => {
      const host = await startEchoHost({ tcp: true });
      try {
        // The limit also covers the 'ok' request, answered by this (possibly loaded) process: not too short.
        const report = await runVmClient({ impl, sessions: [{ address: host.address, timeoutMs: 1000, requests: [{ text: 'ok' }, { text: 'ctl:hang' }, { text: 'after' }] }] });
        const [ok, hang, after] = results(report, 0);
        assert.equal(ok?.ok, true);
        assertError(hang, 'timeout', /did not answer within 1000 ms/);
        assertError(after, 'channel_closed', /unusable after an earlier error/);
      } finally {
        await host.close();
      }
    });
  }

  test(`${impl}: connect failures name the address and say what is wrong`, { skip: impl === 'native' && nativeMissing }, async () => {
    const port = await freeTcpPort();
    const missing = join(dir, 'nobody-here.sock');
    const report = await runVmClient({ impl, sessions: [{ address: `unix://${missing}`, requests: [] }, { address: `127.0.0.1:${port}`, requests: [] }] });
    const [unix, tcp] = report.sessions;
    assert.ok(unix && 'connectError' in unix && tcp && 'connectError' in tcp, JSON.stringify(report));
    assert.equal(unix.connectError.code, 'channel_closed');
    assert.match(unix.connectError.message, new RegExp(`^could not connect to host at unix://${missing}: .*ENOENT|No such file`));
    assert.equal(tcp.connectError.code, 'channel_closed');
    assert.match(tcp.connectError.message, new RegExp(`^could not connect to host at 127\\.0\\.0\\.1:${port}: .*(ECONNREFUSED|refused)`));
  });
}
