/**
 * `hostlink serve` against clients that try to stall or starve it rather than use it: JSON bodies whose parse
 * would cost far more than their size, and call inputs of the same kind. A real server process, real sockets,
 * real VM processes; every case ends with the node still answering others.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MAX_ABI_BYTES, MAX_REQUEST_JSON_DEPTH, MAX_REQUEST_JSON_ITEMS } from '../../src/protocol/bounds.generated.js';
import { contractPath, tempDir } from '../helpers.js';
import { MAX_SHOWN_VALUE_BYTES } from '../../src/server/inventory.js';
import { MAX_LISTED_OUTCOME_BYTES } from '../../src/server/records.js';
import { MAX_CONNECTIONS, MAX_REQUESTS_PER_CONNECTION } from '../../src/server/server.js';
import { api, deployKvStore, startServe, type ServeProcess } from './serve-process.js';
import { leb as lebBytes } from '../host/big-modules.js';

const leb = (n: number): Buffer => Buffer.from(lebBytes(n));

/** One request on a connection of its own (fetch would reuse a pooled connection the node may have closed). */
function fresh(url: string, path: string, json?: unknown): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  const body = json === undefined ? undefined : JSON.stringify(json);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path, method: body === undefined ? 'GET' : 'POST', agent: false, headers: body === undefined ? {} : { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const kvBytes = readFileSync(contractPath('kv-store'));

describe('hostlink serve against hostile clients', () => {
  const dir = tempDir();
  let node: ServeProcess;
  let kv: string;
  before(async () => {
    node = await startServe(['--data-dir', join(dir.path, 'data')]);
    kv = await deployKvStore(node);
  });
  const flood: Socket[] = [];
  after(async () => {
    for (const s of flood) s.destroy();
    if (node.child.exitCode === null) await node.stop();
    dir.remove();
  });

  const post = (path: string, body: string) => api(`${node.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  test('a JSON body of many small values or deep nesting is refused before it is parsed, on REST and JSON-RPC', async () => {
    const many = `{"jsonrpc":"2.0","method":"info","id":1,"pad":[${'{},'.repeat(MAX_REQUEST_JSON_ITEMS)}{}]}`;
    const deep = `{"jsonrpc":"2.0","method":"info","id":1,"pad":${'['.repeat(MAX_REQUEST_JSON_DEPTH + 1)}${']'.repeat(MAX_REQUEST_JSON_DEPTH + 1)}}`;
    const keys = `{"jsonrpc":"2.0","method":"info","id":1,"pad":{${Array.from({ length: MAX_REQUEST_JSON_ITEMS }, (_, i) => `"k${i}":0`).join(',')}}}`;
    for (const path of ['rpc', 'api/calls', 'api/views']) {
      for (const [body, why] of [
        [many, /more than 10000 values and keys \(max_request_json_items\)/],
        [keys, /more than 10000 values and keys \(max_request_json_items\)/],
        [deep, /more than 64 brackets deep \(max_request_json_depth\)/],
        ['{"jsonrpc":"2.0","method":"info",}', /not valid JSON \(unexpected character at position 33\)/],
      ] as const) {
        const r = await post(path, body);
        assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body).slice(0, 200)}`);
        assert.match(r.body.error, why);
      }
    }
    // Under the bounds, the same shapes pass.
    const fine = await post('rpc', `{"jsonrpc":"2.0","method":"info","id":1,"pad":[${'{},'.repeat(100)}{}],"deep":${'['.repeat(MAX_REQUEST_JSON_DEPTH - 1)}${']'.repeat(MAX_REQUEST_JSON_DEPTH - 1)}}`);
    assert.equal(fine.status, 200, JSON.stringify(fine.body));
    assert.equal(fine.body.result.version.length > 0, true);
  });

  test("a call's input is validated without being built: large nested input reaches the contract, malformed input is refused", async () => {
    const nested = '['.repeat(200_000) + ']'.repeat(200_000);
    const viaRpc = await post('rpc', JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'call', params: { code: kv, method: 'get', input: nested } }));
    assert.equal(viaRpc.status, 200);
    assert.equal(viaRpc.body.error, undefined, JSON.stringify(viaRpc.body.error));
    assert.equal(typeof viaRpc.body.result.call_id, 'number', 'the call ran');
    for (const [input, at] of [['[1,2', 4], ['{"key":"a"} x', 12], ['"\\q"', 2], [`${'['.repeat(300_000)}]`, 300_001]] as const) {
      const r = await api(`${node.url}api/calls`, { json: { code: kv, method: 'get', input } });
      assert.equal(r.status, 400, input.slice(0, 40));
      assert.equal(r.body.error, `field 'input' is not valid JSON (unexpected character at position ${at}); use input_hex for raw bytes`);
    }
    // Raw input of 5 MB (10 million hex digits, under max_input_bytes) is checked, not a stack overflow (500).
    const hex = await post('rpc', JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'call', params: { code: kv, method: 'get', input_hex: 'ab'.repeat(5_000_000) } }));
    assert.equal(hex.body.error, undefined, JSON.stringify(hex.body.error));
    assert.equal(typeof hex.body.result.call_id, 'number', 'the call ran');
    const odd = await post('rpc', JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'call', params: { code: kv, method: 'get', input_hex: 'abc' } }));
    assert.deepEqual(odd.body.error, { code: -32602, message: "field 'input_hex' must be an even number of hex digits" });
    // The node still serves.
    assert.equal((await api(`${node.url}api/calls`, { json: { code: kv, method: 'set', input: '{"key":"a","value":"b"}' } })).body.outcome.result, 'return');
    assert.equal((await api(`${node.url}api/calls`, { json: { code: kv, method: 'get', input: '{"key":"a"}' } })).body.outcome.value, '"b"');
  });

  test("a context's state is listed within bounds: long values cut, a large context in part, and the node still serves", { timeout: 120_000 }, async () => {
    const big = 'v'.repeat(6 * 1024 * 1024);
    for (const [key, value] of [['small', 'x'], ['b1', big], ['b2', big], ['b3', big], ['b4', big]] as const) {
      const r = await post('rpc', JSON.stringify({ jsonrpc: '2.0', id: key, method: 'call', params: { code: kv, method: 'set', context: 'big', gas: '1000000000000000', input: JSON.stringify({ key, value }) } }));
      assert.equal(r.body.result?.outcome?.result, 'return', JSON.stringify(r.body).slice(0, 300));
    }
    const state = await api(`${node.url}api/contexts/big/state`);
    assert.equal(state.status, 200);
    assert.equal(state.body.complete, false, 'four 6 MiB values are more than one answer reads');
    assert.ok(state.body.entries.length < 6, `${state.body.entries.length} entries`); // of six: the five keys and kv-store's index
    assert.ok(state.body.entries.some((e: { truncated?: boolean }) => e.truncated), 'a long value is listed, cut');
    for (const e of state.body.entries) {
      if (e.key === 'e:small') assert.deepEqual(e, { key: 'e:small', value: 'x' });
      else if (/^e:b\d$/.test(e.key)) assert.deepEqual([e.value.length, e.bytes, e.truncated], [MAX_SHOWN_VALUE_BYTES, big.length, true], e.key);
    }
    const small = await api(`${node.url}api/contexts/default/state`);
    assert.equal(small.body.complete, true);
    assert.deepEqual(small.body.entries.find((e: { key: string }) => e.key === 'e:a'), { key: 'e:a', value: 'b' });
    const viaRpc = await post('rpc', JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'state', params: { context: 'big' } }));
    assert.equal(viaRpc.body.result.complete, false);
    assert.equal((await api(`${node.url}healthz`)).status, 200);
  });

  test('recent calls are listed with their outcomes cut: a list is not every kept outcome at once', { timeout: 60_000 }, async () => {
    const value = 'w'.repeat(60_000);
    const set = await post('rpc', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'call', params: { code: kv, method: 'set', context: 'listed', input: JSON.stringify({ key: 'w', value }) } }));
    assert.equal(set.body.result?.outcome?.result, 'return', JSON.stringify(set.body).slice(0, 300));
    const ids: number[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await api(`${node.url}api/calls`, { json: { code: kv, method: 'get', context: 'listed', input: '{"key":"w"}' } });
      assert.equal(r.body.outcome.value.length, value.length + 2, 'the caller gets the whole outcome');
      ids.push(r.body.call_id as number);
    }
    for (const listing of [(await api(`${node.url}api/calls?limit=500`)).body, (await post('rpc', JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'recent_calls', params: { limit: 500 } }))).body.result]) {
      const gets = (listing as { call_id: number; outcome: Record<string, unknown> }[]).filter((r) => ids.includes(r.call_id));
      assert.equal(gets.length, ids.length);
      for (const r of gets) {
        assert.ok(JSON.stringify(r.outcome).length <= MAX_LISTED_OUTCOME_BYTES, `a listed outcome of ${JSON.stringify(r.outcome).length} bytes`);
        assert.ok((r.outcome['omitted_bytes'] as Record<string, number>)['value']! > value.length, JSON.stringify(r.outcome['omitted_bytes']));
      }
    }
    const one = await api(`${node.url}api/calls/${ids[0]}`);
    assert.equal(one.body.outcome.value.length, value.length + 2, "the call's own record keeps its outcome");
  });

  test('a module whose embedded ABI is deeply nested or huge is described from its exports; describing it never ends the node', { timeout: 60_000 }, async () => {
    const withAbi = (json: string): Buffer => {
      const name = Buffer.from('hostlink.abi');
      const payload = Buffer.concat([leb(name.length), name, Buffer.from(json)]);
      return Buffer.concat([kvBytes, Buffer.from([0]), leb(payload.length), payload]); // a custom section at the end
    };
    const deep = 200_000;
    for (const json of [
      `{"format":"hostlink-abi/1","events":[],"methods":[{"name":"get","input":${'['.repeat(deep)}${']'.repeat(deep)}}]}`,
      `{"format":"hostlink-abi/1","events":[],"methods":[${'{"name":"m"},'.repeat(60_000)}{"name":"m"}]}`,
      '{"format":"hostlink-abi/1","events":[],"methods":[{}]}',
    ]) {
      const deployed = await api(`${node.url}api/codes`, { method: 'POST', headers: { 'content-type': 'application/wasm' }, body: withAbi(json) });
      assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
      const described = await api(`${node.url}api/codes/${deployed.body.code_hash}`);
      assert.equal(described.status, 200, JSON.stringify(described.body).slice(0, 300));
      assert.equal(described.body.abi_embedded, false, 'the section is ignored');
      assert.ok(described.body.methods.includes('set') && described.body.methods.includes('get'), 'the methods come from the exports');
    }
    assert.equal((await api(`${node.url}healthz`)).status, 200, 'the node is up');
  });

  test('an embedded ABI over max_abi_bytes is ignored, not parsed and sent back whole on every request', { timeout: 60_000 }, async () => {
    const withAbi = (json: string): Buffer => {
      const name = Buffer.from('hostlink.abi');
      const payload = Buffer.concat([leb(name.length), name, Buffer.from(json)]);
      return Buffer.concat([kvBytes, Buffer.from([0]), leb(payload.length), payload]);
    };
    // Few values, many bytes: within the depth and item bounds, so only the byte bound stands in its way.
    const abiOf = (bytes: number): string => {
      const head = '{"format":"hostlink-abi/1","events":[],"methods":[{"name":"get","doc":"reads"}],"notes":"';
      return head + 'n'.repeat(bytes - head.length - 2) + '"}';
    };
    for (const [bytes, embedded] of [[MAX_ABI_BYTES, true], [MAX_ABI_BYTES + 1, false], [9 * 1024 * 1024, false]] as const) {
      const deployed = await api(`${node.url}api/codes`, { method: 'POST', headers: { 'content-type': 'application/wasm' }, body: withAbi(abiOf(bytes)) });
      assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
      for (let i = 0; i < 2; i++) {
        const described = await api(`${node.url}api/codes/${deployed.body.code_hash}`);
        assert.equal(described.status, 200);
        // Before, a 9 MiB section was parsed and sent back whole on every request.
        assert.equal(described.body.abi_embedded, embedded, `${bytes} bytes`);
        assert.equal(described.body.abi.notes !== undefined, embedded);
        assert.ok(described.body.methods.includes('set') && described.body.methods.includes('get'));
      }
    }
  });

  test('a module refused for a huge name gets a short answer, not the name back', { timeout: 60_000 }, async () => {
    // One function import, env.<4 MiB name>: refused (import_not_allowed) with the name quoted. Uncut, 64 clients
    // deploying such modules and never reading their answers took the node past 2.6 GB.
    const name = Buffer.from('x'.repeat(4 * 1024 * 1024));
    const entry = Buffer.concat([Buffer.from([0x01]), leb(3), Buffer.from('env'), leb(name.length), name, Buffer.from([0x00, 0x00])]);
    const module = Buffer.concat([
      Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00]),
      Buffer.from([0x02]), leb(entry.length), entry,
    ]);
    const r = await api(`${node.url}api/codes`, { method: 'POST', headers: { 'content-type': 'application/wasm' }, body: module });
    assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
    const error = String(r.body.error);
    assert.ok(error.length < 1024, `the refusal is ${error.length} characters`);
    assert.match(error, /import_not_allowed: env\.x{64}… \(4194304 characters\): unknown host function/);
  });

  test('clients that send their bodies slowly hold none of the calls in flight: others are served', { timeout: 60_000 }, async () => {
    const limited = await startServe(['--data-dir', join(dir.path, 'limited'), '--max-calls', '2']);
    const slow: Socket[] = [];
    try {
      const deployed = await api(`${limited.url}api/codes`, { method: 'POST', headers: { 'content-type': 'application/wasm' }, body: kvBytes });
      const u = new URL(limited.url);
      for (const path of ['/api/calls', '/api/views', '/rpc', '/api/calls']) {
        const s = connect(Number(u.port), '127.0.0.1');
        slow.push(s);
        s.on('error', () => undefined);
        s.resume();
        // The headers and the first byte of a body that never comes whole.
        s.write(`POST ${path} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`);
      }
      // The node has read those headers by the time it answers a request sent after them.
      assert.equal((await fresh(limited.url, '/healthz')).status, 200);
      const call = await fresh(limited.url, '/api/calls', { code: deployed.body.code_hash, method: 'set', input: '{"key":"k","value":"v"}' });
      assert.equal(call.status, 200, call.body);
      assert.equal(JSON.parse(call.body).outcome.result, 'return');
    } finally {
      for (const s of slow) s.destroy();
      await limited.stop();
    }
  });

  test('as many connections as the node holds, each trickling a request body, cannot lock others out', { timeout: 60_000 }, async () => {
    // Every connection busy with a request whose body never comes whole: nothing idle to close, and newcomers
    // (healthz included) were refused for as long as the bodies trickled.
    const own = await startServe(['--data-dir', join(dir.path, 'trickle')]);
    const held: Socket[] = [];
    let closedByNode = 0;
    try {
      const u = new URL(own.url);
      await Promise.all(
        Array.from({ length: MAX_CONNECTIONS }, () =>
          new Promise<void>((resolve) => {
            const s = connect(Number(u.port), '127.0.0.1');
            held.push(s);
            s.on('error', () => undefined);
            s.once('close', () => closedByNode++);
            s.once('connect', () => {
              s.write(`POST /api/calls HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`);
              resolve();
            });
          }),
        ),
      );
      // Let the node read every request's headers (its answers to them never come: their bodies are not whole).
      await new Promise((r) => setTimeout(r, 500));
      const health = await fresh(own.url, '/healthz');
      assert.equal(health.status, 200, health.body);
      // The close reaches this side on its own: it may come after the newcomer's answer on a busy machine.
      for (let waited = 0; closedByNode === 0 && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      assert.ok(closedByNode >= 1, 'the oldest trickling connection made room');
    } finally {
      for (const s of held) s.destroy();
      await own.stop();
    }
  });

  // Last: the flood closes the keep-alive connections fetch pools (they are the oldest idle ones).
  test('connections that send nothing, or headers that never end, cannot lock others out: the oldest idle make room', { timeout: 60_000 }, async () => {
    const extra = 64;
    let closedByNode = 0;
    await Promise.all(
      Array.from({ length: MAX_CONNECTIONS + extra }, (_, i) =>
        new Promise<void>((resolve) => {
          const s = connect(Number(new URL(node.url).port), '127.0.0.1');
          flood.push(s);
          s.on('error', () => undefined);
          s.once('close', () => closedByNode++);
          s.once('connect', () => {
            if (i % 2 === 1) s.write('POST /api/calls HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // and never the rest
            resolve();
          });
        }),
      ),
    );
    const health = await fresh(node.url, '/healthz');
    assert.equal(health.status, 200, health.body);
    const call = await fresh(node.url, '/api/calls', { code: kv, method: 'get', input: '{"key":"a"}' });
    assert.equal(call.status, 200, call.body);
    assert.equal(JSON.parse(call.body).outcome.value, '"b"');
    for (let i = 0; i < 400 && closedByNode < extra; i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(closedByNode >= extra, `${closedByNode} flooding connections closed to keep the node at ${MAX_CONNECTIONS}`);
  });

  test('a client pipelining more than MAX_REQUESTS_PER_CONNECTION requests is closed, not served them all; one that waits keeps its connection', { timeout: 60_000 }, async () => {
    const port = Number(new URL(node.url).port);
    /** Sends `n` pipelined GETs of `path` at once; resolves with the answers read and whether the node closed. */
    const pipeline = (path: string, n: number, closeAfterAnswers: boolean): Promise<{ answers: number; closedByNode: boolean }> =>
      new Promise((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`.repeat(n)));
        flood.push(s);
        let text = '';
        let closedByNode = false;
        const answers = (): number => text.split('HTTP/1.1 ').length - 1;
        s.on('error', () => undefined);
        s.on('data', (c: Buffer) => {
          text += c.toString('latin1');
          if (closeAfterAnswers && answers() === n) s.destroy();
        });
        s.once('end', () => (closedByNode = true));
        s.once('close', () => resolve({ answers: answers(), closedByNode }));
      });
    // Within the bound: every answer, on a connection the node keeps open.
    assert.deepEqual(await pipeline('/healthz', MAX_REQUESTS_PER_CONNECTION, true), { answers: MAX_REQUESTS_PER_CONNECTION, closedByNode: false });
    // Before, 2,000 pipelined describe requests of a deployed code were all worked through, seconds of the
    // node's time, whether or not the client stayed: now the connection is closed at the first one past the bound.
    const flooded = await pipeline(`/api/codes/${kv}`, 2000, false);
    assert.ok(flooded.answers <= MAX_REQUESTS_PER_CONNECTION + 1, `${flooded.answers} answers on the flooding connection`);
    assert.equal(flooded.closedByNode, true);
    const health = await fresh(node.url, '/healthz');
    assert.equal(health.status, 200, health.body);
  });

  /** Opens a raw connection to the node, sends `head`, and hands the socket and what it reads to `then`. */
  const raw = (head: string, then: (s: Socket, read: () => string) => void = () => undefined): Promise<{ text: string; closedByNode: boolean; written: number }> =>
    new Promise((resolve) => {
      const port = Number(new URL(node.url).port);
      const s = connect(port, '127.0.0.1', () => {
        s.write(head);
        then(s, () => text);
      });
      flood.push(s);
      let text = '';
      let closedByNode = false;
      s.on('error', () => undefined);
      s.on('data', (c: Buffer) => (text += c.toString('latin1')));
      s.once('end', () => (closedByNode = true));
      const timer = setTimeout(() => s.destroy(), 15_000);
      s.once('close', () => {
        clearTimeout(timer);
        resolve({ text, closedByNode, written: s.bytesWritten });
      });
    });
  const GIB = 2 ** 30;
  const refusedAtHeaders: [string, string, string, number][] = [
    ['over --max-body', '/api/codes', 'application/wasm', 413],
    ['wrong Content-Type', '/api/calls', 'text/plain', 415],
    ['no such route', '/api/nothing', 'application/json', 404],
  ];

  test('Expect: 100-continue is answered 100 only when the headers pass: a refused upload is never asked for', { timeout: 60_000 }, async () => {
    const port = Number(new URL(node.url).port);
    for (const [name, path, type, status] of refusedAtHeaders) {
      const r = await raw(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: ${type}\r\nContent-Length: ${2 * GIB}\r\nExpect: 100-continue\r\n\r\n`);
      // Before, every request got 100 Continue, so clients sent 2 GB bodies the node then read and threw away.
      assert.doesNotMatch(r.text, /100 Continue/, name);
      assert.match(r.text, new RegExp(`^HTTP/1.1 ${status} `), name);
      assert.match(r.text, /connection: close/i, name);
      assert.equal(r.closedByNode, true, `${name}: the node closes the connection whose body it will not read`);
    }
    // Headers that pass are told to go on, and the call is served.
    const body = JSON.stringify({ code: kv, method: 'get', input: '{"key":"a"}' });
    const ok = await raw(`POST /api/calls HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`, (s, read) => {
      const wait = setInterval(() => {
        if (/100 Continue/.test(read())) {
          clearInterval(wait);
          s.write(body);
        }
      }, 10);
      s.once('close', () => clearInterval(wait));
    });
    assert.match(ok.text, /^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 200 /, ok.text.slice(0, 300));
  });

  test('a body refused at its headers is not read to its end: the node answers and closes the connection', { timeout: 60_000 }, async () => {
    const port = Number(new URL(node.url).port);
    const chunk = Buffer.alloc(64 * 1024);
    const cap = 256 * 1024 * 1024;
    // Refusals, and routes that take no body, answered by the server (healthz) or by their handler (metrics).
    const cases: [string, string, string, string, number][] = [
      ...refusedAtHeaders.map(([name, path, type, status]): [string, string, string, string, number] => [name, 'POST', path, type, status]),
      ['a route that takes no body', 'GET', '/healthz', 'application/json', 200],
      ['a handler that writes its own answer', 'GET', '/metrics', 'text/plain', 200],
    ];
    for (const [name, method, path, type, status] of cases) {
      // The client sends its body without waiting (no Expect), as fast as the node reads it, up to 256 MiB.
      const r = await raw(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: ${type}\r\nContent-Length: ${2 * GIB}\r\n\r\n`, (s) => {
        const pump = (): void => {
          while (!s.destroyed && s.bytesWritten < cap) if (!s.write(chunk)) return void s.once('drain', pump);
          if (!s.destroyed) s.end();
        };
        pump();
      });
      assert.match(r.text, new RegExp(`^HTTP/1.1 ${status} `), name);
      // Before, the node read the whole body to keep the connection (2 GB in about 12 s), and the client could send it.
      assert.equal(r.closedByNode, true, `${name}: the node closes the connection`);
      assert.ok(r.written < cap, `${name}: the client could write ${r.written} bytes of a refused body`);
    }
    const health = await fresh(node.url, '/healthz');
    assert.equal(health.status, 200, health.body);
  });

  test('a request past the pipelining bound that asks first (Expect: 100-continue) is refused without being told to go on', { timeout: 60_000 }, async () => {
    const port = Number(new URL(node.url).port);
    const requests = Array.from({ length: MAX_REQUESTS_PER_CONNECTION + 1 }, (_, i) => {
      const body = JSON.stringify({ code: kv, method: 'set', context: 'pipelined-expect', input: JSON.stringify({ key: `q${i}`, value: 'v' }) });
      const head = `POST /api/calls HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
      return i === MAX_REQUESTS_PER_CONNECTION ? `${head}Expect: 100-continue\r\n\r\n` : `${head}\r\n${body}`;
    });
    const r = await raw(requests.join(''));
    const statuses = [...r.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [...Array<number>(MAX_REQUESTS_PER_CONNECTION).fill(200), 503], r.text.slice(-600));
    assert.equal(r.closedByNode, true);
  });

  test('calls pipelined past the bound: every call the node applied is answered before it closes the connection', { timeout: 60_000 }, async () => {
    const port = Number(new URL(node.url).port);
    const n = MAX_REQUESTS_PER_CONNECTION + 4;
    const requests = Array.from({ length: n }, (_, i) => {
      const body = JSON.stringify({ code: kv, method: 'set', context: 'pipelined', input: JSON.stringify({ key: `p${i}`, value: 'v' }) });
      return `POST /api/calls HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    });
    const text = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write(requests.join('')));
      flood.push(s);
      let got = '';
      s.on('error', () => undefined);
      s.on('data', (c: Buffer) => (got += c.toString('latin1')));
      s.once('close', () => resolve(got));
    });
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    // Before, the connection was destroyed at the request past the bound: the calls before it were applied
    // and their callers never learnt it.
    assert.deepEqual(statuses, [...Array<number>(MAX_REQUESTS_PER_CONNECTION).fill(200), 503], text.slice(-600));
    assert.match(text, /connection: close/i);
    assert.match(text, /more than \d+ requests in progress on one connection: wait for answers/);
    const state = await api(`${node.url}api/contexts/pipelined/state`);
    // kv-store keeps each key as `e:KEY`, beside its index.
    const keys = (state.body.entries as { key: string }[]).map((e) => e.key).filter((k) => k.startsWith('e:')).sort();
    assert.deepEqual(keys, Array.from({ length: MAX_REQUESTS_PER_CONNECTION }, (_, i) => `e:p${i}`).sort(), 'exactly the answered calls were applied');
  });
});
