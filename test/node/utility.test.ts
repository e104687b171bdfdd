/**
 * Utility functions through real VM processes: fetch (blocked by default, allowed origins reached by the host
 * against a local HTTP server), random_bytes and time_now derived from the message, and ed25519_verify.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { callSeed, randomBlock } from '../../src/protocol/call-ids.js';
import { buildMessage, datetimeToNanos, parseMessage } from '../../src/protocol/message.js';
import { MAX_FETCH_HEADERS } from '../../src/protocol/node-limits.js';
import { isEd25519Point } from '../../src/vm/ed25519.js';
import { contract, id32, utf8 } from '../helpers.js';
import { callJson, hex, jsonOf, openHost, type TestHost } from './helpers.js';
import { assertVmError, call, Probe, returned, returnedU64 } from './probe.js';

const ctx = id32('utility-ctx');

function startServer(): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/hello') res.end('hi there');
      else if (req.url === '/echo') res.end(`${req.method} ${req.headers['x-test'] ?? '-'} ${Buffer.concat(chunks).toString()}`);
      else if (req.url === '/redirect') res.writeHead(302, { location: '/hello' }).end();
      else if (req.url === '/big') {
        // No content-length: the limit must hold while streaming.
        for (let i = 0; i < 4; i++) res.write('x'.repeat(512));
        res.end();
      } else if (req.url === '/slow') {
        // Never answers: only the host's time limit ends the request.
      } else res.writeHead(404).end('no');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('fetch', () => {
  let server: Server;
  let origin: string;
  let blocked: TestHost;
  let allowed: Host;
  /** The same policy with a short time limit, for the one request that never answers. */
  let impatient: Host;
  let calls: Uint8Array;
  let probe: Uint8Array;
  const fetchVia = (host: Host, input: object) => callJson(host, calls, 'http_fetch', input, { contextId: ctx });

  before(async () => {
    server = await startServer();
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    blocked = await openHost({ poolSize: 1 });
    // Requests that get an answer must not depend on how fast a loaded machine answers them: a generous
    // limit for those; the time limit itself is checked against a server that never answers.
    allowed = await Host.open({ poolSize: 1, fetch: { allow: [origin], timeoutMs: 60_000, maxResponseBytes: 1024 } });
    impatient = await Host.open({ poolSize: 1, fetch: { allow: [origin], timeoutMs: 300, maxResponseBytes: 1024 } });
    calls = await blocked.host.deploy(contract('host-calls'));
    await allowed.deploy(contract('host-calls'));
    await impatient.deploy(contract('host-calls'));
    const p = new Probe();
    const url = p.buf(`${origin}/hello`);
    const get = p.buf('GET');
    const noHeaders = p.buf(new Uint8Array(0));
    const body = p.buf(new Uint8Array(0));
    const badUtf8 = p.buf(Uint8Array.of(0x68, 0xff));
    const oob = p.desc(1 << 30, 4);
    const longUrl = p.buf('h'.repeat(8193));
    const truncatedHeaders = p.buf(Uint8Array.of(1, 0, 0, 0, 5, 0, 0, 0, 0x61));
    const badHeader = p.buf(Uint8Array.of(1, 0, 0, 0, 1, 0, 0, 0, 0xff, 1, 0, 0, 0, 0x61));
    p.method('blocked_code', `(call $ret_i64 (i64.extend_i32_u ${call('fetch', url, get, noHeaders, body, 3)}))`);
    p.method('blocked_message', `(drop ${call('fetch', url, get, noHeaders, body, 3)}) (call $ret_reg (i64.const 3))`);
    p.method('bad_url', `(drop ${call('fetch', badUtf8, get, noHeaders, body, 0)})`);
    p.method('bad_method', `(drop ${call('fetch', url, badUtf8, noHeaders, body, 0)})`);
    p.method('bad_header', `(drop ${call('fetch', url, get, badHeader, body, 0)})`);
    p.method('truncated_headers', `(drop ${call('fetch', url, get, truncatedHeaders, body, 0)})`);
    p.method('oob_url', `(drop ${call('fetch', oob, get, noHeaders, body, 0)})`);
    p.method('oob_body', `(drop ${call('fetch', url, get, noHeaders, oob, 0)})`);
    p.method('long_url', `(drop ${call('fetch', longUrl, get, noHeaders, body, 0)})`);
    // Empty headers, as many as a fetch may send, and one more: each costs the host a decode, so they are counted.
    const emptyHeaders = (n: number): Uint8Array => {
      const b = Buffer.alloc(4 + 8 * n);
      b.writeUInt32LE(n, 0);
      return Uint8Array.from(b);
    };
    p.method('most_headers', `(call $ret_i64 (i64.extend_i32_u ${call('fetch', url, get, p.buf(emptyHeaders(MAX_FETCH_HEADERS)), body, 0)}))`);
    p.method('too_many_headers', `(drop ${call('fetch', url, get, p.buf(emptyHeaders(MAX_FETCH_HEADERS + 1)), body, 0)})`);
    probe = await blocked.host.deploy(await p.build());
  });
  after(async () => {
    await Promise.all([blocked.close(), allowed.close(), impatient.close()]);
    server.closeAllConnections();
    server.close();
  });

  test('blocked by default: returns 1 with the reason in the register, nothing is requested', async () => {
    const out = jsonOf(await fetchVia(blocked.host, { url: `${origin}/hello` })) as { ok: boolean; body: string };
    assert.equal(out.ok, false);
    assert.match(out.body, /^fetch blocked: the host's policy does not allow http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(returnedU64(await blocked.host.call({ codeHash: probe, method: 'blocked_code', contextId: ctx })), 1n);
    assert.match(Buffer.from(returned(await blocked.host.call({ codeHash: probe, method: 'blocked_message', contextId: ctx }))).toString(), /^fetch blocked/);
  });

  test('an allowed origin is fetched by the host: body, method, headers and request body', async () => {
    assert.deepEqual(jsonOf(await fetchVia(allowed, { url: `${origin}/hello` })), { ok: true, body: 'hi there' });
    const echo = jsonOf(await fetchVia(allowed, { url: `${origin}/echo`, method: 'POST', headers: { 'x-test': 'yes' }, body: 'payload' }));
    assert.deepEqual(echo, { ok: true, body: 'POST yes payload' });
  });

  test('failures return 1 with a reason: status, redirect, size, time, other origins and methods', async () => {
    const reason = async (input: object, host = allowed): Promise<string> => {
      const out = jsonOf(await fetchVia(host, input)) as { ok: boolean; body: string };
      assert.equal(out.ok, false, JSON.stringify(out));
      return out.body;
    };
    assert.equal(await reason({ url: `${origin}/missing` }), 'fetch failed: HTTP status 404');
    assert.equal(await reason({ url: `${origin}/redirect` }), 'fetch failed: HTTP status 302', 'redirects are not followed');
    assert.equal(await reason({ url: `${origin}/big` }), 'fetch failed: the response is larger than 1024 bytes');
    assert.equal(await reason({ url: `${origin}/slow` }, impatient), 'fetch failed: no complete answer within 300 ms');
    assert.match(await reason({ url: 'http://127.0.0.2:9/x' }), /does not allow http:\/\/127\.0\.0\.2:9/);
    assert.match(await reason({ url: `${origin}/hello`, method: 'TRACE' }), /method "TRACE" is not one of/);
    assert.match(await reason({ url: 'not a url' }), /is not a URL/);
  });

  test('strings must be UTF-8, headers Borsh, descriptors in bounds, the URL short enough', async () => {
    const run = (method: string) => blocked.host.call({ codeHash: probe, method, contextId: ctx });
    assertVmError(await run('bad_url'), 'BadUTF8', 'fetch');
    assertVmError(await run('bad_method'), 'BadUTF8', 'fetch');
    assertVmError(await run('bad_header'), 'BadUTF8', 'fetch');
    assertVmError(await run('truncated_headers'), 'DeserializationError', 'fetch');
    assertVmError(await run('oob_url'), 'InvalidMemoryAccess', 'fetch');
    assertVmError(await run('oob_body'), 'InvalidMemoryAccess', 'fetch');
    assertVmError(await run('long_url'), 'ValueLengthOverflow', 'fetch');
    // 8,191 empty headers fit the 64 KiB of header bytes and cost the host 3.5 ms a request for 0.4 ms of gas.
    assertVmError(await run('too_many_headers'), 'ValueLengthOverflow', 'fetch');
    const most = await run('most_headers');
    assert.equal(most.result.code, 'return', JSON.stringify(most.result));
  });
});

