/**
 * private_storage_read/write/remove through real VM processes on LMDB: node-local values per context, outside
 * the delta and the state root, committed only with a successful call.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Host } from '../../src/host/host.js';
import { contract, id32, text } from '../helpers.js';
import { callJson, jsonOf, openHost, type TestHost } from './helpers.js';
import { assertVmError, call, Probe, returned, returnedU64 } from './probe.js';

describe('private storage', () => {
  let t: TestHost;
  let host: Host;
  let calls: Uint8Array;
  let probe: Uint8Array;
  const ctx = id32('private-ctx');
  const other = id32('private-other');
  const run = (method: string, input: unknown, contextId = ctx) => callJson(host, calls, method, input, { contextId });
  const runProbe = (method: string, extra: { limits?: Record<string, number>; contextId?: Uint8Array } = {}) =>
    host.call({ codeHash: probe, method, contextId: extra.contextId ?? ctx, ...(extra.limits ? { limits: extra.limits } : {}) });
  const privateValues = (c: Uint8Array) => host.node.privateState(c).map(([k, v]) => [text(k), text(v)]);

  before(async () => {
    t = await openHost();
    host = t.host;
    calls = await host.deploy(contract('host-calls'));
    const p = new Probe();
    const key = p.buf('k');
    const binKey = p.buf(Uint8Array.of(0xff, 0x00, 0xfe));
    const value = p.buf('v1');
    const longKey = p.buf('12345');
    const oob = p.desc(1 << 20, 4);
    p.method('write_then_trap', `${call('private_storage_write', key, value)} drop unreachable`);
    p.method('write_binary', `(call $ret_i64 (i64.extend_i32_u ${call('private_storage_write', binKey, value)}))`);
    p.method('read_binary', `(drop ${call('private_storage_read', binKey, 5)}) (call $ret_reg (i64.const 5))`);
    p.method('write_read_remove', `(drop ${call('private_storage_write', key, value)})
      (drop ${call('private_storage_read', key, 1)})
      (drop ${call('private_storage_remove', key, 2)})
      (call $ret_i64 (i64.extend_i32_u ${call('private_storage_read', key, 3)}))`);
    p.method('long_key_write', `(drop ${call('private_storage_write', longKey, value)})`);
    p.method('long_key_read', `(drop ${call('private_storage_read', longKey, 0)})`);
    p.method('long_key_remove', `(drop ${call('private_storage_remove', longKey, 0)})`);
    p.method('long_value', `(drop ${call('private_storage_write', key, longKey)})`);
    p.method('oob_read', `(drop ${call('private_storage_read', oob, 0)})`);
    p.method('oob_write_value', `(drop ${call('private_storage_write', key, oob)})`);
    p.method('oob_remove', `(drop ${call('private_storage_remove', oob, 0)})`);
    p.method('oob_descriptor', `(drop ${call('private_storage_read', 0xfffffff8, 0)})`);
    probe = await host.deploy(await p.build());
  });
  after(() => t.close());

  test('write, read back, remove: node-local, not in the delta, the state root unchanged', async () => {
    const rootBefore = host.state(ctx).root;
    const w = await run('private_write', { key: 'a', value: '1' });
    assert.equal(jsonOf(w), true);
    assert.deepEqual(w.writes, [], 'private writes are not in the storage delta');
    assert.deepEqual(w.stateRoot, rootBefore, 'the state root does not cover private storage');
    assert.deepEqual(privateValues(ctx), [['a', '1']]);
    assert.equal(jsonOf(await run('private_read', { key: 'a' })), '1');
    assert.equal(jsonOf(await run('private_read', { key: 'a' }, other)), null, 'another context does not see it');
    assert.equal(jsonOf(await run('private_write', { key: 'a', value: '2' })), true);
    assert.equal(jsonOf(await run('private_remove', { key: 'a' })), '2', 'remove returns the old value');
    assert.deepEqual(privateValues(ctx), []);
    assert.deepEqual(host.state(ctx).root, rootBefore);
  });

  test('absent keys: read and remove return 0 and leave the register untouched', async () => {
    assert.equal(jsonOf(await run('private_read', { key: 'never' })), null);
    assert.equal(jsonOf(await run('private_remove', { key: 'never' })), null);
  });

  test('an execution sees its own private writes; binary keys are fine', async () => {
    assert.equal(returnedU64(await runProbe('write_read_remove')), 0n, 'read after remove in the same call is absent');
    assert.equal(returnedU64(await runProbe('write_binary')), 1n);
    assert.equal(text(returned(await runProbe('read_binary'))), 'v1');
  });

  test('private writes of a failed call are not committed', async () => {
    const before = host.node.privateState(ctx);
    const o = await runProbe('write_then_trap');
    assert.equal(o.result.code, 'vm_error');
    assert.equal(o.applied, false);
    assert.deepEqual(host.node.privateState(ctx), before);
  });

  test('key and value limits trap before anything is read', async () => {
    const limits = { maxStorageKeySize: 4, maxStorageValueSize: 4 };
    assertVmError(await runProbe('long_key_write', { limits }), 'KeyLengthOverflow', 'private_storage_write');
    assertVmError(await runProbe('long_key_read', { limits }), 'KeyLengthOverflow', 'private_storage_read');
    assertVmError(await runProbe('long_key_remove', { limits }), 'KeyLengthOverflow', 'private_storage_remove');
    assertVmError(await runProbe('long_value', { limits }), 'ValueLengthOverflow', 'private_storage_write');
  });

  test('out-of-bounds descriptors trap InvalidMemoryAccess', async () => {
    assertVmError(await runProbe('oob_read'), 'InvalidMemoryAccess', 'private_storage_read');
    assertVmError(await runProbe('oob_write_value'), 'InvalidMemoryAccess', 'private_storage_write');
    assertVmError(await runProbe('oob_remove'), 'InvalidMemoryAccess', 'private_storage_remove');
    assertVmError(await runProbe('oob_descriptor'), 'InvalidMemoryAccess', 'private_storage_read');
  });

  test('values survive a host restart (LMDB)', async () => {
    assert.equal(jsonOf(await run('private_write', { key: 'persist', value: 'yes' })), true);
    await host.close();
    const { Host } = await import('../../src/host/host.js');
    host = await Host.open({ dataDir: t.dataDir, poolSize: 1 });
    t.host = host;
    assert.equal(jsonOf(await run('private_read', { key: 'persist' })), 'yes');
  });
});
