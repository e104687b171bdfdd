/**
 * The hostile corpus (test/hostile/*.wat, expected outcomes in test/hostile/expected.json) run end to end:
 * deployed to a real Host on LMDB and called in real VM processes. Each module gets its exact documented
 * result, the context's state is unchanged, the host keeps serving, and a bystander call on another context
 * completes meanwhile. The workload cases (test/hostile/workload) ask the host for too much work or for
 * context changes the call is not entitled to.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Host } from '../../src/host/host.js';
import type { VmLimits } from '../../src/protocol/message.js';
import { contract, id32, ROOT, tempDir, text, utf8 } from '../helpers.js';
import { loadCorpus, wat } from '../instrument/helpers.js';
import { assertCatalogued } from '../protocol/catalogue.js';

const corpus = loadCorpus();
/** Workload cases (test/hostile/workload): too much work asked of the host, or changes not entitled to. */
const workload = JSON.parse(readFileSync(join(ROOT, 'test', 'hostile', 'workload', 'expected.json'), 'utf8')) as {
  cases: (typeof corpus.cases[number] & { gasLimit?: string })[];
};
const p = corpus.policy;
const limits: Partial<VmLimits> = {
  maxModuleSize: p.maxModuleBytes,
  maxFunctions: p.maxFunctions,
  maxLocalsPerFunction: p.maxLocalsPerFunction,
  maxTableSize: p.maxTableSize,
  maxDataBytes: p.maxDataBytes,
  maxMemoryPages: p.maxMemoryPages,
  maxStackSize: p.maxStackHeight * 8,
};

describe('hostile corpus through the host and real VM processes', () => {
  const dir = tempDir();
  let host: Host;
  let kv: Uint8Array;
  const ctx = id32('hostile');
  before(async () => {
    host = await Host.open({ dataDir: dir.path, poolSize: 2, limits, gasLimit: BigInt(corpus.gasLimit), floats: p.floats });
    kv = await host.deploy(contract('kv-store'));
    await host.call({ codeHash: kv, method: 'set', input: utf8('{"key":"a","value":"1"}'), contextId: ctx });
  });
  after(async () => {
    await host.close();
    dir.remove();
  });

  test('deploy refuses, by default, a module the VM would reject, naming the rule', async () => {
    const simd = await wat(readFileSync(join(ROOT, 'test', 'hostile', 'simd.wat'), 'utf8'));
    await assert.rejects(host.deploy(simd), /^HostlinkError: contract refused: feature_simd: 0xfd \(function 0, offset 0x30\)$/);
  });

  const cases: (typeof workload.cases[number] & { dir: string })[] = [
    ...corpus.cases.map((c) => ({ ...c, dir: '' })),
    ...workload.cases.map((c) => ({ ...c, dir: 'workload' })),
  ];
  for (const c of cases) {
    test(`${join(c.dir, c.file)} ${c.method}: ${c.expect.code} ${c.expect.message ?? c.expect.value ?? ''}`, async () => {
      const before = host.state(ctx);
      const bytes = await wat(readFileSync(join(ROOT, 'test', 'hostile', c.dir, c.file), 'utf8'));
      // Stored unchecked: the point is what the VM does with it at call time.
      const codeHash = await host.deploy(bytes, { check: false });
      // A bystander on another context is served while the hostile call runs.
      const [o, bystander] = await Promise.all([
        host.call({ codeHash, method: c.method, contextId: ctx, ...(c.gasLimit !== undefined ? { gasLimit: BigInt(c.gasLimit) } : {}) }),
        host.call({ codeHash: kv, method: 'get', input: utf8('{"key":"a"}'), contextId: id32('hostile-bystander') }),
      ]);
      assert.equal(bystander.result.code, 'return', 'the bystander call completes');
      assert.equal(o.result.code, c.expect.code, JSON.stringify(o.result));
      if (c.expect.code === 'return') {
        const v = (o.result as { value: unknown }).value;
        assert.ok(v instanceof Uint8Array);
        assert.equal(Buffer.from(v).toString('hex'), c.expect.value);
      } else {
        assert.equal((o.result as { message: string }).message, c.expect.message);
        assertCatalogued(o.result.code, (o.result as { message: string }).message, `${c.file} through the host`);
        assert.equal(o.applied, false);
      }
      assert.deepEqual(host.state(ctx), before, 'state unchanged');
      const still = await host.call({ codeHash: kv, method: 'get', input: utf8('{"key":"a"}'), contextId: ctx });
      assert.equal(text((still.result as { value: Uint8Array }).value), '"1"', 'the host keeps serving');
    });
  }
});
