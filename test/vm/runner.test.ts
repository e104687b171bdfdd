import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runInProcess } from '../../src/host/in-process.js';
import type { JobEnd } from '../../src/host/job.js';
import { CodeCache } from '../../src/vm/runner.js';
import { contract, id32, MemoryBackend, message, text, utf8 } from '../helpers.js';

function result(end: JobEnd) {
  assert.equal(end.kind, 'result');
  return end as Extract<JobEnd, { kind: 'result' }>;
}

describe('runner (in-process, real contracts)', () => {
  const backend = new MemoryBackend();
  const kv = backend.deploy(contract('kv-store'));
  const bad = backend.deploy(contract('misbehave'));
  const cache = new CodeCache();
  const call = (codeHash: Uint8Array, method: string, input = '') => {
    const end = result(runInProcess(backend, message({ codeHash, method, input: utf8(input) }), cache));
    if (end.result.code === 'return') backend.apply(id32('test-context'), end.effects.writes);
    return end;
  };
  const returned = (end: ReturnType<typeof call>): string => {
    assert.equal(end.result.code, 'return', JSON.stringify(end.result));
    const r = end.result as { value: unknown };
    return r.value instanceof Uint8Array ? text(r.value) : String(r.value);
  };

  test('kv-store set, get, entries, remove', () => {
    const set = call(kv, 'set', '{"key":"greeting","value":"hello"}');
    assert.equal(returned(set), 'null');
    assert.deepEqual(set.effects.logs, ['set greeting']);
    assert.ok(set.effects.writes.length >= 1, 'set writes storage');
    call(kv, 'set', '{"key":"a","value":"1"}');
    assert.equal(returned(call(kv, 'get', '{"key":"greeting"}')), '"hello"');
    assert.equal(returned(call(kv, 'get', '{"key":"missing"}')), 'null');
    assert.equal(returned(call(kv, 'entries', '{}')), '{"a":"1","greeting":"hello"}');
    assert.equal(returned(call(kv, 'remove', '{"key":"a"}')), '"1"');
    assert.equal(returned(call(kv, 'entries', '{}')), '{"greeting":"hello"}');
  });

  test('a missing key through get_result is a UserError, through get_unchecked a panic', () => {
    const r = call(kv, 'get_result', '{"key":"nope"}').result;
    assert.deepEqual([r.code, 'message' in r && r.message], ['user_error', '{"kind":"NotFound","data":"nope"}']);
    const p = call(kv, 'get_unchecked', '{"key":"nope"}').result;
    assert.equal(p.code, 'user_error');
    assert.match((p as { message: string }).message, /^Panic: key not found: nope at /);
  });

  test('code is fetched once per process and cached by hash', () => {
    const local = new CodeCache();
    runInProcess(backend, message({ codeHash: kv, method: 'get', input: utf8('{"key":"x"}') }), local);
    runInProcess(backend, message({ codeHash: kv, method: 'get', input: utf8('{"key":"x"}') }), local);
    assert.deepEqual([local.misses, local.hits], [1, 1]);
  });

  test('unknown code, unknown method and a non-function export are VM errors naming them', () => {
    const none = call(id32('no such code'), 'set').result;
    assert.equal(none.code, 'vm_error');
    assert.match((none as { message: string }).message, /^code_not_found [0-9a-f]{64}$/);
    const missing = call(kv, 'nope').result;
    assert.deepEqual(missing, {
      code: 'vm_error',
      message: 'method_not_found nope (methods: set, get, get_result, get_unchecked, remove, entries)',
      fingerprint: null,
    });
    const memory = call(kv, 'memory').result;
    assert.equal((memory as { message: string }).message, 'method_not_function memory');
    const badName = call(kv, 'has-dash').result;
    assert.match((badName as { message: string }).message, /^invalid_method_name/);
  });

  test('guest failures map to named errors', () => {
    const msg = (m: string) => (call(bad, m).result as { code: string; message: string });
    assert.equal(msg('trap').code, 'vm_error');
    assert.match(msg('trap').message, /^wasm_trap /);
    assert.match(msg('oob').message, /^wasm_trap /);
    assert.match(msg('bad_utf8_log').message, /^BadUTF8 \(log_utf8\)/);
    assert.match(msg('log_flood').message, /^LogsOverflow \(log_utf8\)/);
    assert.match(msg('huge_key').message, /^KeyLengthOverflow \(storage_write\)/);
    assert.match(msg('bad_pointer').message, /^InvalidMemoryAccess \(storage_read\)/);
    const panic = msg('panic_msg');
    assert.equal(panic.code, 'user_error');
    assert.match(panic.message, /^Panic: /);
  });

  test('a failed execution still reports its logs but its writes are not applied by the caller', () => {
    const before = backend.state.size;
    const end = call(bad, 'write_then_trap');
    assert.equal(end.result.code, 'vm_error');
    assert.equal(backend.state.size, before);
  });

  test('echo returns the input bytes unchanged', () => {
    const input = '{"any":"thing","n":[1,2,3]}';
    assert.equal(returned(call(bad, 'echo', input)), input);
  });
});
