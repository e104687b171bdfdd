/**
 * Governance through real VM processes: proposal ids derived from the message, proposals and approvals
 * recorded per context after success only, actions checked as Borsh Vec<ProposalAction> at call time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Host } from '../../src/host/host.js';
import { proposalId } from '../../src/protocol/call-ids.js';
import { buildMessage, parseMessage } from '../../src/protocol/message.js';
import { contract, id32, utf8 } from '../helpers.js';
import { callJson, hex, jsonOf, openHost, type TestHost } from './helpers.js';
import { assertVmError, call, Probe, returned } from './probe.js';

/** Borsh Vec<ProposalAction> with one SetNumApprovals(n). */
const setNumApprovals = (n: number): Uint8Array => Uint8Array.from([1, 0, 0, 0, 2, n, 0, 0, 0]);

describe('governance', () => {
  let t: TestHost;
  let host: Host;
  let gov: Uint8Array;
  let probe: Uint8Array;
  const ctx = id32('governance-ctx');
  const alice = id32('alice');
  const bob = id32('bob');
  const propose = (actions: unknown[], executorId = alice) => callJson(host, gov, 'propose', { actions }, { contextId: ctx, executorId });
  const runProbe = (method: string, limits?: Record<string, number>) =>
    host.call({ codeHash: probe, method, contextId: ctx, executorId: alice, ...(limits ? { limits } : {}) });

  before(async () => {
    t = await openHost();
    host = t.host;
    gov = await host.deploy(contract('governance'));
    const p = new Probe();
    const good = p.buf(setNumApprovals(3));
    const id = p.out(32);
    const ids = p.out(64);
    const shortId = p.out(31);
    const oob = p.desc(1 << 30, 8);
    const truncated = p.buf(Uint8Array.from([1, 0, 0, 0, 2, 3]));
    const unknownTag = p.buf(Uint8Array.from([1, 0, 0, 0, 9]));
    const trailing = p.buf(Uint8Array.from([0, 0, 0, 0, 1]));
    // Transfer { receiver_id: "\xff", amount } : a Borsh String that is not UTF-8.
    const badString = p.buf(Uint8Array.from([1, 0, 0, 0, 1, 1, 0, 0, 0, 0xff, ...new Uint8Array(16)]));
    const approvalOf = p.buf(id32('some proposal'));
    p.method('two', `${call('send_proposal', good, p.desc(ids.at, 32))} ${call('send_proposal', good, p.desc(ids.at + 32, 32))}
      (call $ret_mem (i64.const ${ids.at}) (i64.const 64))`);
    p.method('send_then_trap', `${call('send_proposal', good, id.desc)} unreachable`);
    p.method('approve_unknown', `${call('approve_proposal', approvalOf)}`);
    p.method('short_id', `${call('send_proposal', good, shortId.desc)}`);
    p.method('oob_actions', `${call('send_proposal', oob, id.desc)}`);
    p.method('oob_id', `${call('send_proposal', good, oob)}`);
    p.method('truncated', `${call('send_proposal', truncated, id.desc)}`);
    p.method('unknown_tag', `${call('send_proposal', unknownTag, id.desc)}`);
    p.method('trailing', `${call('send_proposal', trailing, id.desc)}`);
    p.method('bad_string', `${call('send_proposal', badString, id.desc)}`);
    p.method('approve_short', `${call('approve_proposal', shortId.desc)}`);
    p.method('approve_oob', `${call('approve_proposal', oob)}`);
    probe = await host.deploy(await p.build());
  });
  after(() => t.close());

  test('propose: the id is derived from the message; the proposal is recorded with its actions and proposer', async () => {
    const actions = [{ kind: 'set_context_value', key: 'k', value: 'v' }, { kind: 'transfer', receiver_id: 'bob', amount: '100' }];
    const out = jsonOf(await propose(actions)) as { proposal_id: string; actions: number };
    assert.equal(out.actions, 2);
    const msg = parseMessage(buildMessage({ codeHash: gov, method: 'propose', input: utf8(JSON.stringify({ actions })), contextId: ctx, executorId: alice }));
    assert.equal(out.proposal_id, hex(proposalId(msg, 0)));
    const [record] = host.node.proposals(ctx);
    assert.equal(hex(record!.id), out.proposal_id);
    assert.equal(hex(record!.proposer), hex(alice));
    assert.deepEqual(record!.decoded, [
      { kind: 'set_context_value', key: utf8('k'), value: utf8('v') },
      { kind: 'transfer', receiverId: 'bob', amount: 100n },
    ]);
    const again = jsonOf(await propose(actions)) as { proposal_id: string };
    assert.equal(again.proposal_id, out.proposal_id, 'the same message gives the same id');
    assert.equal(host.node.proposals(ctx).length, 1, 'and it is recorded once');
    const byBob = jsonOf(await propose(actions, bob)) as { proposal_id: string };
    assert.notEqual(byBob.proposal_id, out.proposal_id, 'another executor, another id');
    const seeded = await host.call({ codeHash: gov, method: 'propose', input: utf8(JSON.stringify({ actions })), contextId: ctx, executorId: alice, seed: id32('seed') });
    assert.notEqual((jsonOf(seeded) as { proposal_id: string }).proposal_id, out.proposal_id, 'another seed, another id');
  });

  test('approve records the executor per proposal; approvals of unknown proposals are kept', async () => {
    const [record] = host.node.proposals(ctx);
    assert.equal(jsonOf(await callJson(host, gov, 'approve', { proposal_id: hex(record!.id) }, { contextId: ctx, executorId: bob })), null);
    assert.equal(jsonOf(await callJson(host, gov, 'approve', { proposal_id: hex(record!.id) }, { contextId: ctx, executorId: alice })), null);
    assert.deepEqual(host.node.approvals(ctx, record!.id).map(hex), [alice, bob].map(hex).sort());
    assert.deepEqual(host.node.proposals(ctx).find((p) => hex(p.id) === hex(record!.id))!.approvals.map(hex), [alice, bob].map(hex).sort());
    assert.equal((await runProbe('approve_unknown')).result.code, 'return');
    assert.deepEqual(host.node.approvals(ctx, id32('some proposal')).map(hex), [hex(alice)]);
  });

  test('two proposals in one call get the indices 0 and 1', async () => {
    const out = returned(await runProbe('two'));
    const msg = parseMessage(buildMessage({ codeHash: probe, method: 'two', contextId: ctx, executorId: alice }));
    assert.equal(hex(out.subarray(0, 32)), hex(proposalId(msg, 0)));
    assert.equal(hex(out.subarray(32)), hex(proposalId(msg, 1)));
  });

  test('a failed call records nothing', async () => {
    const before = host.node.proposals(ctx).length;
    assert.equal((await runProbe('send_then_trap')).result.code, 'vm_error');
    assert.equal(host.node.proposals(ctx).length, before);
  });

  test('malformed actions trap DeserializationError; sizes and descriptors are checked', async () => {
    assertVmError(await runProbe('truncated'), 'DeserializationError', 'send_proposal');
    assertVmError(await runProbe('unknown_tag'), 'DeserializationError', 'send_proposal');
    assertVmError(await runProbe('trailing'), 'DeserializationError', 'send_proposal');
    const m = assertVmError(await runProbe('bad_string'), 'DeserializationError', 'send_proposal');
    assert.match(m, /UTF-8/);
    assertVmError(await runProbe('short_id'), 'InvalidMemoryAccess', 'send_proposal');
    assertVmError(await runProbe('oob_actions'), 'InvalidMemoryAccess', 'send_proposal');
    assertVmError(await runProbe('oob_id'), 'InvalidMemoryAccess', 'send_proposal');
    assertVmError(await runProbe('approve_short'), 'InvalidMemoryAccess', 'approve_proposal');
    assertVmError(await runProbe('approve_oob'), 'InvalidMemoryAccess', 'approve_proposal');
    assertVmError(await runProbe('two', { maxStorageValueSize: 8 }), 'ValueLengthOverflow', 'send_proposal');
  });
});
