/**
 * In-process execution shares the session and result rules of VMs over sockets: the hello versions come from
 * the protocol constants, and a result and effects that do not fit one frame are result_too_large whichever
 * way the execution ran (the host's consume_result applies the rule, not only the VM process).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { runInProcess } from '../../src/host/in-process.js';
import { MAX_FRAME_BYTES } from '../../src/protocol/generated.js';
import { MAX_EXECUTION_MEMORY_LIMIT } from '../../src/protocol/limits.generated.js';
import { id32, MemoryBackend, message } from '../helpers.js';
import { Probe } from '../node/probe.js';

const BIG = MAX_FRAME_BYTES + 1024 * 1024; // one MiB over the frame limit
// The probe's memory must hold the value: raise the page and execution-memory limits for this call only.
const HUGE_GAS = 10n ** 12n;
const limits = { maxMemoryPages: Math.ceil((BIG + 128 * 1024) / 65536) + 16, maxExecutionMemory: MAX_EXECUTION_MEMORY_LIMIT };

describe('in-process execution: the same result rules as a VM process', () => {
  let probe: Uint8Array;
  before(async () => {
    probe = await new Probe(BIG + 64 * 1024)
      .method('huge', `(call $ret_mem (i64.const 1024) (i64.const ${BIG}))`)
      .build();
  });

  test('a result over the frame limit is result_too_large in process, as from a VM process', async () => {
    const backend = new MemoryBackend();
    const codeHash = backend.deploy(probe);
    // Gas for handing a value over the frame limit to the host (handed_to_host per byte), so the size rule decides.
    const end = runInProcess(backend, message({ codeHash, method: 'huge', limits, gasLimit: HUGE_GAS }));
    assert.equal(end.kind, 'result');
    const inProcess = end as Extract<typeof end, { kind: 'result' }>;
    assert.equal(inProcess.result.code, 'vm_error', 'the oversized value is not handed over');
    assert.match((inProcess.result as { message: string }).message, /^result_too_large the result and effects take \d+ bytes, over the 67108864-byte frame limit$/);
    assert.ok(inProcess.effects.gasUsed > 0n, 'the gas used is kept');

    const host = await Host.open({ poolSize: 1, limits });
    try {
      const hash = await host.deploy(probe);
      const o = await host.call({ codeHash: hash, method: 'huge', contextId: id32('test-context'), limits, gasLimit: HUGE_GAS });
      assert.deepEqual(o.result, inProcess.result, 'a VM process reports the same result');
    } finally {
      await host.close();
    }
  });
});