describe('random_bytes, time_now, ed25519_verify', () => {
  let t: TestHost;
  let host: Host;
  let calls: Uint8Array;
  let probe: Uint8Array;
  const seed = id32('a seed');
  const runJson = (method: string, input: object, extra: { seed?: Uint8Array; datetime?: string } = {}) =>
    callJson(host, calls, method, input, { contextId: ctx, ...extra });
  const runProbe = (method: string) => host.call({ codeHash: probe, method, contextId: ctx, seed });

  before(async () => {
    t = await openHost({ poolSize: 1 });
    host = t.host;
    calls = await host.deploy(contract('host-calls'));
    const p = new Probe();
    const two = p.out(32);
    const time7 = p.out(7);
    const oob = p.desc(1 << 30, 8);
    const sig = p.buf(new Uint8Array(64));
    const key = p.buf(new Uint8Array(32));
    const msg = p.buf('m');
    p.method('random_twice', `${call('random_bytes', p.desc(two.at, 16))} ${call('random_bytes', p.desc(two.at + 16, 16))}
      (call $ret_mem (i64.const ${two.at}) (i64.const 32))`);
    p.method('random_oob', `${call('random_bytes', oob)}`);
    // 16 bytes here, then 16 in a sandbox (its register 1 holds them): one stream, continued.
    const sub = p.buf('random_sub');
    const empty = p.buf('');
    const eight = p.out(16);
    p.method('random_then_sandbox', `${call('random_bytes', p.desc(two.at, 16))} (drop ${call('sandbox', sub, empty, '(i32.const 0)', 1)}) ${call('ret_reg', 1)}`);
    p.method('random_sub', `${call('random_bytes', eight.desc)} ${call('ret_mem', eight.at, 16)}`);
    p.method('time_short', `${call('time_now', time7.desc)}`);
    p.method('time_oob', `${call('time_now', oob)}`);
    p.method('verify_oob_message', `(drop ${call('ed25519_verify', sig, key, oob)})`);
    p.method('verify_oob_signature', `(drop ${call('ed25519_verify', oob, key, msg)})`);
    probe = await host.deploy(await p.build());
  });
  after(() => t.close());

  test('random_bytes: the seed stream, continued across calls in one execution, the same on every run', async () => {
    const expected = Buffer.concat([randomBlock(seed, 0n), randomBlock(seed, 1n)]);
    assert.equal(jsonOf(await runJson('random', { n: 40 }, { seed })), expected.subarray(0, 40).toString('hex'));
    assert.equal(jsonOf(await runJson('random', { n: 40 }, { seed })), expected.subarray(0, 40).toString('hex'), 'replayable');
    assert.equal(hex(returned(await runProbe('random_twice'))), expected.subarray(0, 32).toString('hex'), 'two calls continue one stream');
    const input = utf8(JSON.stringify({ n: 8 }));
    const derived = callSeed(parseMessage(buildMessage({ codeHash: calls, method: 'random', input, contextId: ctx })));
    assert.equal(jsonOf(await host.call({ codeHash: calls, method: 'random', input, contextId: ctx })), hex(randomBlock(derived, 0n).subarray(0, 8)), 'without a seed: the message hash');
    const otherInput = jsonOf(await host.call({ codeHash: calls, method: 'random', input: utf8(JSON.stringify({ n: 8, x: 1 })), contextId: ctx }));
    assert.notEqual(otherInput, hex(randomBlock(derived, 0n).subarray(0, 8)));
    assert.equal(jsonOf(await runJson('random', { n: 0 }, { seed })), '');
    assertVmError(await runProbe('random_oob'), 'InvalidMemoryAccess', 'random_bytes');
  });

  test('random_bytes: a sandbox continues its caller\'s stream, never replays it', async () => {
    const expected = Buffer.concat([randomBlock(seed, 0n), randomBlock(seed, 1n)]);
    // The sandbox's return value, as the caller's register holds it: a code byte (0: returned), then its 16 bytes.
    const r = Buffer.from(returned(await runProbe('random_then_sandbox')));
    assert.equal(r.subarray(r.length - 16).toString('hex'), expected.subarray(16, 32).toString('hex'));
  });

  test('time_now: the message datetime in nanoseconds, exactly; the buffer must be 8 bytes', async () => {
    const datetime = '2026-01-02T03:04:05.123456789Z';
    assert.equal(jsonOf(await runJson('now', {}, { datetime })), datetimeToNanos(datetime).toString());
    assert.equal(jsonOf(await runJson('now', {})), datetimeToNanos('2024-11-26T06:42:42.424242Z').toString(), 'the default datetime');
    assertVmError(await runProbe('time_short'), 'InvalidMemoryAccess', 'time_now');
    assertVmError(await runProbe('time_oob'), 'InvalidMemoryAccess', 'time_now');
  });

  test('ed25519_verify: valid, tampered, wrong sizes, unparseable key', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const pk = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
    const signature = sign(null, Buffer.from('hello'), privateKey);
    const verify = (over: object) => runJson('verify', { signature: hex(signature), public_key: hex(pk), message: 'hello', ...over });
    assert.equal(jsonOf(await verify({})), true);
    assert.equal(jsonOf(await verify({ message: 'hellO' })), false);
    const flipped = Buffer.from(signature);
    flipped[0]! ^= 1;
    assert.equal(jsonOf(await verify({ signature: hex(flipped) })), false);
    assertVmError(await verify({ signature: hex(signature.subarray(1)) }), 'InvalidMemoryAccess', 'ed25519_verify');
    assertVmError(await verify({ public_key: hex(pk.subarray(1)) }), 'InvalidMemoryAccess', 'ed25519_verify');
    // Not a curve point (checked with RFC 8032 §5.1.3's recovery in the test below's oracle).
    const notAPoint = '00112233445566778899aabbccddeeff102132435465768798a9bacbdcedfe0f';
    assertVmError(await verify({ public_key: notAPoint }), 'Ed25519IncorrectPublicKey', 'ed25519_verify');
    assertVmError(await runProbe('verify_oob_message'), 'InvalidMemoryAccess', 'ed25519_verify');
    assertVmError(await runProbe('verify_oob_signature'), 'InvalidMemoryAccess', 'ed25519_verify');
  });

  test('the key check agrees with RFC 8032 point recovery and accepts real keys', () => {
    const P = (1n << 255n) - 19n;
    const pow = (b: bigint, e: bigint): bigint => {
      let r = 1n;
      for (b %= P; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
      return r;
    };
    const d = ((-121665n * pow(121666n, P - 2n)) % P) + P;
    const recovers = (bytes: Uint8Array): boolean => {
      let y = 0n;
      for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? bytes[i]! & 0x7f : bytes[i]!);
      y %= P;
      const u = (y * y - 1n + P) % P;
      const v = (d * y * y + 1n) % P;
      const x = (((u * pow(v, 3n)) % P) * pow((u * pow(v, 7n)) % P, (P - 5n) / 8n)) % P;
      const vx2 = (((v * x) % P) * x) % P;
      return vx2 === u || vx2 === (P - u) % P;
    };
    let rejected = 0;
    for (let i = 0; i < 300; i++) {
      const b = Uint8Array.from({ length: 32 }, (_, j) => (i * 131 + j * 17 + (i >> 3) * j) & 0xff);
      assert.equal(isEd25519Point(b), recovers(b), Buffer.from(b).toString('hex'));
      if (!recovers(b)) rejected++;
    }
    assert.ok(rejected > 50, 'about half of all 32-byte strings are not points');
    for (let i = 0; i < 20; i++) {
      const raw = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
      assert.equal(isEd25519Point(raw), true);
    }
  });
});
