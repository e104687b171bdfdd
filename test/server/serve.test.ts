/**
 * `hostlink serve` as an operator runs it: a real process over a data directory, real HTTP, real VM processes.
 * The API end to end, the event stream, /metrics adding up after a burst, the limits (body size, calls in
 * flight), who may call (loopback Host/Origin checks, the token beyond loopback), and a graceful SIGTERM that
 * lets a call in flight finish, then a restart that finds everything committed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sum } from '../metrics/exposition.js';
import { contractPath, tempDir } from '../helpers.js';
import { api, runCli, startServe, type ServeProcess } from './serve-process.js';

const kvBytes = readFileSync(contractPath('kv-store'));
const holdBytes = readFileSync(contractPath('hold'));
const UNLIMITED_GAS = '1000000000000000';

async function deploy(url: string, bytes: Buffer, headers: Record<string, string> = {}): Promise<string> {
  const r = await api(`${url}api/codes`, { method: 'POST', headers: { 'content-type': 'application/wasm', ...headers }, body: bytes });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.code_hash as string;
}

/** A raw request with any Host/Origin header (fetch does not let a test set Host). */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A GET with a raw request target (fetch normalises paths; a hostile client does not). */
function rawPath(url: string, path: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, headers: { host: u.host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Waits until the node reports a VM busy with a call. */
async function untilBusy(url: string): Promise<void> {
  for (;;) {
    const info = await api(`${url}api/info`);
    if (info.body.busy_vm_pids.length > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('hostlink serve', () => {
  const dir = tempDir();
  const dataDir = join(dir.path, 'data');
  let node: ServeProcess;
  let kv: string;
  before(async () => {
    node = await startServe(['--data-dir', dataDir, '--max-body', '200000', '--max-calls', '32', '--deadline', '10000', '--commit-group', '2']);
    kv = await deploy(node.url, kvBytes);
  });
  after(async () => {
    if (node.child.exitCode === null) await node.stop();
    dir.remove();
  });

  test('deploy, call, state, contexts, codes, call records and traces over HTTP', async () => {
    assert.deepEqual((await api(`${node.url}healthz`)).body, { status: 'ok' });
    const set = await api(`${node.url}api/calls`, { json: { code: kv, method: 'set', input: '{"key":"a","value":"b"}', context: 'http' } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual([set.body.outcome.result, set.body.outcome.applied, set.body.reason], ['return', true, 'ok']);
    assert.deepEqual(set.body.outcome.logs, ['set a']);
    const get = await api(`${node.url}api/calls`, { json: { code: kv, method: 'get', input: '{"key":"a"}', context: 'http', mode: 'oneshot' } });
    assert.equal(get.body.outcome.value, '"b"');
    assert.ok(get.body.call_id > set.body.call_id);
    const state = await api(`${node.url}api/contexts/http/state`);
    assert.equal(state.body.root, get.body.outcome.state_root);
    assert.ok(state.body.entries.some((e: { key: string; value: string }) => e.key === 'e:a' && e.value === 'b'));
    const contexts = await api(`${node.url}api/contexts`);
    assert.ok(contexts.body.some((c: { context: string; root: string }) => c.context === state.body.context && c.root === state.body.root));
    const codes = await api(`${node.url}api/codes`);
    assert.ok(codes.body.some((c: { code_hash: string; bytes: number }) => c.code_hash === kv && c.bytes === kvBytes.length));
    const record = await api(`${node.url}api/calls/${set.body.call_id}`);
    assert.equal(record.body.method, 'set');
    assert.equal(record.body.trace.requests.at(-1).method, 'consume_result');
    assert.equal(record.body.trace.requests.length, record.body.round_trips);
    const trace = await api(`${node.url}api/calls/${set.body.call_id}/trace`);
    assert.deepEqual(trace.body, record.body.trace);
    const recent = await api(`${node.url}api/calls?limit=2`);
    assert.deepEqual(recent.body.map((c: { call_id: number }) => c.call_id), [get.body.call_id, set.body.call_id]);
    const failed = await api(`${node.url}api/calls`, { json: { code: kv, method: 'get_result', input: '{"key":"none"}', context: 'http' } });
    assert.equal(failed.status, 200, 'a failed execution is a result, not an HTTP error');
    assert.deepEqual([failed.body.outcome.result, failed.body.outcome.applied], ['user_error', false]);
  });

  test('a view runs against the committed state and applies nothing; a code lists its methods and ABI', async () => {
    await api(`${node.url}api/calls`, { json: { code: kv, method: 'set', input: '{"key":"v","value":"1"}', context: 'views' } });
    const before = await api(`${node.url}api/contexts/views/state`);
    const view = await api(`${node.url}api/views`, { json: { code: kv, method: 'set', input: '{"key":"v","value":"2"}', context: 'views' } });
    assert.equal(view.status, 200, JSON.stringify(view.body));
    assert.deepEqual([view.body.outcome.result, view.body.outcome.applied], ['return', false]);
    assert.ok(view.body.outcome.writes.some((w: { key: string; value: string }) => w.key === 'e:v' && w.value === '2'), 'the view reports what it would write');
    assert.deepEqual((await api(`${node.url}api/contexts/views/state`)).body, before.body, 'state untouched');
    const read = await api(`${node.url}rpc`, { json: { jsonrpc: '2.0', id: 1, method: 'view', params: { code: kv, method: 'get', input: '{"key":"v"}', context: 'views' } } });
    assert.equal(read.body.result.outcome.value, '"1"');
    const code = await api(`${node.url}api/codes/${kv}`);
    assert.ok(code.body.methods.includes('set') && code.body.methods.includes('get'), JSON.stringify(code.body.methods));
    assert.deepEqual(code.body.abi.methods.map((m: { name: string }) => m.name), code.body.methods);
  });

  test('a large outcome reaches its caller whole; the node keeps a summary of it, bounded', async () => {
    const value = 'x'.repeat(100_000);
    const set = await api(`${node.url}api/calls`, { json: { code: kv, method: 'set', input: JSON.stringify({ key: 'big', value }), context: 'big' } });
    assert.equal(set.body.outcome.writes.find((w: { key: string }) => w.key === 'e:big').value, value);
    const kept = await api(`${node.url}api/calls/${set.body.call_id}`);
    assert.deepEqual(kept.body.outcome.writes, []);
    assert.ok(kept.body.outcome.omitted_bytes.writes > 100_000);
    // Left out before it was rendered: noted by the bytes written (text shown as is, other bytes as 0x hex).
    const raw = (shown: string): number => (/^0x(?:[0-9a-f]{2})*$/.test(shown) ? (shown.length - 2) / 2 : Buffer.byteLength(shown));
    const written = set.body.outcome.writes.reduce((n: number, w: { key: string; value: string | null }) => n + raw(w.key) + (w.value === null ? 0 : raw(w.value)), 0);
    assert.equal(kept.body.outcome.omitted_bytes.writes, written);
    assert.equal(kept.body.outcome.state_root, set.body.outcome.state_root);
    assert.ok(JSON.stringify(kept.body.outcome).length < 64 * 1024);

    // A returned value too large to keep is left out before it is rendered (hex or text, then JSON, only to be
    // dropped: over a second of the node's CPU for 32 MiB), and noted by its bytes.
    const got = await api(`${node.url}api/calls`, { json: { code: kv, method: 'get', input: JSON.stringify({ key: 'big' }), context: 'big' } });
    assert.equal(got.body.outcome.value, JSON.stringify(value), 'the caller gets the whole value');
    const keptGet = await api(`${node.url}api/calls/${got.body.call_id}`);
    assert.equal(keptGet.body.outcome.value, null);
    assert.deepEqual(keptGet.body.outcome.omitted_bytes, { value: value.length + 2 }, 'the value noted by its bytes');
    assert.equal(keptGet.body.outcome.result, 'return');
  });

  test('JSON-RPC 2.0 reaches the same operations', async () => {
    const call = await api(`${node.url}rpc`, { json: { jsonrpc: '2.0', id: 7, method: 'call', params: { code: kv, method: 'get', input: '{"key":"a"}', context: 'http' } } });
    assert.equal(call.body.id, 7);
    assert.equal(call.body.result.outcome.value, '"b"');
    const bad = await api(`${node.url}rpc`, { json: { jsonrpc: '2.0', id: 8, method: 'nope' } });
    assert.equal(bad.body.error.code, -32601);
    // Names inherited from Object.prototype are not methods: `constructor` used to answer with the node's internals.
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      const inherited = await api(`${node.url}rpc`, { json: { jsonrpc: '2.0', id: 10, method: name } });
      assert.equal(inherited.status, 200, name);
      assert.equal(inherited.body.result, undefined, name);
      assert.equal(inherited.body.error.code, -32601, name);
      assert.match(inherited.body.error.message, new RegExp(`^unknown method '${name}'; methods: info, `), name);
    }
    const params = await api(`${node.url}rpc`, { json: { jsonrpc: '2.0', id: 9, method: 'call', params: { method: 'get' } } });
    assert.equal(params.body.error.code, -32602);
    assert.match(params.body.error.message, /field 'code' is required/);
  });

  test('the event stream delivers each outcome as it happens', async () => {
    const controller = new AbortController();
    const res = await fetch(`${node.url}api/events`, { signal: controller.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    const made = await api(`${node.url}api/calls`, { json: { code: kv, method: 'set', input: '{"key":"sse","value":"1"}', context: 'sse' } });
    let text = '';
    while (!text.includes(`"call_id":${made.body.call_id},`)) {
      const { value, done } = await reader.read();
      assert.ok(!done, 'stream ended early');
      text += Buffer.from(value).toString();
    }
    const frame = text.split('\n\n').find((f) => f.includes(`"call_id":${made.body.call_id},`))!;
    assert.match(frame, /^event: call\ndata: /);
    const data = JSON.parse(frame.split('data: ')[1]!);
    assert.deepEqual([data.method, data.outcome.result, data.outcome.state_root], ['set', 'return', made.body.outcome.state_root]);
    controller.abort();
  });

  test('/metrics adds up to the calls made during a burst', async () => {
    const before = await api(`${node.url}metrics`);
    const n0 = sum(before.body, 'hostlink_calls_total');
    const burst = Array.from({ length: 12 }, (_, i) =>
      api(`${node.url}api/calls`, { json: { code: kv, method: i % 3 === 0 ? 'get_result' : 'set', input: `{"key":"m${i}","value":"v"}`, context: `burst-${i % 5}` } }),
    );
    // Scrape while the burst runs: counters never exceed what was made.
    const during = await api(`${node.url}metrics`);
    assert.ok(sum(during.body, 'hostlink_calls_total') <= n0 + 12);
    const results = await Promise.all(burst);
    assert.ok(results.every((r) => r.status === 200));
    const text = (await api(`${node.url}metrics`)).body as string;
    assert.equal(sum(text, 'hostlink_calls_total') - n0, 12);
    assert.equal(sum(text, 'hostlink_calls_total', { method: 'get_result', result: 'user_error' }) - sum(before.body, 'hostlink_calls_total', { method: 'get_result', result: 'user_error' }), 4);
    assert.equal(sum(text, 'hostlink_calls_in_flight'), 0);
    assert.ok(sum(text, 'hostlink_http_requests_total', { route: 'call', status: '200' }) >= 12);
    assert.ok(sum(text, 'process_resident_memory_bytes') > 0, 'default process metrics are exported');
    // The 8 sets that returned wrote once each; commits carried them one or more at a time.
    const writes = sum(text, 'hostlink_commit_writes_total') - sum(before.body, 'hostlink_commit_writes_total');
    const commits = sum(text, 'hostlink_commits_total') - sum(before.body, 'hostlink_commits_total');
    assert.equal(writes, 8);
    assert.ok(commits >= 1 && commits <= writes, `${commits} commits for ${writes} writes`);
  });

  test('bad requests get one clear line and the right status', async () => {
    const url = `${node.url}api/calls`;
    const cases: [RequestInit, number, RegExp][] = [
      [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' }, 400, /not valid JSON/],
      [{ method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' }, 415, /Content-Type must be application\/json/],
      [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'ab'.repeat(32), method: 'get' }) }, 404, /deploy it first/],
      [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: kv, method: 'get', input: '{x' }) }, 400, /'input' is not valid JSON/],
      [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: kv, method: 'get', limits: { max_nothing: 1 } }) }, 400, /limits/],
      // Raising a limit of the node's: what bounds one call's stall of the node (its writes applied on the event loop).
      [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: kv, method: 'set', limits: { max_storage_writes: 8192 } }) }, 400, /max_storage_writes 8192 is above this node's 1024: a request may lower a limit, not raise it/],
      [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: kv, method: 'set', limits: { max_logs: 16, max_effect_bytes: 50331649 } }) }, 400, /max_effect_bytes 50331649 is above/],
      [{ method: 'DELETE' }, 405, /use POST or GET/],
    ];
    for (const [init, status, message] of cases) {
      const r = await api(url, init);
      assert.equal(r.status, status, `${JSON.stringify(init)} -> ${JSON.stringify(r.body)}`);
      assert.match(r.body.error, message);
      assert.ok(!r.body.error.includes('\n'));
    }
    const big = await api(`${node.url}api/codes`, { method: 'POST', headers: { 'content-type': 'application/wasm' }, body: Buffer.alloc(300_000) });
    assert.equal(big.status, 413);
    assert.match(big.body.error, /over the limit of 200000 bytes/);
    const notWasm = await api(`${node.url}api/codes`, { method: 'POST', headers: { 'content-type': 'application/wasm' }, body: Buffer.from('not wasm') });
    assert.equal(notWasm.status, 400);
    assert.equal((await api(`${node.url}nothing`)).status, 404);
    // Request targets that do not parse: a clear 400, never an uncaught exception that ends the node.
    for (const path of ['//', '//[', '/api/contexts/%E0%A4%A/state']) {
      const r = await rawPath(node.url, path);
      assert.equal(r.status, 400, `${path}: ${r.body}`);
      assert.match(JSON.parse(r.body).error, /malformed/);
    }
    // The node still serves after all that.
    assert.equal((await api(`${node.url}api/calls`, { json: { code: kv, method: 'get', input: '{"key":"a"}', context: 'http' } })).body.outcome.value, '"b"');
  });

  test('on loopback, a foreign Host (DNS rebinding) or Origin (another site) is refused', async () => {
    const port = new URL(node.url).port;
    const rebinding = await rawGet(`${node.url}api/codes`, { host: `attacker.example:${port}` });
    assert.equal(rebinding.status, 403);
    const cross = await rawGet(`${node.url}api/codes`, { origin: 'http://attacker.example' });
    assert.equal(cross.status, 403);
    const same = await rawGet(`${node.url}api/codes`, { origin: `http://127.0.0.1:${port}` });
    assert.equal(same.status, 200);
  });

  test('a request a browser marks as made by another site is refused, though it carries no Origin; the studio still opens from a link', async () => {
    // What Chromium sends for an <object>, <link rel=prefetch> or <iframe> on another site's page: no Origin.
    const fromPage = (site: string, mode = 'no-cors', dest = 'empty') => ({ 'sec-fetch-site': site, 'sec-fetch-mode': mode, 'sec-fetch-dest': dest });
    for (const path of [`api/codes/${kv}`, `api/codes/${'ab'.repeat(32)}`, 'api/calls/1', 'api/events', 'metrics', 'healthz']) {
      for (const site of ['cross-site', 'same-site']) {
        const r = await rawGet(`${node.url}${path}`, fromPage(site));
        assert.equal(r.status, 403, `${path} from a ${site} page: ${r.body}`);
        assert.match(JSON.parse(r.body).error, new RegExp(`request made by a ${site} page refused`));
      }
      // An event stream in another site's iframe is a navigation, and refused as well.
      assert.equal((await rawGet(`${node.url}${path}`, fromPage('cross-site', 'navigate', 'iframe'))).status, 403, path);
    }
    // The studio's own requests and an address typed by the user pass.
    assert.equal((await rawGet(`${node.url}api/codes/${kv}`, fromPage('same-origin', 'cors'))).status, 200);
    assert.equal((await rawGet(`${node.url}api/codes`, fromPage('none', 'navigate', 'document'))).status, 200);
    // A link on another site opens the studio as a page, but not inside that site's frame.
    assert.equal((await rawGet(node.url, fromPage('cross-site', 'navigate', 'document'))).status, 200);
    assert.equal((await rawGet(node.url, fromPage('cross-site', 'navigate', 'iframe'))).status, 403);
    assert.equal((await rawGet(`${node.url}studio.js`, fromPage('cross-site', 'no-cors', 'script'))).status, 403);
  });

  test('every answer tells browsers not to sniff its type and not to frame it', async () => {
    const url = new URL(node.url);
    for (const path of ['api/codes', `api/codes/${'ab'.repeat(32)}`, 'metrics', 'healthz', 'no/such/route']) {
      const headers = await new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
        request({ host: url.hostname, port: url.port, path: `/${path}` }, (res) => {
          res.resume();
          resolve(res.headers);
        })
          .on('error', reject)
          .end();
      });
      assert.equal(headers['x-content-type-options'], 'nosniff', path);
      assert.match(String(headers['content-security-policy']), /default-src 'none'; frame-ancestors 'none'/, path);
    }
    const stream = await fetch(`${node.url}api/events`);
    assert.equal(stream.headers.get('x-content-type-options'), 'nosniff');
    await stream.body!.cancel();
    // The studio keeps its own policy, which lets it load its script and stylesheet.
    const page = await fetch(node.url);
    assert.match(page.headers.get('content-security-policy')!, /^default-src 'self'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  });

  test('calls beyond --max-calls in flight get 503 with Retry-After; the node recovers', async () => {
    const limited = await startServe(['--data-dir', join(dir.path, 'limited'), '--max-calls', '1', '--deadline', '10000']);
    try {
      const hold = await deploy(limited.url, holdBytes);
      // A warm VM first: the slow call's 3 s deadline counts from its submission, and on a loaded machine
      // starting a VM could take most of it, leaving the call never seen busy.
      assert.equal((await api(`${limited.url}api/calls`, { json: { code: hold, method: 'write', context: 'warm' } })).body.outcome.result, 'return');
      const slow = api(`${limited.url}api/calls`, { json: { code: hold, method: 'write_then_loop', context: 'slow', gas: UNLIMITED_GAS, deadline_ms: 3000 } });
      await untilBusy(limited.url);
      const refused = await api(`${limited.url}api/calls`, { json: { code: hold, method: 'write', context: 'other' } });
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.match(refused.body.error, /busy: 1 calls in flight/);
      const done = await slow;
      assert.deepEqual([done.body.outcome.result, done.body.outcome.message], ['internal_error', 'timeout']);
      assert.equal((await api(`${limited.url}api/calls`, { json: { code: hold, method: 'write', context: 'other' } })).body.outcome.result, 'return');
    } finally {
      await limited.stop();
    }
  });

  test('the CLI talks to the running node with --server (or HOSTLINK_SERVER): same output as local mode', async () => {
    // Not spawnSync: blocking this process for longer than the server's keep-alive timeout (5 s: easily, for
    // eight CLI runs on a loaded machine) lets the server close the idle connection unseen, and the next test's
    // first request goes out on it and fails with 'fetch failed'.
    const cli = (...args: string[]) => runCli(args, { cwd: dir.path, env: { ...process.env, HOSTLINK_SERVER: node.url } });
    const deployed = await cli('deploy', contractPath('kv-store'));
    assert.equal(deployed.stdout.trim(), kv, deployed.stderr);
    const set = await cli('call', contractPath('kv-store'), 'set', '--input', '{"key":"cli","value":"remote"}', '--context', 'cli-remote', '--server', node.url);
    assert.equal(set.status, 0, set.stderr);
    assert.equal(set.stdout, 'null\n');
    assert.match(set.stderr, /log: set cli/);
    // The rest read only: run at once (each is a process start-up).
    const [get, stateRun, tracedRun, failed, missing, down] = await Promise.all([
      cli('call', kv, 'get', '--input', '{"key":"cli"}', '--context', 'cli-remote', '--json'),
      cli('state', 'cli-remote', '--json'),
      cli('call', kv, 'get', '--input', '{"key":"cli"}', '--context', 'cli-remote', '--trace'),
      cli('call', kv, 'get_result', '--input', '{"key":"none"}', '--context', 'cli-remote'),
      cli('call', 'ab'.repeat(32), 'get'),
      runCli(['state', 'x', '--server', 'http://127.0.0.1:9']),
    ]);
    const out = JSON.parse(get.stdout);
    assert.deepEqual([out.result, out.value], ['return', '"remote"']);
    const state = JSON.parse(stateRun.stdout);
    assert.equal(state.root, out.state_root);
    assert.ok(state.entries.some((e: { key: string; value: string }) => e.key === 'e:cli' && e.value === 'remote'));
    const traced = JSON.parse(tracedRun.stdout);
    assert.equal(traced.trace.calls[0].trace.requests.at(-1).method, 'consume_result');
    assert.equal(failed.status, 1);
    assert.match(failed.stdout, /^user_error: /);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^hostlink: node: no contract with hash/);
    assert.equal(down.status, 1);
    assert.match(down.stderr, /cannot reach the node at http:\/\/127\.0\.0\.1:9\/ .*is `hostlink serve` running\?/);
  });

  test('SIGTERM lets the call in flight finish, exits 0, and a restart finds everything committed', async () => {
    const hold = await deploy(node.url, holdBytes);
    await api(`${node.url}api/calls`, { json: { code: kv, method: 'set', input: '{"key":"kept","value":"yes"}', context: 'restart' } });
    const rootBefore = (await api(`${node.url}api/contexts/restart/state`)).body.root;
    const inFlight = api(`${node.url}api/calls`, { json: { code: hold, method: 'write_then_loop', context: 'slow', gas: UNLIMITED_GAS, deadline_ms: 1500 } });
    await untilBusy(node.url);
    node.child.kill('SIGTERM');
    const finished = await inFlight;
    assert.equal(finished.status, 200, 'the call in flight got its outcome, not a reset connection');
    assert.deepEqual([finished.body.outcome.result, finished.body.outcome.message], ['internal_error', 'timeout']);
    assert.equal(await node.exited, 0, node.stderr());
    assert.match(node.stderr(), /"msg":"stopped"/);
    await assert.rejects(fetch(`${node.url}healthz`), 'nothing listens after the stop');

    node = await startServe(['--data-dir', dataDir]);
    const state = await api(`${node.url}api/contexts/restart/state`);
    assert.equal(state.body.root, rootBefore);
    assert.ok(state.body.entries.some((e: { key: string; value: string }) => e.key === 'e:kept' && e.value === 'yes'));
    assert.ok((await api(`${node.url}api/codes`)).body.some((c: { code_hash: string }) => c.code_hash === kv));
    const again = await api(`${node.url}api/calls`, { json: { code: kv, method: 'get', input: '{"key":"kept"}', context: 'restart' } });
    assert.equal(again.body.outcome.value, '"yes"');
  });

  test('SIGKILL loses nothing that was answered, and the killed node leaves no VM process behind', async () => {
    const set = await api(`${node.url}api/calls`, { json: { code: kv, method: 'set', input: '{"key":"killed","value":"still here"}', context: 'restart' } });
    assert.equal(set.body.outcome.applied, true);
    const vms = (await api(`${node.url}api/info`)).body.pool.workers as number;
    assert.ok(vms > 0);
    const pids = new Set<number>([set.body.vm_pid]);
    node.child.kill('SIGKILL');
    assert.equal(await node.exited, 'SIGKILL');
    // The VMs see their connection close and exit on their own.
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 200 && [...pids].some(alive); i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual([...pids].filter(alive), [], 'VM processes outlived the killed node');
    node = await startServe(['--data-dir', dataDir]);
    const state = await api(`${node.url}api/contexts/restart/state`);
    assert.equal(state.body.root, set.body.outcome.state_root);
    assert.ok(state.body.entries.some((e: { key: string; value: string }) => e.key === 'e:killed' && e.value === 'still here'));
  });
});

