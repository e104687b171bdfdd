/**
 * The VM's code cache is bounded (max_code_cache_bytes): a pooled VM that runs many distinct large modules drops
 * the ones used longest ago instead of holding every one compiled for its whole life. Through a real VM process:
 * a cache miss is a get_code request in the call's trace.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CallFinished } from '../../src/host/events.js';
import { MAX_CODE_CACHE_BYTES } from '../../src/protocol/bounds.generated.js';
import { prepareModule } from '../../src/vm/instrument/index.js';
import { policyFor } from '../../src/vm/policy.js';
import { buildMessage, parseMessage } from '../../src/protocol/message.js';
import { sqrtChains } from '../host/big-modules.js';
import { id32 } from '../helpers.js';
import { openHost } from '../node/helpers.js';

test('a pooled VM keeps at most max_code_cache_bytes of compiled modules, dropping the least recently used', async () => {
  // Modules of ~9 MB (2 MB of float code, the rest a custom section, so that the code's 18x growth is within
  // max_instrumented_growth) that instrument to ~36 MB each: enough of them to pass the bound.
  const module = (tag: number): Uint8Array => sqrtChains(5, 400_000, tag, 7_000_000);
  const policy = policyFor(parseMessage(buildMessage({ codeHash: new Uint8Array(32), method: 'run', input: new Uint8Array(0), contextId: new Uint8Array(32) })));
  const each = prepareModule(module(0), policy).bytes.length;
  const count = Math.floor(MAX_CODE_CACHE_BYTES / each) + 2;
  const t = await openHost({ poolSize: 1, deadlineMs: 120_000 });
  try {
    const fetched: number[] = [];
    t.host.events.on('call.finished', (e: CallFinished) => fetched.push(e.hostCalls['get_code']?.count ?? 0));
    const codes: Uint8Array[] = [];
    for (let i = 0; i < count; i++) codes.push(await t.host.deploy(module(i)));
    const run = async (code: Uint8Array): Promise<number> => {
      const o = await t.host.call({ codeHash: code, method: 'run', contextId: id32('code-cache') });
      assert.equal(o.result.code, 'return', JSON.stringify(o.result));
      return fetched.at(-1)!;
    };
    for (const code of codes) assert.equal(await run(code), 1, 'first call: compiled');
    // The newest modules are still compiled; the oldest was dropped and is compiled again.
    assert.equal(await run(codes.at(-1)!), 0);
    assert.equal(await run(codes.at(-2)!), 0);
    assert.equal(await run(codes[0]!), 1);
  } finally {
    await t.close();
  }
});
