/**
 * What a call hands the host when it ends is paid for (handed_to_host in protocol/gas-costs.json). The host
 * decodes, hashes and applies every byte of a result and its effects on its event loop: a contract returning
 * 60 MiB cost the host ~400 ms of CPU while the gas charged for the bytes (value_return's per_byte) priced
 * ~40 ms. Through real VM processes, a real Host on LMDB, and in-process execution for the same rule.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Host } from '../../src/host/host.js';
import { runInProcess } from '../../src/host/in-process.js';
import { HANDED_TO_HOST_GAS, HOST_FUNCTIONS } from '../../src/vm/host-functions.generated.js';
import { id32, MemoryBackend, message } from '../helpers.js';
import { openHost, type TestHost } from '../node/helpers.js';
import { call, Probe } from '../node/probe.js';

const HANDED = BigInt(HANDED_TO_HOST_GAS.perByte);
const RETURNED = BigInt(HOST_FUNCTIONS.value_return.gas.perByte) + HANDED;
const KiB = 1024;
const VALUE = 256 * KiB;

describe('gas for what a call hands the host', () => {
  let t: TestHost;
  let host: Host;
  let probe: Uint8Array;
  let probeHash: Uint8Array;
  const ctx = id32('handed-gas');

  before(async () => {
    const p = new Probe(64 * KiB);
    const region = p.out(2 * VALUE);
    const key = p.buf('big');
    for (const n of [0, 1000, 100_000]) p.method(`ret_${n}`, `(call $ret_mem (i64.const ${region.at}) (i64.const ${n}))`);
    p.method('write_big', `(drop ${call('storage_write', key, p.desc(region.at, VALUE), 0)}) (call $ret_i64 (i64.const 0))`);
    probe = await p.build();
    t = await openHost();
    host = t.host;
    probeHash = await host.deploy(probe);
  });
  after(() => t.close());

  const run = (method: string, gasLimit?: bigint, mode?: 'pool' | 'oneshot') =>
    host.call({ codeHash: probeHash, method, contextId: ctx, ...(gasLimit !== undefined ? { gasLimit } : {}), ...(mode ? { mode } : {}) });

  test('each returned byte costs the copy into the VM and the handing over, exactly', async () => {
    const [none, small, large] = await Promise.all([run('ret_0'), run('ret_1000'), run('ret_100000')]);
    for (const o of [none, small, large]) assert.equal(o.result.code, 'return', JSON.stringify(o.result));
    assert.equal(small.gasUsed - none.gasUsed, 1000n * RETURNED);
    assert.equal(large.gasUsed - none.gasUsed, 100_000n * RETURNED);
  });

  test('a value the call cannot pay to hand over ends out_of_gas with the whole limit used, in every mode', async () => {
    const enough = (await run('ret_100000')).gasUsed;
    // Enough for everything the method does, not for handing its value over.
    const limit = enough - 100_000n * HANDED + 1n;
    const outcomes = await Promise.all([run('ret_100000', limit, 'pool'), run('ret_100000', limit, 'oneshot')]);
    const backend = new MemoryBackend();
    const end = runInProcess(backend, message({ codeHash: backend.deploy(probe), method: 'ret_100000', contextId: ctx, gasLimit: limit }));
    assert.equal(end.kind, 'result');
    const inProcess = end as Extract<typeof end, { kind: 'result' }>;
    for (const o of [...outcomes, { result: inProcess.result, gasUsed: inProcess.effects.gasUsed }]) {
      assert.deepEqual(o.result, { code: 'vm_error', message: 'out_of_gas', fingerprint: null });
      assert.equal(o.gasUsed, limit);
    }
    assert.equal((await run('ret_100000', enough)).result.code, 'return', 'the exact price is enough');
  });

  test('a write the call cannot pay to hand over is not applied; paid, it is', async () => {
    const paid = await run('write_big', 10n ** 12n);
    assert.equal(paid.result.code, 'return');
    assert.equal(paid.applied, true);
    assert.equal(host.state(ctx).entries.length, 1, 'the paid write is applied');
    // A fresh context: the same write again, with gas for the method but not for handing the value over.
    const other = id32('handed-gas-other');
    const limit = paid.gasUsed - BigInt(VALUE) * HANDED;
    const unpaid = await host.call({ codeHash: probeHash, method: 'write_big', contextId: other, gasLimit: limit });
    assert.deepEqual(unpaid.result, { code: 'vm_error', message: 'out_of_gas', fingerprint: null });
    assert.equal(unpaid.applied, false);
    assert.deepEqual(unpaid.writes, []);
    assert.deepEqual(host.state(other).entries, [], 'nothing written');
  });
});
