/**
 * A follow-up is a call the host runs: its base gas is paid by the emit_with_handler or xcall that sets it off
 * (protocol/gas-costs.json). A method emitting 8 events with a handler that emits 8 more made a tree of 585
 * calls (breadth 8, depth 3) that cost the host 0.52 s of CPU for 320 million gas (1.6 ns per gas, the unit is
 * ~0.05) in pool mode, and 585 VM processes in one-shot mode. Through a real Host on LMDB and real VMs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Host, Outcome } from '../../src/host/host.js';
import { HOST_FUNCTIONS } from '../../src/vm/host-functions.generated.js';
import { id32 } from '../helpers.js';
import { openHost, type TestHost } from '../node/helpers.js';
import { call, Probe } from '../node/probe.js';

const BREADTH = 8;
const LIMIT = 1_000_000_000n;

const calls = (o: Outcome): number => 1 + o.followUps.reduce((n, f) => n + (f.outcome ? calls(f.outcome) : 0), 0);
const gasOf = (o: Outcome): bigint => o.gasUsed + o.followUps.reduce((n, f) => n + (f.outcome ? gasOf(f.outcome) : 0n), 0n);

describe('follow-ups are paid for by the call that sets them off', () => {
  let t: TestHost;
  let host: Host;
  let code: Uint8Array;
  before(async () => {
    const p = new Probe(64 * 1024);
    // The event: two descriptors back to back, its kind ('k', placed just before buf's own descriptor) and empty data.
    const kindAt = p.buf('k') - 16;
    const kind = p.desc(kindAt, 1);
    p.desc(kindAt, 0);
    const handler = p.buf('fan');
    p.method('fan', `(local $i i64)
      (block $done (loop $l
        (br_if $done (i64.ge_u (local.get $i) (i64.const ${BREADTH})))
        ${call('emit_with_handler', kind, handler)}
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $l)))
      (call $ret_i64 (i64.const 0))`);
    t = await openHost();
    host = t.host;
    code = await host.deploy(await p.build());
  });
  after(() => t.close());

  test('a fan-out of handlers stops when the tree has paid its gas limit for the calls it set off', async () => {
    const o = await host.call({ codeHash: code, method: 'fan', contextId: id32('fan'), gasLimit: LIMIT });
    assert.equal(o.result.code, 'return');
    const base = BigInt(HOST_FUNCTIONS.emit_with_handler.gas.base);
    // Every follow-up was paid for by an emit_with_handler of the tree, within the tree's one gas limit.
    const ran = calls(o);
    assert.ok(BigInt(ran - 1) * base <= LIMIT, `${ran} calls ran for a gas limit of ${LIMIT}`);
    assert.ok(ran < 1 + BREADTH + BREADTH ** 2 + BREADTH ** 3, `the tree was cut (${ran} calls)`);
    assert.ok(gasOf(o) <= LIMIT, `the tree used ${gasOf(o)} gas`);
  });
});
