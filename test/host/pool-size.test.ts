/**
 * The pool starts exactly its size: the first call used to find the pool's VMs still launching, count no
 * workers, and start one more (a pool of one ran two processes for one call).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { contract, id32, utf8 } from '../helpers.js';

for (const poolSize of [1, 2]) {
  test(`a pool of ${poolSize} launches ${poolSize} VM process(es), however many calls it serves`, async () => {
    const host = await Host.open({ poolSize });
    try {
      const codeHash = await host.deploy(contract('kv-store'));
      const calls = Array.from({ length: 3 }, (_, i) => host.call({ codeHash, method: 'set', input: utf8(`{"key":"k${i}","value":"v"}`), contextId: id32(`pool-${i}`) }));
      for (const o of await Promise.all(calls)) assert.equal(o.result.code, 'return');
      assert.equal(host.poolStats?.launched, poolSize);
    } finally {
      await host.close();
    }
  });
}
