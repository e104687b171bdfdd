/**
 * What a fetch's answer costs, through real VM processes and a local HTTP server: the call's gas pays for the
 * bytes of every answer the host books (round_trip per_byte), wherever the fetch was made.
 *
 * - Sandbox: a sub-instance's fetch whose answer the call's gas paid for but the sub-instance's share did not.
 *   The host booked the answer's bytes against the call's gas; the VM charged the caller the share alone, so an
 *   honest VM's call ended internal_error protocol_violation with no gas charged. Now the caller pays the bytes
 *   the share could not: the sandbox's out_of_gas is the contract's result (or, when the call cannot pay them
 *   either, the call's own out_of_gas).
 * - Gas first: the host downloaded and buffered the whole body (up to maxResponseBytes) before it found that the
 *   call could not pay for it (an 8 MiB body: ~30 ms of host CPU for a call of 2 million gas). Now it learns
 *   what the gas pays for when the request arrives, refuses a longer declared body before reading it and stops
 *   reading a streamed one once it is longer: `unaffordable`, the same for every way the body is cut.
 * - Policy: a node allowed bodies larger than one frame carries; such a body ended the call internal_error (the
 *   host answered limit_exceeded) instead of the guest's "response larger than allowed". Host.open refuses it.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { CallFinished } from '../../src/host/events.js';
import { Host, type Outcome } from '../../src/host/host.js';
import { HostlinkError } from '../../src/errors.js';
import { Job } from '../../src/host/job.js';
import { Session } from '../../src/host/session.js';
import type { SessionBackend } from '../../src/host/session-types.js';
import { answerBytesAffordable, roundTripGas } from '../../src/protocol/effect-limits.js';
import { decodeResponse, encodeRequest } from '../../src/protocol/messages.js';
import { MAX_FRAME_BYTES } from '../../src/protocol/generated.js';
import { MAX_FETCH_RESPONSE_BYTES } from '../../src/protocol/node-limits.js';
import { ROUND_TRIP_GAS } from '../../src/vm/host-functions.generated.js';
import { id32, message } from '../helpers.js';
import { call, Probe, returned, returnedU64 } from './probe.js';

/** A 512 KiB answer costs 52 million gas of round_trip per_byte: more than a sandbox's share of 80 million. */
const BODY = 512 * 1024;
const ANSWER_GAS = BigInt(BODY) * BigInt(ROUND_TRIP_GAS.perByte);

