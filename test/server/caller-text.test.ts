/**
 * What `hostlink serve` keeps and reports about what callers and contract authors hand it: method names are
 * checked at the edge by the VM's own rule and records stay bounded whatever reaches them; a code's methods are
 * its exports whatever its ABI section claims; listing codes reads their recorded sizes, not their bytes.
 * Real server processes and real Hosts on LMDB.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { embedAbi, methodNames, uncallableExports } from '../../src/contract/abi.js';
import { Host } from '../../src/host/host.js';
import { DEFAULT_LIMITS } from '../../src/protocol/message.js';
import { verifyStore } from '../../src/host/state/verify-store.js';
import { encodeCodeSize } from '../../src/host/state/code-store.js';
import type { KvStore, TableName } from '../../src/host/state/kv.js';
import { listCodes } from '../../src/server/inventory.js';
import { CallRecords, MAX_KEPT_TEXT_CHARS } from '../../src/server/records.js';
import { MAX_METHOD_NAME_LENGTH_LIMIT } from '../../src/protocol/limits.generated.js';
import { wat } from '../instrument/helpers.js';
import { contractPath, sha256, tempDir } from '../helpers.js';
import { api, deployKvStore, runCli, startServe, type ServeProcess } from './serve-process.js';

const kvBytes = readFileSync(contractPath('kv-store'));
/** A WAT string literal of `s`'s UTF-8 bytes: other than printable ASCII, each byte as \\hh. */
const watString = (s: string): string =>
  `"${[...Buffer.from(s, 'utf8')].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${b.toString(16).padStart(2, '0')}`)).join('')}"`;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('hostlink serve and what callers hand it', () => {
  const dir = tempDir();
  let node: ServeProcess;
  let kv: string;
  before(async () => {
    node = await startServe(['--data-dir', join(dir.path, 'data')]);
    kv = await deployKvStore(node);
  });
  after(async () => {
    if (node.child.exitCode === null) await node.stop();
    dir.remove();
  });

  test('a method name the VM would refuse is refused at the edge, on REST and JSON-RPC, and no record keeps it', async () => {
    const max = DEFAULT_LIMITS.maxMethodNameLength;
    for (const method of ['x'.repeat(max + 1), 'M'.repeat(300_000), 'bad-name', 'caf\u00e9']) {
      const rest = await api(`${node.url}api/calls`, { json: { code: kv, method } });
      assert.equal(rest.status, 400, JSON.stringify(rest.body).slice(0, 200));
      assert.match(rest.body.error, new RegExp(`is not a method name: method names are 1-${max} ASCII letters, digits or _`));
      assert.ok(rest.body.error.length < 400, 'the error quotes the name cut');
      const view = await api(`${node.url}api/views`, { json: { code: kv, method } });
      assert.equal(view.status, 400);
      const rpc = await api(`${node.url}rpc`, { json: { jsonrpc: '2.0', id: 1, method: 'call', params: { code: kv, method } } });
      assert.equal(rpc.body.error?.code, -32602, JSON.stringify(rpc.body).slice(0, 200));
    }
    // A name at the bound is the VM's to judge (method_not_found), and the record keeps it whole.
    const atBound = await api(`${node.url}api/calls`, { json: { code: kv, method: 'y'.repeat(max) } });
    assert.equal(atBound.status, 200, JSON.stringify(atBound.body).slice(0, 200));
    assert.match(atBound.body.outcome.message, /^method_not_found/);
    const calls = await api(`${node.url}api/calls?limit=500`);
    assert.deepEqual(
      calls.body.map((c: { method: string }) => c.method),
      ['y'.repeat(max)],
    );
  });

  test('a code is described by its exports: ABI entries naming no export are left out, exports it omits are listed', async () => {
    const exported = methodNames(kvBytes);
    assert.ok(exported.includes('get') && exported.includes('set'), exported.join());
    // The author's section documents `get`, claims a `mint_capped` that does not exist, and leaves out the rest.
    const lying = embedAbi(kvBytes, { format: 'hostlink-abi/1', name: 'token', methods: [{ name: 'mint_capped', doc: 'mints at most 100' }, { name: 'get', doc: 'reads a key', view: true }], events: [] });
    const r = await api(`${node.url}api/codes`, { method: 'POST', headers: { 'content-type': 'application/wasm' }, body: lying });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const described = await api(`${node.url}api/codes/${r.body.code_hash}`);
    assert.equal(described.status, 200);
    assert.deepEqual(described.body.methods, exported);
    assert.deepEqual(
      described.body.abi.methods.map((m: { name: string }) => m.name),
      exported,
    );
    assert.deepEqual(
      described.body.abi.methods.find((m: { name: string }) => m.name === 'get'),
      { name: 'get', doc: 'reads a key', view: true },
    );
    assert.equal(described.body.abi.name, 'token');
    assert.equal(described.body.abi_embedded, true);
    assert.deepEqual(described.body.abi_unexported, ['mint_capped']);

    const listed = await runCli(['codes', '--server', node.url, '--json']);
    assert.equal(listed.status, 0, listed.stderr);
    const entry = (JSON.parse(listed.stdout) as { code_hash: string; methods: string[] }[]).find((c) => c.code_hash === r.body.code_hash);
    assert.deepEqual(entry?.methods, exported);

    const file = join(dir.path, 'lying.wasm');
    writeFileSync(file, lying);
    const inspected = await runCli(['inspect', file]);
    assert.equal(inspected.status, 0, inspected.stderr);
    assert.doesNotMatch(inspected.stdout, /mint_capped/);
    assert.match(inspected.stdout, /^ {2}set$/m);
    assert.match(inspected.stderr, /warning: the module's ABI section lists methods it does not export, left out: mint_capped/);
    const checked = await runCli(['check', file, '--json']);
    assert.equal(checked.status, 0, checked.stderr);
    assert.deepEqual(JSON.parse(checked.stdout).abi_unexported, ['mint_capped']);
  });

  test('exports no call can name are not methods: not in the description, codes, inspect, check, nor the VM\'s method_not_found', async () => {
    // Before, every exported () -> () function was listed as a method, whatever its name: callers were offered
    // `ns.fn`, a name with a space or one of 300,000 characters, which every VM refuses (invalid_method_name),
    // and the node kept and sent each such name whole in every description.
    const longest = 'a'.repeat(MAX_METHOD_NAME_LENGTH_LIMIT);
    const tooLong = 'b'.repeat(MAX_METHOD_NAME_LENGTH_LIMIT + 1);
    const huge = 'c'.repeat(300_000);
    const names = ['ok_method', 'has space', 'ns.fn', 'caf\u00e9', longest, tooLong, huge];
    const module = await wat(`(module (memory (export "memory") 1) (func $f) (func $g (param i32))
      ${names.map((n) => `(export ${watString(n)} (func $f))`).join(' ')}
      (export "__helper" (func $f)) (export "takes_arg" (func $g)))`);
    assert.deepEqual(methodNames(module), ['ok_method', longest]);
    assert.deepEqual(uncallableExports(module), ['has space', 'ns.fn', 'caf\u00e9', `${'b'.repeat(64)}… (${MAX_METHOD_NAME_LENGTH_LIMIT + 1} characters)`, `${'c'.repeat(64)}… (300000 characters)`]);

    const r = await api(`${node.url}api/codes`, { method: 'POST', headers: { 'content-type': 'application/wasm' }, body: module });
    assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 300));
    const described = await api(`${node.url}api/codes/${r.body.code_hash}`);
    assert.equal(described.status, 200);
    assert.deepEqual(described.body.methods, ['ok_method', longest]);
    assert.deepEqual(
      described.body.abi.methods.map((m: { name: string }) => m.name),
      ['ok_method', longest],
    );
    const listed = await runCli(['codes', '--server', node.url, '--json']);
    assert.equal(listed.status, 0, listed.stderr);
    const entry = (JSON.parse(listed.stdout) as { code_hash: string; methods: string[] }[]).find((c) => c.code_hash === r.body.code_hash);
    assert.deepEqual(entry?.methods, ['ok_method', longest]);

    // The VM lists the same methods when a call names none of them.
    const missing = await api(`${node.url}api/calls`, { json: { code: r.body.code_hash, method: 'nope' } });
    assert.equal(missing.status, 200, JSON.stringify(missing.body).slice(0, 300));
    assert.equal(missing.body.outcome.message, `method_not_found nope (methods: ok_method, ${'a'.repeat(64)}…)`);

    const file = join(dir.path, 'names.wasm');
    writeFileSync(file, module);
    const inspected = await runCli(['inspect', file]);
    assert.equal(inspected.status, 0, inspected.stderr);
    assert.match(inspected.stdout, /\nmethods:\n {2}ok_method\n {2}a{4096}\n$/);
    assert.match(inspected.stderr, /^hostlink: warning: the module exports functions no call can name, not listed as methods: "has space", "ns\.fn", "caf\u00e9", "b{64}… \(4097 characters\)", "c{64}… \(300000 characters\)"; method names are 1-4096 ASCII letters, digits or _/);
    assert.ok(inspected.stderr.length < 1000, 'the warning cuts long names');
    const checked = await runCli(['check', file, '--json']);
    assert.equal(checked.status, 0, checked.stderr);
    const report = JSON.parse(checked.stdout) as { methods: string[]; uncallable_exports: string[] };
    assert.deepEqual(report.methods, ['ok_method', longest]);
    assert.equal(report.uncallable_exports.length, 5);
    const plain = await runCli(['check', file]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stderr, /warning: the module exports functions no call can name/);
  });
});

