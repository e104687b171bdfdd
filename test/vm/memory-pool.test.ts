/**
 * Memories the VM lends its instances (src/vm/memory-pool.ts): an execution never sees a byte an earlier one
 * left, whichever module, whether it returned or trapped, through real VM processes on a Host with one VM;
 * in process, a recycled memory is really reused, a grown or large one is not kept, and results, gas, effects
 * and fingerprints are identical with and without recycling.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Host } from '../../src/host/host.js';
import { runInProcess } from '../../src/host/in-process.js';
import type { JobEnd } from '../../src/host/job.js';
import { MemoryPool } from '../../src/vm/memory-pool.js';
import { CodeCache } from '../../src/vm/runner.js';
import { contract, id32, MemoryBackend, message, utf8 } from '../helpers.js';
import { openHost, type TestHost } from '../node/helpers.js';
import { Probe, returned } from '../node/probe.js';

const MARK = '0x1122334455667788';

/** A probe that plants a mark in its memory, reads it back, traps after planting, grows, or grows large. */
async function marker(tag: number): Promise<{ bytes: Uint8Array; at: number }> {
  const p = new Probe();
  const region = p.out(16);
  const plant = `(i64.store (i32.const ${region.at}) (i64.const ${MARK})) (i64.store (i32.const ${region.at + 8}) (i64.const ${tag}))`;
  p.method('plant', `${plant} (call $ret_i64 (i64.const ${tag}))`);
  p.method('peek', `(call $ret_mem (i64.const ${region.at}) (i64.const 16))`);
  p.method('plant_trap', `${plant} unreachable`);
  p.method('plant_grow', `${plant} (drop (memory.grow (i32.const 1))) (call $ret_i64 (i64.const ${tag}))`);
  return { bytes: await p.build(), at: region.at };
}

const ZEROS = new Uint8Array(16);

/** The bytes an in-process execution returned. */
function bytesOf(e: Extract<JobEnd, { kind: 'result' }>): Uint8Array {
  assert.equal(e.result.code, 'return', JSON.stringify(e.result));
  const v = (e.result as { value: unknown }).value;
  assert.ok(v instanceof Uint8Array);
  return v;
}

describe('recycled memories, real VM processes', () => {
  let t: TestHost;
  let host: Host;
  let a: Uint8Array;
  let b: Uint8Array;
  const ctx = id32('memory-pool');

  before(async () => {
    // One VM: every call below runs in the same process, one after the other.
    t = await openHost({ poolSize: 1, mode: 'pool' });
    host = t.host;
    a = await host.deploy((await marker(1)).bytes);
    b = await host.deploy((await marker(2)).bytes);
  });
  after(() => t.close());

  const run = (codeHash: Uint8Array, method: string) => host.call({ codeHash, method, contextId: ctx });

  test('a mark planted by one execution is not seen by the next, same module or another, returned or trapped', async () => {
    for (const [planter, method] of [[a, 'plant'], [a, 'plant_trap'], [b, 'plant'], [a, 'plant_grow']] as const) {
      const planted = await run(planter, method);
      assert.equal(planted.result.code, method === 'plant_trap' ? 'vm_error' : 'return', JSON.stringify(planted.result));
      for (const reader of [a, b]) {
        assert.deepEqual(returned(await run(reader, 'peek')), ZEROS, `after ${method}: the next execution's memory holds only zeros`);
      }
    }
  });
});

describe('recycled memories, in process', () => {
  const backend = new MemoryBackend();
  let probe: Uint8Array;
  let other: Uint8Array;
  const kv = backend.deploy(contract('kv-store'));

  before(async () => {
    probe = backend.deploy((await marker(1)).bytes);
    other = backend.deploy((await marker(2)).bytes);
  });

  const end = (cache: CodeCache, codeHash: Uint8Array, method: string, input = ''): Extract<JobEnd, { kind: 'result' }> => {
    const e = runInProcess(backend, message({ codeHash, method, input: utf8(input) }), cache);
    assert.equal(e.kind, 'result');
    return e as Extract<JobEnd, { kind: 'result' }>;
  };

  test('a memory is kept after an execution and lent to the next: it is zeros again', () => {
    const cache = new CodeCache();
    assert.equal(cache.memories.size, 0);
    end(cache, probe, 'plant');
    assert.equal(cache.memories.size, 1, 'the memory came back');
    assert.deepEqual(bytesOf(end(cache, probe, 'peek')), ZEROS);
    assert.equal(cache.memories.size, 1, 'lent and taken back, not a second one');
    end(cache, probe, 'plant_trap');
    assert.equal(cache.memories.size, 1, 'a trapped execution gives its memory back too');
    assert.deepEqual(bytesOf(end(cache, other, 'peek')), ZEROS);
  });

  test('a memory that grew is dropped; a large one is never kept', () => {
    const cache = new CodeCache();
    end(cache, probe, 'plant_grow');
    assert.equal(cache.memories.size, 0, 'a grown memory cannot shrink back: dropped');
    const pool = new MemoryPool();
    const big = pool.take({ min: 32, max: 64 });
    pool.give(big, { min: 32, max: 64 });
    assert.equal(pool.size, 0, '2 MiB: made fresh each time');
    const small = pool.take({ min: 1, max: 64 });
    new Uint8Array(small.buffer).fill(7);
    pool.give(small, { min: 1, max: 64 });
    assert.equal(pool.size, 1);
    const again = pool.take({ min: 1, max: 64 });
    assert.equal(again, small, 'the kept memory is the one lent next');
    assert.ok(new Uint8Array(again.buffer).every((x) => x === 0), 'zero-filled when it came back');
    assert.notEqual(pool.take({ min: 1, max: 64 }), small, 'one memory is lent to one instance at a time');
  });

  test('results, gas, effects and fingerprints are the same with and without recycling', () => {
    const recycled = new CodeCache();
    const fresh = new CodeCache(undefined, new MemoryPool(false));
    const cases: [Uint8Array, string, string][] = [
      [kv, 'set', '{"key":"k","value":"v"}'],
      [kv, 'get', '{"key":"k"}'],
      [kv, 'entries', '{}'],
      [probe, 'plant', ''],
      [probe, 'plant_trap', ''],
      [probe, 'plant_grow', ''],
      [other, 'peek', ''],
      [kv, 'nope', ''],
    ];
    // Twice over: the second round runs on memories the first one gave back.
    for (let round = 0; round < 2; round++) {
      for (const [code, method, input] of cases) {
        const r = end(recycled, code, method, input);
        const f = end(fresh, code, method, input);
        assert.deepEqual(r.result, f.result, `${method}: result`);
        assert.deepEqual(r.effects, f.effects, `${method}: gas and effects`);
      }
    }
    assert.ok(recycled.memories.size > 0);
    assert.equal(fresh.memories.size, 0);
  });
});
