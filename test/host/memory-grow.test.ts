/**
 * memory.grow pays for the memory it leaves, through real VMs (pool and one-shot): every grow hands V8 a new
 * buffer of the whole memory as fresh external memory, and past 64 MiB each one sets off a garbage collection.
 * Charged only for the pages requested, 10,000 grow(0) on a memory of 2,048 pages took a VM's call 6-8 s of CPU
 * for 1.8e8 gas, and whether such a call returned or timed out depended on the machine.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { GAS_PER_PAGE_AFTER_LARGE_GROW, LARGE_MEMORY_PAGES } from '../../src/vm/instrument/gas.js';
import { id32, tempDir } from '../helpers.js';
import { wat } from '../instrument/helpers.js';

const PAGES = LARGE_MEMORY_PAGES + 76; // over 64 MiB

const MODULE = `(module
  (memory (export "memory") 1 ${2 * LARGE_MEMORY_PAGES})
  ;; grows to ${PAGES} pages, then grows by nothing 200 times
  (func (export "spin") (local $i i32)
    (drop (memory.grow (i32.const ${PAGES - 1})))
    (loop $l
      (drop (memory.grow (i32.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 200)))))
  ;; grows to ${2 * LARGE_MEMORY_PAGES} pages at once
  (func (export "once") (drop (memory.grow (i32.const ${2 * LARGE_MEMORY_PAGES - 1})))))`;

describe('memory.grow past 64 MiB', () => {
  const dir = tempDir('hostlink-grow-');
  let host: Host;
  let code: Uint8Array;
  before(async () => {
    host = await Host.open({ dataDir: dir.path, poolSize: 1 });
    code = await host.deploy(await wat(MODULE));
  });
  after(async () => {
    await host.close();
    dir.remove();
  });

  const call = (method: string, mode: 'pool' | 'oneshot', gasLimit: bigint) =>
    host.call({ codeHash: code, method, contextId: id32('grow'), mode, gasLimit, limits: { maxMemoryPages: 2 * LARGE_MEMORY_PAGES } });

  test('each grow of a memory over 64 MiB pays for its pages: 200 grow(0) do not fit 1e9 gas, in a pool VM or one-shot alike', { timeout: 120_000 }, async () => {
    const gasLimit = 1_000_000_000n;
    for (const mode of ['pool', 'oneshot'] as const) {
      const o = await call('spin', mode, gasLimit);
      assert.equal(o.result.code, 'vm_error', `${mode}: ${JSON.stringify(o.result)}`);
      assert.match((o.result as { message: string }).message, /^out_of_gas/, mode);
      assert.equal(o.gasUsed, gasLimit, mode);
    }
  });

  test('one grow to 128 MiB costs its pages at the higher rate, and returns', { timeout: 120_000 }, async () => {
    const atLeast = BigInt(2 * LARGE_MEMORY_PAGES) * BigInt(GAS_PER_PAGE_AFTER_LARGE_GROW);
    for (const mode of ['pool', 'oneshot'] as const) {
      const o = await call('once', mode, 10n * atLeast);
      assert.equal(o.result.code, 'return', `${mode}: ${JSON.stringify(o.result)}`);
      assert.ok(o.gasUsed >= atLeast, `${mode}: ${o.gasUsed} gas, at least ${atLeast}`);
      assert.ok(o.gasUsed < atLeast + 50_000_000n, `${mode}: ${o.gasUsed} gas`);
    }
  });
});
