/**
 * hostlink/testing, the harness contract authors use: accounts, block time and seed reach the contract,
 * state patched by the test is what the contract reads, views apply nothing, results and events decode,
 * assertions fail with the call's message, and two replicas converge by exchanging artifacts. Real VM
 * processes on an in-memory store.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { AssertionError } from 'node:assert';
import { idOf, TestHost, type Contract } from '../../src/testing/index.js';
import { contractPath } from '../helpers.js';

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('hostlink/testing', () => {
  let t: TestHost;
  let kv: Contract;
  let calls: Contract;

  before(async () => {
    t = await TestHost.open({ datetime: '2025-03-04T05:06:07Z', seed: 'first' });
    kv = await t.deploy(contractPath('kv-store'));
    calls = await t.deploy(contractPath('host-calls'));
  });
  after(() => t.close());

  test('named accounts and contexts are SHA-256 of the name and reach the contract as executor and context', async () => {
    const bob = t.account('bob');
    assert.equal(bob.hex, idOf('bob').hex);
    assert.equal(bob.hex, '81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd9ec58ce9');
    const r = await calls.call('ids', {}, { as: bob, context: t.context('room') });
    assert.deepEqual(r.expectOk(), { context_id: idOf('room').hex, executor_id: bob.hex });
  });

  test('a name that is not UTF-8 text is refused, not made another name\'s id', () => {
    // Half a UTF-16 pair encodes as U+FFFD: '\ud800', '\udbff' and '\ufffd' were one id.
    for (const name of ['\ud800', '\udbff', '\ufffd', 'acct\udc00']) {
      assert.throws(() => idOf(name), /the name is not UTF-8 text/, JSON.stringify(name));
      assert.throws(() => t.account(name), /the name is not UTF-8 text/, JSON.stringify(name));
    }
    assert.equal(idOf('\u{1F600}').hex, createHash('sha256').update('\u{1F600}').digest('hex'), 'a whole pair is a name like any');
  });

  test('block time and seed are the harness settings, per host and per call', async () => {
    assert.equal((await calls.view('now')).expectOk(), String(Date.UTC(2025, 2, 4, 5, 6, 7) * 1e6));
    t.setTime(new Date(Date.UTC(2030, 0, 1)));
    assert.equal((await calls.view('now')).expectOk(), String(Date.UTC(2030, 0, 1) * 1e6));
    assert.equal((await calls.view('now', {}, { datetime: '1999-12-31T23:59:59Z' })).expectOk(), String(Date.UTC(1999, 11, 31, 23, 59, 59) * 1e6));
    const a = (await calls.view('random', { n: 16 })).expectOk();
    assert.equal((await calls.view('random', { n: 16 })).expectOk(), a, 'same seed, same bytes');
    t.setSeed('second');
    assert.notEqual((await calls.view('random', { n: 16 })).expectOk(), a);
    t.setSeed('first');
    assert.equal((await calls.view('random', { n: 16 })).expectOk(), a);
  });

  test('patched state is what the contract reads; calls commit, views do not', async () => {
    await t.patch({ 'e:patched': 'from the test' }, 'kv');
    assert.equal((await kv.call('get', { key: 'patched' }, { context: 'kv' })).expectOk(), 'from the test');
    const viewed = await kv.view('set', { key: 'v', value: '1' }, { context: 'kv' });
    assert.equal(viewed.ok, true);
    assert.equal(viewed.applied, false);
    assert.equal(t.read('e:v', 'kv'), undefined, 'a view applies nothing');
    const set = await kv.call('set', { key: 'v', value: '1' }, { context: 'kv' });
    assert.equal(set.applied, true);
    assert.equal(t.readText('e:v', 'kv'), '1');
    await t.patch({ 'e:v': null }, 'kv');
    assert.equal(t.read('e:v', 'kv'), undefined);
    assert.equal(t.state('kv').root.length, 64);
  });

  test('results, logs and events decode; errors are asserted by kind and message', async () => {
    const ev = await calls.call('event', { kind: 'moved', data: '{"to":3}' });
    assert.deepEqual(ev.events.map((e) => [e.kind, e.json()]), [['moved', { to: 3 }]]);
    const logged = await calls.call('logs', { message: 'hi there' });
    assert.ok(logged.logs.includes('hi there'));
    const missing = await kv.call('get_result', { key: 'nope' }, { context: 'kv' });
    assert.deepEqual(missing.errorJson(), { kind: 'NotFound', data: 'nope' });
    missing.expectError('user_error', 'NotFound');
    assert.throws(() => missing.expectOk(), (e: unknown) => e instanceof AssertionError && /expected get_result to return, but it failed with user_error/.test(e.message));
    assert.throws(() => missing.expectError('vm_error'), AssertionError);
    assert.throws(() => missing.expectError('user_error', /Elsewhere/), AssertionError);
    const panic = await kv.call('get_unchecked', { key: 'nope' }, { context: 'kv' });
    panic.expectError('user_error', /key not found: nope/);
    const noMethod = await kv.call('nope');
    noMethod.expectError('vm_error', 'method_not_found nope (methods: set, get, get_result, get_unchecked, remove, entries)');
    assert.throws(() => ev.expectError(), /expected event to fail/);
  });

  test('gas is a whole number or a bigint; anything else is refused with the range', async () => {
    assert.equal((await calls.view('now', {}, { gas: 10_000_000 })).ok, true);
    assert.equal((await calls.view('now', {}, { gas: 10_000_000n })).ok, true);
    for (const bad of [1.5, -1, 2 ** 60, Number.NaN]) {
      await assert.rejects(calls.view('now', {}, { gas: bad }), /^HostlinkError: gas must be a whole number from 0 to 9007199254740991, or a bigint from 0n to 9223372036854775807n/, String(bad));
    }
  });

  test('expectError refuses a code that is not a result code at once, listing the codes', async () => {
    const panic = await kv.call('get_unchecked', { key: 'nope' }, { context: 'kv' });
    assert.throws(
      () => panic.expectError('panic' as 'user_error'),
      (e: unknown) => e instanceof TypeError && /^expectError: 'panic' is not a result code: use one of user_error, vm_error, internal_error/.test(e.message),
    );
  });

  test('a call stopped by gas says which limit stopped it and how to raise it', async () => {
    const misbehave = await t.deploy(contractPath('misbehave'));
    const loop = await misbehave.call('loop_forever', {}, { gas: 1_000_000 });
    assert.throws(
      () => loop.expectOk(),
      (e: unknown) => e instanceof AssertionError && /failed with vm_error: out_of_gas \(hint: the call used up its gas limit of 1000000 .*raise it with \{ gas: N \}/.test(e.message),
    );
    // 1 MiB returned costs 200 gas per byte to hand over: more than this limit, though the method itself finished.
    const big = await misbehave.call('big_return', {}, { gas: 100_000_000 });
    assert.throws(
      () => big.expectError('user_error'),
      (e: unknown) => e instanceof AssertionError && /got vm_error: out_of_gas \(hint: the method finished, but handing its result and changes to the host costs 200 gas per byte .*limit of 100000000 gas/.test(e.message),
    );
    assert.equal((await misbehave.call('big_return')).ok, true, 'the default limit pays for it');
  });

  test('two replicas converge by exchanging artifacts', async () => {
    const b = await TestHost.open();
    try {
      const collabA = await t.deploy(contractPath('collab'));
      const collabB = await b.deploy(contractPath('collab'));
      const mergeB = await b.deploy(contractPath('host-calls'));
      const made = await collabA.call('set_title', { section: 'intro', title: 'Hello' }, { context: 'doc' });
      made.expectOk();
      assert.ok(made.artifact !== null && made.artifact.length > 0);
      (await mergeB.applyArtifact(made, 'apply_delta', { context: 'doc', encode: (a) => ({ delta: hexOf(a) }) })).expectOk();
      assert.deepEqual((await collabB.view('titles', {}, { context: 'doc' })).expectOk(), { intro: 'Hello' });
      assert.equal(b.state('doc').root, t.state('doc').root, 'same state root on both replicas');
      await assert.rejects(mergeB.applyArtifact(await collabA.view('titles', {}, { context: 'doc' }), 'apply_delta'), /has no artifact/);
    } finally {
      await b.close();
    }
  });
});