function startServer(): Promise<Server> {
  const body = Buffer.alloc(BODY, 0x61);
  const server = createServer((_req, res) => res.end(body));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const show = (o: Outcome): string => JSON.stringify(o.result, (_k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));

/** Closes a describe's host and its test server. */
async function closeBoth(host: Host, server: Server): Promise<void> {
  await host.close();
  server.closeAllConnections();
  server.close();
}

describe('a fetch in a sandbox is paid by the call', () => {
  const ctx = id32('fetch-gas-sandbox');
  let server: Server;
  let host: Host;
  let code: Uint8Array;
  /** The bytes of the last call's http_fetch answer as the host sent it. */
  let answered = 0;
  before(async () => {
    server = await startServer();
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    host = await Host.open({ poolSize: 1, fetch: { allow: [origin], timeoutMs: 60_000 } });
    host.events.on('call.finished', (e: CallFinished) => (answered = e.hostCalls['http_fetch']?.responseBytes ?? 0));
    const p = new Probe(64 * 1024);
    const none = p.buf(new Uint8Array(0));
    const fetch = `(drop ${call('fetch', p.buf(`${origin}/body`), p.buf('GET'), p.buf(new Uint8Array(4)), none, 1)})`;
    // Each returns what it got: the body's length, or the sandbox's result code (2: VMError).
    p.method('inner', `${fetch} (call $ret_i64 (call $register_len (i64.const 1)))`);
    p.method('outer', `(call $ret_i64 (i64.extend_i32_u ${call('sandbox', p.buf('inner'), none, '(i32.const 0)', 2)}))`);
    p.method('middle', `(call $ret_i64 (i64.extend_i32_u ${call('sandbox', p.buf('inner'), none, '(i32.const 0)', 2)}))`);
    p.method('nested', `(call $ret_i64 (i64.extend_i32_u ${call('sandbox', p.buf('middle'), none, '(i32.const 0)', 2)}))`);
    code = await host.deploy(await p.build());
  });
  after(() => closeBoth(host, server));

  const run = (method: string, gasLimit: bigint) => host.call({ codeHash: code, method, contextId: ctx, gasLimit });

  test('the call pays for the answer, the share does not: the sandbox runs out of gas, the caller goes on and pays the bytes', async () => {
    const gasLimit = 80_000_000n;
    const direct = await run('inner', gasLimit);
    assert.equal(returnedU64(direct), BigInt(BODY), show(direct));
    const o = await run('outer', gasLimit);
    assert.equal(o.result.code, 'return', show(o));
    assert.equal(returnedU64(o), 2n, 'the sandbox\'s VMError (out_of_gas) is a value the caller got');
    assert.equal(o.applied, true);
    assert.ok(answered > BODY, 'the host sent the body');
    assert.ok(o.gasUsed >= ANSWER_GAS && o.gasUsed < gasLimit, `${o.gasUsed} gas used`);
  });

  test('nested: what the inner share cannot pay passes up each caller in turn', async () => {
    const o = await run('nested', 80_000_000n);
    assert.equal(o.result.code, 'return', show(o));
    assert.equal(returnedU64(o), 2n);
    assert.ok(answered > BODY, 'the host sent the body');
    assert.ok(o.gasUsed >= ANSWER_GAS, `${o.gasUsed} gas used`);
  });

  test('the call cannot pay for the answer either (unaffordable): the call runs out of gas, as if it had fetched', async () => {
    // 40 million: every instance, the innermost at a quarter of it, still pays to send the request.
    for (const method of ['outer', 'inner', 'nested']) {
      const gasLimit = 40_000_000n;
      const o = await run(method, gasLimit);
      assert.ok(answered > 0 && answered < 16, `${method}: the host answered unaffordable (${answered} bytes)`);
      assert.equal(o.result.code, 'vm_error', `${method}: ${show(o)}`);
      assert.match((o.result as { message: string }).message, /^out_of_gas/, method);
      assert.equal(o.gasUsed, gasLimit, method);
    }
  });
});

describe('a fetch policy allows no body larger than one answer frame carries', () => {
  let server: Server;
  let origin: string;
  before(async () => {
    // Declares a body one byte over the most a policy may allow, sends none of it, and never ends.
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(MAX_FETCH_RESPONSE_BYTES + 1) });
      res.flushHeaders();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('Host.open refuses maxResponseBytes over the frame, naming the most allowed', async () => {
    for (const maxResponseBytes of [MAX_FETCH_RESPONSE_BYTES + 1, MAX_FRAME_BYTES, 128 << 20, -1, 1.5]) {
      await assert.rejects(
        Host.open({ poolSize: 1, fetch: { allow: [origin], maxResponseBytes } }),
        (e: unknown) => e instanceof HostlinkError && e.code === 'usage' && e.message.includes(`from 0 to ${MAX_FETCH_RESPONSE_BYTES}`),
        String(maxResponseBytes),
      );
    }
  });

  test('at the most allowed, a larger body is the guest\'s "larger than" failure, not a node failure', async () => {
    const host = await Host.open({ poolSize: 1, fetch: { allow: [origin], maxResponseBytes: MAX_FETCH_RESPONSE_BYTES, timeoutMs: 60_000 } });
    try {
      const p = new Probe(64 * 1024);
      const none = p.buf(new Uint8Array(0));
      p.method('big', `(drop ${call('fetch', p.buf(`${origin}/big`), p.buf('GET'), p.buf(new Uint8Array(4)), none, 1)}) (call $ret_reg (i64.const 1))`);
      const code = await host.deploy(await p.build());
      const o = await host.call({ codeHash: code, method: 'big', contextId: id32('fetch-gas-policy'), gasLimit: 10n ** 13n });
      assert.equal(o.result.code, 'return', show(o));
      assert.equal(Buffer.from(returned(o)).toString(), `fetch failed: the response is larger than ${MAX_FETCH_RESPONSE_BYTES} bytes`);
    } finally {
      await host.close();
    }
  });
});

describe('the host reads no fetched body the call cannot pay for', () => {
  /** Bytes the streaming routes send before they stall: far more than the gas below pays to receive. */
  const STREAMED = 256 * 1024;
  /** The body /flood offers, as fast as the host reads it: far more than the socket buffers between them hold. */
  const FLOOD = 32 << 20;
  const ctx = id32('fetch-gas-first');
  let server: Server;
  let origin: string;
  let host: Host;
  let code: Uint8Array;
  /** Bytes /flood handed to its socket before the host closed the connection. */
  let flooded = 0;
  const floodClosed: (() => void)[] = [];

  /** Writes `sizes` (cycled) until `total` bytes are out, then stalls: only the host's reading ends it. */
  const stream = (res: import('node:http').ServerResponse, sizes: number[], total: number): void => {
    for (let sent = 0, i = 0; sent < total; i++) {
      const n = Math.min(sizes[i % sizes.length]!, total - sent);
      res.write(Buffer.alloc(n, 0x62));
      sent += n;
    }
  };

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/small') res.end('hi');
      else if (req.url === '/declared') {
        // Declares 8 MiB, sends none of it, and never ends: only the declared length can be judged.
        res.writeHead(200, { 'content-length': String(8 << 20) });
        res.flushHeaders();
      } else if (req.url === '/streamed') stream(res, [16 * 1024], STREAMED);
      else if (req.url === '/oddchunk') stream(res, [1, 7, 4093, 65_537, 333], STREAMED);
      else if (req.url === '/flood') {
        flooded = 0;
        const chunk = Buffer.alloc(64 * 1024, 0x62);
        const pump = (): void => {
          while (flooded < FLOOD && !res.destroyed) {
            flooded += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        res.on('close', () => floodClosed.splice(0).forEach((f) => f()));
        pump();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // The streams that stall are answered within the time limit only if the host stops reading them by itself:
    // when it waited for their end, the guest got "no complete answer" (a value it could pay for), not out_of_gas.
    host = await Host.open({ poolSize: 1, fetch: { allow: [origin], maxResponseBytes: 48 << 20, timeoutMs: 10_000 } });
    const p = new Probe(64 * 1024);
    const none = p.buf(new Uint8Array(0));
    for (const route of ['small', 'declared', 'streamed', 'oddchunk', 'flood']) {
      p.method(route, `(drop ${call('fetch', p.buf(`${origin}/${route}`), p.buf('GET'), p.buf(new Uint8Array(4)), none, 1)}) (call $ret_reg (i64.const 1))`);
    }
    code = await host.deploy(await p.build());
  });
  after(() => closeBoth(host, server));

  const run = (method: string, gasLimit: bigint) => host.call({ codeHash: code, method, contextId: ctx, gasLimit });

  test('a body longer than the gas pays for, declared or streamed: out_of_gas, without waiting for the body', async () => {
    const small = await run('small', 10n ** 12n);
    assert.equal(Buffer.from(returned(small)).toString(), 'hi', show(small));
    // Enough for a reason of a few hundred bytes ("no complete answer within ..."), not for the bodies.
    const gasLimit = small.gasUsed + 100_000n;
    for (const method of ['declared', 'streamed', 'oddchunk']) {
      const o = await run(method, gasLimit);
      assert.equal(o.result.code, 'vm_error', `${method}: ${show(o)}`);
      assert.match((o.result as { message: string }).message, /^out_of_gas/, method);
      assert.equal(o.gasUsed, gasLimit, method);
    }
  });

  test('a body the host could read as fast as it likes: it stops once the gas is passed', async () => {
    const small = await run('small', 10n ** 12n);
    const closed = new Promise<void>((resolve) => floodClosed.push(resolve));
    const o = await run('flood', small.gasUsed + 100_000n);
    assert.match((o.result as { message?: string }).message ?? '', /^out_of_gas/, show(o));
    await closed;
    // What the server got rid of: what the host read, plus what the sockets between them buffer (a few MiB at
    // most), not the whole body (32 MiB before: read, then refused as unaffordable).
    assert.ok(flooded < FLOOD / 2, `the server wrote ${flooded} bytes of ${FLOOD}`);
  });

  test('on the host\'s session: unaffordable with one byte more than the gas pays for, however the body arrives', async () => {
    const real = (host as unknown as { backend: SessionBackend }).backend;
    const gasLimit = 3_000_000n;
    const answers: unknown[] = [];
    // URLs of one length: the same request bytes, so the same gas left for the answer.
    for (const route of ['declared', 'streamed', 'oddchunk']) {
      const job = new Job(message({ codeHash: code, method: 'm', contextId: ctx, gasLimit }));
      const session = new Session(real, { oneShot: job });
      session.handle(encodeRequest('hello', { minVersion: 1, maxVersion: 1, vmVersion: 'test', pid: 1, proof: new Uint8Array(32) }));
      const request = encodeRequest('http_fetch', { url: `${origin}/${route}`, method: 'GET', headers: [], body: new Uint8Array(0) });
      const answer = decodeResponse('http_fetch', await session.handle(request));
      assert.equal(answer.status, 'unaffordable', route);
      // The host booked the request and those bytes: one byte fewer and the gas would have paid.
      const bytes = (answer.fields as { bytes: number }).bytes;
      assert.ok(roundTripGas(job.guest) > gasLimit, route);
      assert.equal(answerBytesAffordable({ ...job.guest, bytes: job.guest.bytes - bytes }, gasLimit), bytes - 1, route);
      answers.push(answer);
    }
    assert.deepEqual(answers[0], answers[1]);
    assert.deepEqual(answers[1], answers[2]);
  });
});
