/**
 * What one execution may make the VM hold, end to end through a real Host on LMDB and real VM processes:
 *
 * - test/hostile/budget/*.wat (expected outcomes in its expected.json): registers, the write overlay and
 *   pending effects share max_execution_memory; each module passes it and ends with the exact
 *   MemoryLimitExceeded VMError, the same gas on every run, and the state unchanged.
 * - a module of 300,000 nested blocks (2.4 MB of them took a VM past 1 GB while V8 compiled it) is refused
 *   by name at deploy and, stored unchecked, by the VM before anything is compiled.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Host } from '../../src/host/host.js';
import type { VmLimits } from '../../src/protocol/message.js';
import { contract, id32, ROOT, tempDir, text, utf8 } from '../helpers.js';
import { wat } from '../instrument/helpers.js';
import { leb } from './big-modules.js';

interface BudgetCorpus {
  gasLimit: string;
  limits: Partial<VmLimits>;
  cases: { file: string; method: string; expect: { code: string; message: string } }[];
  /** Modules that must stay within the same budget (releases are counted). */
  within: { file: string; method: string }[];
}

const corpus = JSON.parse(readFileSync(join(ROOT, 'test', 'hostile', 'budget', 'expected.json'), 'utf8')) as BudgetCorpus;

/** A module whose only function opens `depth` nested empty blocks (built directly: no text form needed). */
function nestedBlocks(depth: number): Uint8Array {
  const section = (id: number, bytes: number[]): number[] => [id, ...leb(bytes.length), ...bytes];
  const body = new Uint8Array(1 + 3 * depth + 1);
  body[0] = 0; // no locals
  for (let i = 0; i < depth; i++) body.set([0x02, 0x40], 1 + 2 * i);
  body.fill(0x0b, 1 + 2 * depth);
  const name = (s: string): number[] => [s.length, ...Buffer.from(s)];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [1, 0x60, 0, 0]),
    ...section(3, [1, 0]),
    ...section(5, [1, 0, 1]),
    ...section(7, [2, ...name('run'), 0, 0, ...name('memory'), 2, 0]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}

describe('per-execution memory budget and module nesting (real VM processes)', () => {
  const dir = tempDir();
  let host: Host;
  let kv: Uint8Array;
  const ctx = id32('memory-budget');
  before(async () => {
    host = await Host.open({ dataDir: dir.path, poolSize: 2 });
    kv = await host.deploy(contract('kv-store'));
    await host.call({ codeHash: kv, method: 'set', input: utf8('{"key":"a","value":"1"}'), contextId: ctx });
  });
  after(async () => {
    await host.close();
    dir.remove();
  });

  for (const c of corpus.cases) {
    test(`${c.file}: ${c.expect.message.split(':')[0]}`, async () => {
      const state = host.state(ctx);
      const codeHash = await host.deploy(await wat(readFileSync(join(ROOT, 'test', 'hostile', 'budget', c.file), 'utf8')));
      const call = () => host.call({ codeHash, method: c.method, contextId: ctx, gasLimit: BigInt(corpus.gasLimit), limits: corpus.limits });
      const o = await call();
      assert.deepEqual({ code: o.result.code, message: (o.result as { message?: string }).message }, c.expect);
      assert.equal(o.applied, false);
      assert.ok(o.gasUsed < BigInt(corpus.gasLimit), `gas_used ${o.gasUsed} is exact, not the whole limit`);
      const again = await call();
      assert.deepEqual([again.result, again.gasUsed], [o.result, o.gasUsed], 'same outcome and gas on a second run');
      assert.deepEqual(host.state(ctx), state, 'state unchanged');
      const still = await host.call({ codeHash: kv, method: 'get', input: utf8('{"key":"a"}'), contextId: ctx });
      assert.equal(text((still.result as { value: Uint8Array }).value), '"1"', 'the host keeps serving');
    });
  }

  for (const c of corpus.within) {
    test(`${c.file}: returns within the budget (replacing releases)`, async () => {
      const codeHash = await host.deploy(await wat(readFileSync(join(ROOT, 'test', 'hostile', 'budget', c.file), 'utf8')));
      const o = await host.call({ codeHash, method: c.method, contextId: id32('memory-budget-within'), gasLimit: BigInt(corpus.gasLimit) * 10n, limits: corpus.limits });
      assert.equal(o.result.code, 'return', JSON.stringify(o.result));
    });
  }

  test('the default budget bounds the same modules (no limits given)', async () => {
    const codeHash = await host.deploy(await wat(readFileSync(join(ROOT, 'test', 'hostile', 'budget', 'overlay.wat'), 'utf8')));
    const o = await host.call({ codeHash, method: 'run', contextId: ctx, gasLimit: 1n << 40n });
    assert.equal(o.result.code, 'vm_error');
    assert.match((o.result as { message: string }).message, /^MemoryLimitExceeded \(storage_write\): .* over max_execution_memory 67108864$/);
  });

  const REJECTION = 'too_deeply_nested: more than 4096 nested blocks, loops and ifs (function 0, offset 0x2032)';

  test('300,000 nested blocks are refused by name at deploy, before compilation', async () => {
    await assert.rejects(host.deploy(nestedBlocks(300_000)), (e: Error) => { assert.equal(e.message, `contract refused: ${REJECTION}`); return true; });
  });

  test('stored unchecked, the VM refuses them too; 4096 levels still run', async () => {
    const state = host.state(ctx);
    const deep = await host.deploy(nestedBlocks(300_000), { check: false });
    const o = await host.call({ codeHash: deep, method: 'run', contextId: ctx });
    assert.deepEqual({ code: o.result.code, message: (o.result as { message?: string }).message }, { code: 'vm_error', message: `module rejected: ${REJECTION}` });
    assert.deepEqual(host.state(ctx), state);
    const ok = await host.call({ codeHash: await host.deploy(nestedBlocks(4096)), method: 'run', contextId: ctx });
    assert.equal(ok.result.code, 'return', JSON.stringify(ok.result));
  });
});