describe('hostlink call --server when the node dies mid-call', () => {
  test('says the call was sent and its outcome is unknown, and how to check, not "cannot reach"', async () => {
    const dir = tempDir();
    const node = await startServe(['--data-dir', join(dir.path, 'data')]);
    try {
      const hold = await deploy(node.url, holdBytes);
      const call = runCli(['call', hold, 'write_then_loop', '--gas', UNLIMITED_GAS, '--context', 'lost', '--server', node.url]);
      await untilBusy(node.url);
      node.child.kill('SIGKILL');
      await node.exited;
      const r = await call;
      assert.equal(r.status, 1);
      const context = createHash('sha256').update('lost').digest('hex');
      const url = node.url.replace(/[.]/g, '[.]');
      assert.match(
        r.stderr,
        new RegExp(
          `^hostlink: the connection to the node at ${url} was lost after the request was sent \\([A-Z_]+\\): whether the call was applied is unknown: ` +
            `before calling again, check context ${context} once the node answers \\(hostlink state ${context} --server ${url}, or the node's recent calls: GET ${url}api/calls\\)\n$`,
        ),
      );
    } finally {
      node.child.kill('SIGKILL');
      dir.remove();
    }
  });
});

describe('hostlink serve options', () => {
  test('--commit-group takes a whole number of milliseconds, 0 (off) to 1000; anything else is refused before the store opens', async () => {
    const dir = tempDir();
    const data = join(dir.path, 'never-created');
    await assert.rejects(startServe(['--commit-group=-1', '--data-dir', data]), /--commit-group must be a whole number >= 0 \(got '-1'\)/);
    await assert.rejects(startServe(['--commit-group', 'soon', '--data-dir', data]), /--commit-group must be a whole number >= 0 \(got 'soon'\)/);
    await assert.rejects(startServe(['--commit-group', '5000', '--data-dir', data]), /--commit-group must be at most 1000 \(got '5000'\)/);
    assert.equal(existsSync(data), false, 'nothing is opened before the refusal');
    dir.remove();
  });
});