describe('call records and code listings on a real Host', () => {
  const dir = tempDir();
  let host: Host;
  before(async () => {
    host = await Host.open({ dataDir: dir.path, poolSize: 1 });
  });
  after(async () => {
    await host.close();
    dir.remove();
  });

  test('a record keeps a bounded method name whatever the call named', async () => {
    const records = new CallRecords(host.events);
    try {
      const codeHash = await host.deploy(kvBytes);
      // The Host takes any text (the node's API refuses such names first); the record must stay small anyway.
      const method = 'Z'.repeat(200_000);
      const outcome = await host.call({ codeHash, method, input: new Uint8Array(0), contextId: new Uint8Array(32), executorId: new Uint8Array(32) });
      assert.equal(outcome.result.code, 'vm_error');
      const found = records.get(outcome.callId);
      assert.ok(found !== undefined);
      assert.ok(found.record.method.length <= MAX_KEPT_TEXT_CHARS + 40, `record keeps ${found.record.method.length} characters`);
      assert.ok(found.record.method.startsWith('Z'.repeat(100)));
      assert.match(found.record.method, /\(200000 characters\)$/);
      assert.ok(found.trace.method.length <= MAX_KEPT_TEXT_CHARS + 40);
      assert.ok(JSON.stringify(records.recent(500)).length < 64 * 1024);
    } finally {
      records.close();
    }
  });

  test('listing codes reads their recorded sizes, not their bytes; a code stored without one is still listed', async () => {
    const store = host.store as KvStore;
    const a = await host.deploy(kvBytes);
    const other = readFileSync(contractPath('collab'));
    const b = await host.deploy(other);
    // As a Hostlink from before the size table stored it: the code alone.
    const c = embedAbi(other, { format: 'hostlink-abi/1', methods: [], events: [] });
    const cHash = sha256(c);
    await store.write((txn) => txn.put('code', cHash, c));

    // Count the bytes of the code table's values the listing is handed.
    let codeBytesRead = 0;
    const { get, range } = store;
    store.get = (t: TableName, key: Uint8Array) => {
      const v = get.call(store, t, key);
      if (t === 'code' && v !== undefined) codeBytesRead += v.length;
      return v;
    };
    store.range = (t: TableName, prefix: Uint8Array) => {
      if (t === 'code') throw new Error('the code table was read whole');
      return range.call(store, t, prefix);
    };
    let listed: ReturnType<typeof listCodes>;
    try {
      listed = listCodes(host);
    } finally {
      store.get = get;
      store.range = range;
    }
    const expected = [
      { code_hash: hex(a), bytes: kvBytes.length },
      { code_hash: hex(b), bytes: other.length },
      { code_hash: hex(cHash), bytes: c.length },
    ].sort((x, y) => x.code_hash.localeCompare(y.code_hash));
    assert.deepEqual(listed, expected);
    assert.equal(codeBytesRead, c.length, 'only the code stored without a recorded size is read');

    // The store check agrees with the recorded sizes, and names a wrong one.
    assert.deepEqual(verifyStore(store).problems, []);
    await store.write((txn) => txn.put('code_sizes', a, encodeCodeSize(kvBytes.length + 1)));
    assert.deepEqual(
      verifyStore(store).problems.map((p) => [p.kind, p.id]),
      [['code', hex(a)]],
    );
    // Deploying a code again records its size (an old store mends as its codes are deployed).
    await store.write((txn) => txn.del('code_sizes', a));
    assert.equal(store.get('code_sizes', cHash), undefined);
    await host.deploy(c);
    await host.deploy(kvBytes);
    assert.deepEqual(store.get('code_sizes', cHash), encodeCodeSize(c.length));
    assert.deepEqual(store.get('code_sizes', a), encodeCodeSize(kvBytes.length));
    assert.deepEqual(verifyStore(store).problems, []);
  });
});
