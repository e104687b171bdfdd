/**
 * The consensus helper: the oracle example run by a leader and 5 validators, each a separate Host (real VM
 * processes) over its own copy of the same LMDB state, against a local HTTP server that answers one of them
 * differently; then the tally rules, timeouts, and the accepted call applied by a sync replay.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decide, runConsensus, type ValidatorVote } from '../../src/host/consensus.js';
import { contract, id32, text, utf8 } from '../helpers.js';
import { openHost, type TestHost } from '../node/helpers.js';

/** A quote server: request n (from 1) gets answer(n); `hang(n)` requests are never answered. */
function startServer(answer: (n: number, path: string) => string, hang: (n: number) => boolean = () => false): Promise<Server> {
  let n = 0;
  const server = createServer((req, res) => {
    n++;
    if (hang(n)) return;
    res.end(answer(n, req.url ?? ''));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Closes the server and the kept-alive connections of the hosts' fetches (so the test process can end). */
function stop(server: Server): void {
  server.close();
  server.closeAllConnections();
}

/** A deadline no loaded machine reaches: only the timeout case wants timeouts. */
const slow = { deadlineMs: 120_000 };

const originOf = (s: Server): string => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

describe('consensus helper', () => {
  let t: TestHost;
  let code: Uint8Array;
  const ctx = id32('oracle');
  before(async () => {
    t = await openHost({ poolSize: 1 });
    code = await t.host.deploy(contract('oracle'));
  });
  after(() => t.close());

  const request = (origin: string, method = 'update_price') => ({
    codeHash: code,
    method,
    input: utf8(JSON.stringify({ url: `${origin}/price` })),
    contextId: ctx,
  });

  test('5 validators, the server answers one of them differently: 4 agree, 1 disagrees, accepted', async () => {
    // Request 1 is the leader's; validators fetch in parallel, so which one gets request 4 varies.
    const server = await startServer((n) => (n === 4 ? '250.00' : (100 + n * 0.1).toFixed(2)));
    try {
      const origin = originOf(server);
      const report = await runConsensus(t.host, request(origin), { validators: 5, hostOptions: { ...slow, fetch: { allow: [origin] } } });
      assert.equal(report.leader.result.code, 'return');
      assert.equal(text((report.leader.result as { value: Uint8Array }).value), '100.1');
      assert.equal(report.votes.length, 5);
      assert.deepEqual(report.tally, { agree: 4, disagree: 1, timeout: 0 });
      assert.equal(report.decision, 'accepted');
      const dissent = report.votes.filter((v) => v.vote === 'disagree');
      assert.equal(dissent.length, 1);
      assert.match(dissent[0]!.reason, /^block 0: the validator method rejected the proposal/);
      for (const v of report.votes.filter((x) => x.vote === 'agree')) assert.deepEqual(v.outcome!.executionHash, report.leader.executionHash);
      // Nothing was written to the source state; a sync replay applies the leader's result here.
      assert.equal(t.host.state(ctx).entries.length, 0);
      const applied = await t.host.call({ ...request(origin), nondet: { leaderResults: report.leader.nondetResults, sync: true } });
      assert.equal(applied.applied, true);
      assert.deepEqual(applied.executionHash, report.leader.executionHash);
      assert.deepEqual(t.host.state(ctx).entries.map(([k, v]) => [text(k), text(v)]), [['price', '100.1']]);
    } finally {
      stop(server);
    }
  });

  test('a majority seeing a different price rejects the leader', async () => {
    const server = await startServer((n) => (n === 1 ? '100' : n <= 3 ? '130' : '100.5'));
    try {
      const origin = originOf(server);
      const report = await runConsensus(t.host, request(origin), { validators: 3, hostOptions: { ...slow, fetch: { allow: [origin] } } });
      assert.deepEqual(report.tally, { agree: 1, disagree: 2, timeout: 0 });
      assert.equal(report.decision, 'rejected');
    } finally {
      stop(server);
    }
  });

  test('the comparative block agrees only on equal bytes', async () => {
    const server = await startServer((n) => (n === 3 ? 'page B' : 'page A'));
    try {
      const origin = originOf(server);
      const report = await runConsensus(t.host, request(origin, 'update_page'), { validators: 3, hostOptions: { ...slow, fetch: { allow: [origin] } } });
      assert.deepEqual(report.tally, { agree: 2, disagree: 1, timeout: 0 });
      assert.equal(report.decision, 'accepted');
    } finally {
      stop(server);
    }
  });

  test('validators whose call times out vote timeout; a majority of them decides timeout', async () => {
    // Only the leader's request is answered. Validators 1 and 2 wait for theirs until the host's deadline
    // stops them; validator 3's own fetch gives up first, so it rejects the proposal instead.
    const server = await startServer(() => '100', (n) => n > 1);
    try {
      const origin = originOf(server);
      const report = await runConsensus(t.host, request(origin), {
        validators: 3,
        hostOptions: { ...slow, fetch: { allow: [origin], timeoutMs: 600_000 } },
        nodeOptions: (node) => (node === 1 || node === 2 ? { deadlineMs: 1500 } : node === 3 ? { fetch: { allow: [origin], timeoutMs: 200 } } : {}),
      });
      assert.deepEqual(report.tally, { agree: 0, disagree: 1, timeout: 2 });
      assert.equal(report.decision, 'timeout');
      assert.deepEqual(report.votes.map((v) => [v.node, v.vote]), [[1, 'timeout'], [2, 'timeout'], [3, 'disagree']]);
      for (const v of report.votes.filter((x) => x.vote === 'timeout')) assert.equal(v.reason, 'timeout');
    } finally {
      stop(server);
    }
  });

  test('every node reads the stored blobs: what the nodes agree on is what the sync replay applies', async () => {
    // The nodes' stores are copies of the source's tables; blob contents are not in the tables. Without them
    // every node read the blob as empty and agreed, and the sync replay on the source then returned its content.
    const blobs = await t.host.deploy(contract('blob-store'));
    const contextId = id32('consensus-blobs');
    const up = await t.host.call({ codeHash: blobs, method: 'upload', input: utf8(JSON.stringify({ name: 'a', data: 'hello blob' })), contextId });
    const id = (JSON.parse(text((up.result as { value: Uint8Array }).value)) as { blob_id: string }).blob_id;
    const req = { codeHash: blobs, method: 'download', input: utf8(JSON.stringify({ blob_id: id, chunk_size: 3 })), contextId };
    const report = await runConsensus(t.host, req, { validators: 3, hostOptions: slow });
    assert.equal(report.decision, 'accepted');
    assert.equal((JSON.parse(text((report.leader.result as { value: Uint8Array }).value)) as { data: string }).data, 'hello blob');
    const applied = await t.host.call({ ...req, nondet: { leaderResults: report.leader.nondetResults, sync: true } });
    assert.deepEqual(applied.executionHash, report.leader.executionHash);
  });

  test('tally: strict majority, ties are no_majority', () => {
    const votes = (...v: ValidatorVote['vote'][]): ValidatorVote[] => v.map((vote, i) => ({ node: i + 1, vote, reason: '' }));
    assert.equal(decide(votes('agree', 'agree', 'disagree')).decision, 'accepted');
    assert.equal(decide(votes('agree', 'disagree')).decision, 'no_majority');
    assert.equal(decide(votes('agree', 'agree', 'disagree', 'disagree')).decision, 'no_majority');
    assert.equal(decide(votes('agree', 'agree', 'disagree', 'timeout', 'timeout')).decision, 'no_majority');
    assert.equal(decide(votes('disagree', 'disagree', 'timeout')).decision, 'rejected');
    assert.equal(decide(votes('timeout', 'timeout', 'agree')).decision, 'timeout');
  });

  test('at least one validator', async () => {
    await assert.rejects(runConsensus(t.host, request('http://127.0.0.1:1'), { validators: 0 }), /at least 1/);
  });
});
