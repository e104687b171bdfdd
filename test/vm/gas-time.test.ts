/**
 * Gas is a price of time: a loop over every host-function class (bench/gas-workloads.ts), run through a real
 * Host on LMDB and real VM processes with the DEFAULT gas limit and the DEFAULT deadline, must end by
 * out_of_gas with the whole limit used, never by the deadline. Before host functions were priced by their
 * real cost, most of these loops (distinct-key storage_read, ed25519_verify, register_len, ...) ran into the
 * deadline as `vm_error timeout` with gas_used 0, so the outcome depended on the machine's speed.
 * No timing is asserted: the outcome itself is what must not depend on time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { countedHostWorkloads, engineWorkloads, gasWorkloads, workloadBytes } from '../../bench/gas-workloads.js';
import { Host } from '../../src/host/host.js';
import { DEFAULT_GAS_LIMIT } from '../../src/protocol/message.js';
import { HOST_FUNCTIONS, ROUND_TRIP_GAS } from '../../src/vm/host-functions.generated.js';
import { id32, ROOT, tempDir } from '../helpers.js';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

describe('every host-function class and engine-runtime instruction ends by gas, not by the deadline (defaults, real VM processes)', () => {
  const dir = tempDir();
  let host: Host;
  const ctx = id32('gas-time');
  before(async () => {
    // Nothing overridden: the default gas limit and the default deadline are what is under test.
    host = await Host.open({ dataDir: dir.path, poolSize: 2 });
  });
  after(async () => {
    await host.close();
    dir.remove();
  });

  // The engine loops too: memory.grow of nothing, memory.fill of nothing, a 65,535-element table.copy and a
  // 60,000-target br_table used to run into the deadline (priced 8, 4, 4 + 1 per element and 2 gas).
  for (const w of [...gasWorkloads(), ...engineWorkloads()]) {
    test(`${w.name}: out_of_gas with gas_used = the default limit`, async () => {
      const codeHash = await host.deploy(await workloadBytes(w));
      const before = host.state(ctx);
      const o = await host.call({ codeHash, method: 'run', contextId: ctx });
      assert.deepEqual([o.result.code, (o.result as { message?: string }).message], ['vm_error', 'out_of_gas'], JSON.stringify(o.result));
      assert.equal(o.gasUsed, DEFAULT_GAS_LIMIT);
      assert.equal(o.applied, false);
      assert.deepEqual(host.state(ctx), before, 'state unchanged');
    });
  }
});

describe('round trips are charged by a deterministic rule', () => {
  test('a key first used in the execution costs a round trip, whatever the VM cached before (pool twice, one-shot)', async () => {
    const dir = tempDir();
    const host = await Host.open({ dataDir: dir.path, poolSize: 1 });
    try {
      const rounds = 50;
      const w = countedHostWorkloads(rounds).find((x) => x.name === 'storage_read distinct keys')!;
      const codeHash = await host.deploy(await workloadBytes(w));
      const ctx = id32('gas-round-trips');
      const runs = [];
      for (const mode of ['pool', 'pool', 'oneshot'] as const) runs.push(await host.call({ codeHash, method: 'run', contextId: ctx, mode }));
      for (const o of runs) assert.equal(o.result.code, 'return', JSON.stringify(o.result));
      assert.deepEqual(runs.map((o) => o.gasUsed), [runs[0]!.gasUsed, runs[0]!.gasUsed, runs[0]!.gasUsed]);
      assert.ok(runs[0]!.gasUsed > BigInt(rounds * ROUND_TRIP_GAS.base), `gas_used ${runs[0]!.gasUsed} includes ${rounds} round trips`);
    } finally {
      await host.close();
      dir.remove();
    }
  });
});

describe('the gas schedule covers the catalogue', () => {
  test('every host function has a base cost', () => {
    for (const [name, f] of Object.entries(HOST_FUNCTIONS)) {
      assert.ok(f.gas.base > 0, `${name} has no base gas`);
      assert.ok(f.gas.perByte >= 0, `${name} has a negative per-byte gas`);
    }
  });

  test('a catalogued function without costs stops code generation, naming it', async () => {
    const codegen = (await import(pathToFileURL(join(ROOT, 'scripts', 'codegen.mjs')).href)) as {
      checkGasCosts: (hf: unknown, gc: unknown) => void;
    };
    const fn = (name: string): object => ({ name, family: 'f', params: [], result: null });
    const instantiation = { per_data_byte: 1, per_table_slot: 1, per_element: 1, per_initial_page: 1, per_element_segment: 1, per_data_segment: 1, per_import: 1, per_export: 1, per_global: 1 };
    const costs = { schedule_version: 2, round_trip: { base: 1, per_byte: 1, per_key: 1 }, handed_to_host: { per_byte: 1 }, fingerprint: { per_byte: 1 }, instantiation, functions: { a: { base: 1, per_byte: 0 } } };
    assert.doesNotThrow(() => codegen.checkGasCosts({ functions: [fn('a')] }, costs));
    assert.throws(() => codegen.checkGasCosts({ functions: [fn('a'), fn('new_fn')] }, costs), /no costs for host function\(s\) new_fn/);
    assert.throws(() => codegen.checkGasCosts({ functions: [] }, costs), /prices unknown host function\(s\) a/);
    assert.throws(
      () => codegen.checkGasCosts({ functions: [fn('a')] }, { ...costs, functions: { a: { base: -1, per_byte: 0 } } }),
      /a\.base must be a non-negative integer/,
    );
    // What a call hands the host when it ends is priced too: a schedule without that price stops generation.
    const { handed_to_host: _, ...unpriced } = costs;
    assert.throws(() => codegen.checkGasCosts({ functions: [fn('a')] }, unpriced), /handed_to_host\.per_byte must be a non-negative integer/);
    // So is every storage key a request asks the host to look up.
    assert.throws(() => codegen.checkGasCosts({ functions: [fn('a')] }, { ...costs, round_trip: { base: 1, per_byte: 1 } }), /round_trip\.per_key must be a non-negative integer/);
    // Creating a sub-instance is priced too.
    assert.throws(() => codegen.checkGasCosts({ functions: [fn('a')] }, { ...costs, instantiation: { ...instantiation, per_element: undefined } }), /instantiation\.per_element must be/);
  });
});