describe('hostlink serve beyond loopback', () => {
  test('refuses to start without a token, with one line that says what to do', async () => {
    const dir = tempDir();
    const data = join(dir.path, 'never-created');
    await assert.rejects(startServe(['--listen', '0.0.0.0:0', '--data-dir', data]), /beyond loopback\) needs a token: set HOSTLINK_TOKEN or pass --token-file FILE/);
    assert.equal(existsSync(data), false, 'nothing is opened before the refusal');
    dir.remove();
  });

  test('takes the token file\'s first line, and refuses at start-up (exit 2) a token no client could send', async () => {
    const dir = tempDir();
    const token = 'first-line-token-0123456789';
    // A second line (a comment, a rotated token kept for later) used to become part of the token: every request 401.
    writeFileSync(join(dir.path, 'token'), `${token}\r\nsecond line: the previous token\n`);
    const node = await startServe(['--listen', '0.0.0.0:0', '--data-dir', join(dir.path, 'd'), '--token-file', join(dir.path, 'token')]);
    try {
      const url = node.url.replace('0.0.0.0', '127.0.0.1');
      assert.equal((await api(url + 'api/codes', { headers: { authorization: `Bearer ${token}` } })).status, 200);
    } finally {
      await node.stop();
    }
    for (const [name, text] of [
      ['inner space', 'a token with spaces inside it\n'],
      ['control character', 'token-with-a-bell\x07-0123456789\n'],
      ['non-ASCII', 'jeton-numéro-0123456789\n'],
      ['empty first line', '\nthe-token-on-line-two-0123456789\n'],
    ]) {
      const file = join(dir.path, 'bad-token');
      writeFileSync(file, text!);
      const run = await runCli(['serve', '--listen', '0.0.0.0:0', '--data-dir', join(dir.path, 'never'), '--token-file', file]);
      assert.equal(run.status, 2, `${name}: ${run.stderr}`);
      assert.match(run.stderr, /the token file .* (is empty|holds a space, a control character or non-ASCII text)/, name);
    }
    const env = await runCli(['serve', '--listen', '0.0.0.0:0', '--data-dir', join(dir.path, 'never')], { env: { ...process.env, HOSTLINK_TOKEN: 'two words-0123456789' } });
    assert.equal(env.status, 2, env.stderr);
    assert.match(env.stderr, /HOSTLINK_TOKEN holds a space/);
    assert.equal(existsSync(join(dir.path, 'never')), false, 'nothing is opened before the refusal');
    dir.remove();
  });

  test('with a token, every API route needs it; /healthz and the studio page do not', async () => {
    const dir = tempDir();
    const token = 'a-test-token-of-enough-length';
    writeFileSync(join(dir.path, 'token'), token + '\n');
    const node = await startServe(['--listen', '0.0.0.0:0', '--data-dir', join(dir.path, 'd'), '--token-file', join(dir.path, 'token')]);
    try {
      const url = node.url.replace('0.0.0.0', '127.0.0.1');
      for (const path of ['api/codes', 'api/contexts', 'metrics', 'api/calls']) {
        const r = await api(url + path);
        assert.equal(r.status, 401, path);
        assert.equal(r.headers.get('www-authenticate'), 'Bearer');
        assert.equal((await api(url + path, { headers: { authorization: 'Bearer wrong-token-of-same-size!' } })).status, 401, path);
      }
      // An upload without the token that asks first (Expect: 100-continue) is refused before its body is sent.
      const asked = await new Promise<{ status: number; continued: boolean }>((resolve) => {
        const u = new URL(url + 'api/codes');
        let continued = false;
        const r = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/wasm', 'content-length': String(2 ** 31), expect: '100-continue' } });
        r.on('continue', () => (continued = true));
        r.on('response', (res) => {
          res.resume();
          resolve({ status: res.statusCode!, continued });
          r.destroy();
        });
        r.on('error', () => undefined);
        r.flushHeaders();
      });
      assert.deepEqual(asked, { status: 401, continued: false });
      const auth = { authorization: `Bearer ${token}` };
      assert.equal((await api(url + 'api/codes', { headers: auth })).status, 200);
      // The scheme's name is case-insensitive in HTTP.
      assert.equal((await api(url + 'api/codes', { headers: { authorization: `bearer ${token}` } })).status, 200);
      assert.equal((await api(url + 'api/codes', { headers: { authorization: `BEARER ${token}` } })).status, 200);
      const hash = await deploy(url, kvBytes, auth);
      const call = await api(url + 'api/calls', { json: { code: hash, method: 'get', input: '{"key":"x"}' }, headers: auth });
      assert.equal(call.status, 200);
      assert.equal((await api(url + 'healthz')).status, 200);
      assert.equal((await api(url)).status, 200);
    } finally {
      await node.stop();
      dir.remove();
    }
  });
});
