/**
 * Context mutations and queries through real VM processes: mutations are queued and applied by the host
 * after success; membership and alias lookups ask the host; a taken alias traps at call time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Host } from '../../src/host/host.js';
import { Job } from '../../src/host/job.js';
import { NodeServices } from '../../src/host/node/services.js';
import { createMemoryStore } from '../../src/host/state/memory-store.js';
import { createdContextId } from '../../src/protocol/call-ids.js';
import { buildMessage, parseMessage } from '../../src/protocol/message.js';
import { contract, id32, utf8 } from '../helpers.js';
import { callJson, fromHex, hex, jsonOf, openHost, type TestHost } from './helpers.js';
import { assertVmError, call, Probe, returned, returnedU64 } from './probe.js';

describe('contexts', () => {
  let t: TestHost;
  let host: Host;
  let gov: Uint8Array;
  let probe: Uint8Array;
  const ctx = id32('contexts-ctx');
  const alice = id32('alice');
  const bob = id32('bob');
  const carol = id32('carol');
  const app = id32('app');
  const run = (method: string, input: unknown, contextId = ctx) => callJson(host, gov, method, input, { contextId, executorId: alice });
  const runProbe = (method: string, extra: { limits?: Record<string, number>; contextId?: Uint8Array } = {}) =>
    host.call({ codeHash: probe, method, contextId: extra.contextId ?? ctx, executorId: alice, ...(extra.limits ? { limits: extra.limits } : {}) });
  const memberHex = (c: Uint8Array) => host.node.contextMembers(c).map(hex);

  before(async () => {
    t = await openHost();
    host = t.host;
    gov = await host.deploy(contract('governance'));
    const p = new Probe();
    const bobKey = p.buf(bob);
    const shortKey = p.buf(new Uint8Array(31));
    const oob = p.desc(1 << 20, 32);
    const proto = p.buf('near');
    const badUtf8 = p.buf(Uint8Array.of(0x61, 0xff, 0x62));
    const appId = p.buf(app);
    const args = p.buf('{}');
    const dupAlias = p.buf('twice');
    const longAlias = p.buf('x'.repeat(256));
    const bigArgs = p.buf('123456789');
    const empty = p.buf('');
    p.method('add_bob_then_trap', `${call('context_add_member', bobKey)} unreachable`);
    p.method('add_bob_then_check', `${call('context_add_member', bobKey)} (call $ret_i64 (i64.extend_i32_u ${call('context_is_member', bobKey)}))`);
    p.method('members_raw', `${call('context_members', 7)} (call $ret_reg (i64.const 7))`);
    p.method('is_member_short', `(drop ${call('context_is_member', shortKey)})`);
    p.method('is_member_oob', `(drop ${call('context_is_member', oob)})`);
    p.method('add_member_short', `${call('context_add_member', shortKey)}`);
    p.method('remove_member_oob', `${call('context_remove_member', oob)}`);
    p.method('delete_short', `${call('context_delete', shortKey)}`);
    p.method('create_short_app', `${call('context_create', proto, shortKey, args, 0)}`);
    p.method('create_bad_protocol', `${call('context_create', badUtf8, appId, args, 0)}`);
    p.method('create_bad_alias', `${call('context_create', proto, appId, args, badUtf8)}`);
    p.method('create_oob_args', `${call('context_create', proto, appId, oob, 0)}`);
    p.method('create_long_alias', `${call('context_create', proto, appId, args, longAlias)}`);
    p.method('create_big_args', `${call('context_create', proto, appId, bigArgs, 0)}`);
    p.method('create_twice_same_alias', `${call('context_create', proto, appId, args, dupAlias)} ${call('context_create', proto, appId, args, dupAlias)}`);
    p.method('create_alias_then_trap', `${call('context_create', proto, appId, args, dupAlias)} unreachable`);
    p.method('create_empty_alias', `${call('context_create', proto, appId, args, empty)}`);
    p.method('resolve_bad_utf8', `(drop ${call('context_resolve_alias', badUtf8, 0)})`);
    p.method('resolve_empty', `(call $ret_i64 (i64.extend_i32_u ${call('context_resolve_alias', empty, 0)}))`);
    p.method('resolve_oob', `(drop ${call('context_resolve_alias', oob, 0)})`);
    p.method('resolve_long', `(drop ${call('context_resolve_alias', longAlias, 0)})`);
    p.method('delete_oob', `${call('context_delete', oob)}`);
    p.method('add_member_oob', `${call('context_add_member', oob)}`);
    p.method('remove_member_short', `${call('context_remove_member', shortKey)}`);
    probe = await host.deploy(await p.build());
    await host.node.addMembers(ctx, [carol, alice]);
  });
  after(() => t.close());

  test('seeded members: listed sorted as Borsh Vec<[u8;32]>, is_member asks the host', async () => {
    assert.deepEqual(jsonOf(await run('list_members', {})), [alice, carol].map(hex).sort());
    assert.equal(jsonOf(await run('is_member', { public_key: hex(carol) })), true);
    assert.equal(jsonOf(await run('is_member', { public_key: hex(bob) })), false);
    const raw = returned(await runProbe('members_raw'));
    assert.equal(Buffer.from(raw).readUInt32LE(0), 2);
    assert.deepEqual([raw.subarray(4, 36), raw.subarray(36, 68)].map(hex), [alice, carol].map(hex).sort());
    const none = returned(await runProbe('members_raw', { contextId: id32('nobody here') }));
    assert.deepEqual([...none], [0, 0, 0, 0], 'an empty Vec');
  });

  test('add_member and remove_member are applied after success, in call order', async () => {
    const o = await run('add_member', { public_key: hex(bob) });
    assert.equal(jsonOf(o), null);
    assert.ok(memberHex(ctx).includes(hex(bob)));
    assert.equal(jsonOf(await run('remove_member', { public_key: hex(bob) })), null);
    assert.ok(!memberHex(ctx).includes(hex(bob)));
    assert.equal(returnedU64(await runProbe('add_bob_then_check')), 0n, 'queued, so not a member during the call');
    assert.ok(memberHex(ctx).includes(hex(bob)), 'a member once the call succeeded');
    await host.node.removeMembers(ctx, [bob]);
  });

  test('absent items: removing a non-member changes nothing; deleting an unknown context is refused', async () => {
    const before = memberHex(ctx);
    assert.equal(jsonOf(await run('remove_member', { public_key: hex(id32('stranger')) })), null);
    const o = await run('delete_context', { context_id: hex(id32('no such context')) });
    assert.equal(o.result.code, 'vm_error');
    assert.match((o.result as { message: string }).message, /^Unauthorized \(context_delete\): context [0-9a-f]{64} is neither the current context nor one created in it$/);
    assert.equal(o.applied, false);
    assert.deepEqual(memberHex(ctx), before);
  });

  test('mutations of a failed call are not applied', async () => {
    const before = memberHex(ctx);
    assert.equal((await runProbe('add_bob_then_trap')).result.code, 'vm_error');
    assert.deepEqual(memberHex(ctx), before);
  });

  test('create_context: derived id, alias, record, creator as first member; resolve_alias finds it', async () => {
    const input = { protocol: 'near', application_id: hex(app), init_args: { n: 1 }, alias: 'team' };
    const o = await run('create_context', input);
    assert.equal(jsonOf(o), null);
    const expectedId = createdContextId(
      parseMessage(buildMessage({ codeHash: gov, method: 'create_context', input: utf8(JSON.stringify(input)), contextId: ctx, executorId: alice })),
      0,
    );
    const id = host.node.resolveContextAlias('team');
    assert.ok(id);
    assert.equal(hex(id), hex(expectedId));
    const record = host.node.context(id)!;
    assert.equal(record.protocol, 'near');
    assert.equal(hex(record.applicationId), hex(app));
    assert.equal(Buffer.from(record.initArgs).toString(), '{"n":1}');
    assert.equal(record.alias, 'team');
    assert.equal(hex(record.parent), hex(ctx));
    assert.deepEqual(memberHex(id), [hex(alice)]);
    assert.equal(jsonOf(await run('resolve_alias', { alias: 'team' })), hex(id));
    assert.equal(jsonOf(await run('resolve_alias', { alias: 'nobody' })), null);
    assert.equal(returnedU64(await runProbe('resolve_empty')), 0n);

    const taken = await run('create_context', { ...input, init_args: {} });
    assertVmError(taken, 'AliasAlreadyExists', 'context_create');
    assert.equal(host.node.contexts().length, 1);

    assert.equal(jsonOf(await run('delete_context', { context_id: hex(id) })), null);
    assert.equal(host.node.context(id), undefined);
    assert.equal(host.node.resolveContextAlias('team'), undefined);
    assert.deepEqual(memberHex(id), []);
    assert.equal(jsonOf(await run('create_context', { protocol: 'near', application_id: hex(app), alias: 'team' })), null, 'the alias is free again');
  });

  test('an alias is reserved for the call: twice in one call traps; a failed call releases it', async () => {
    assertVmError(await runProbe('create_twice_same_alias'), 'AliasAlreadyExists', 'context_create');
    assert.equal((await runProbe('create_alias_then_trap')).result.code, 'vm_error');
    assert.equal(host.node.reservedAliases, 0);
    assert.equal(host.node.resolveContextAlias('twice'), undefined);
    const ok = await runProbe('create_empty_alias');
    assert.equal(ok.result.code, 'return', 'an empty alias means none');
    assert.ok(host.node.contexts().some((c) => c.alias === null));
  });

  test('calls in progress do not hold aliases against each other (only committed state counts)', () => {
    const node = new NodeServices(createMemoryStore());
    const job = (n: number) => new Job(buildMessage({ codeHash: id32('c'), method: 'm', contextId: id32(`ctx${n}`) }));
    const [a, b] = [job(1), job(2)];
    assert.equal(node.reserveAlias(a, 'shared'), true);
    assert.equal(node.reserveAlias(b, 'shared'), true, 'a conflict is settled when the second one commits');
    assert.equal(node.reservedAliases, 1);
    node.settle(a);
    node.settle(b);
    assert.equal(node.reservedAliases, 0);
    assert.throws(() => node.reserveAlias(a, 'other'), /already ended/);
    node.close();
  });

  test('ids and keys must be 32 bytes; out-of-bounds descriptors trap', async () => {
    assertVmError(await runProbe('is_member_short'), 'InvalidMemoryAccess', 'context_is_member');
    assertVmError(await runProbe('is_member_oob'), 'InvalidMemoryAccess', 'context_is_member');
    assertVmError(await runProbe('add_member_short'), 'InvalidMemoryAccess', 'context_add_member');
    assertVmError(await runProbe('remove_member_oob'), 'InvalidMemoryAccess', 'context_remove_member');
    assertVmError(await runProbe('delete_short'), 'InvalidMemoryAccess', 'context_delete');
    assertVmError(await runProbe('create_short_app'), 'InvalidMemoryAccess', 'context_create');
    assertVmError(await runProbe('create_oob_args'), 'InvalidMemoryAccess', 'context_create');
    assertVmError(await runProbe('resolve_oob'), 'InvalidMemoryAccess', 'context_resolve_alias');
    assertVmError(await runProbe('delete_oob'), 'InvalidMemoryAccess', 'context_delete');
    assertVmError(await runProbe('add_member_oob'), 'InvalidMemoryAccess', 'context_add_member');
    assertVmError(await runProbe('remove_member_short'), 'InvalidMemoryAccess', 'context_remove_member');
  });

  test('strings must be UTF-8; alias and init args have limits', async () => {
    assertVmError(await runProbe('create_bad_protocol'), 'BadUTF8', 'context_create');
    assertVmError(await runProbe('create_bad_alias'), 'BadUTF8', 'context_create');
    assertVmError(await runProbe('resolve_bad_utf8'), 'BadUTF8', 'context_resolve_alias');
    assertVmError(await runProbe('create_long_alias'), 'KeyLengthOverflow', 'context_create');
    assertVmError(await runProbe('resolve_long'), 'KeyLengthOverflow', 'context_resolve_alias');
    const tooBig = await runProbe('members_raw', { limits: { maxRegisterSize: 67 } });
    assertVmError(tooBig, 'InvalidMemoryAccess', 'context_members');
    assert.match((tooBig.result as { message: string }).message, /max_register_size/);
    assertVmError(await runProbe('create_big_args', { limits: { maxStorageValueSize: 8 } }), 'ValueLengthOverflow', 'context_create');
  });

  test('the Host API checks ids', async () => {
    await assert.rejects(host.node.addMembers(ctx, [new Uint8Array(3)]), /32 bytes/);
    assert.equal(fromHex(hex(ctx)).length, 32);
  });
});
