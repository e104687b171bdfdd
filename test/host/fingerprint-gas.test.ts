/**
 * A failed call's fingerprint hashes its guest memory (src/vm/fingerprint.ts): that work is charged per byte
 * (fingerprint in protocol/gas-costs.json). A panic after growing memory to 64 MiB took the VM 50-60 ms for
 * 8 million gas, against 6-8 ms for the same growth and a normal return. Through real VM processes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Host } from '../../src/host/host.js';
import { FINGERPRINT_GAS } from '../../src/vm/host-functions.generated.js';
import { id32 } from '../helpers.js';
import { openHost, type TestHost } from '../node/helpers.js';
import { call, Probe } from '../node/probe.js';

const PAGE = 65536;
const GROWN = 16;

describe('a fingerprint pays for the memory it hashes', () => {
  let t: TestHost;
  let host: Host;
  let code: Uint8Array;
  before(async () => {
    const p = new Probe(1024);
    const n = p.out(8);
    const nDesc = p.desc(n.at, 8);
    // Grows memory by the input's u64 pages, then panics or returns.
    const grow = `(call $input (i64.const 1)) (drop (call $read_register (i64.const 1) (i64.const ${nDesc}))) (drop (memory.grow (i32.wrap_i64 (i64.load (i32.const ${n.at})))))`;
    const location = p.out(24);
    const message = p.buf('m');
    p.method('grow_panic', `${grow} ${call('panic_utf8', message, location.at)}`);
    p.method('grow_return', `${grow} (call $ret_i64 (i64.const 0))`);
    t = await openHost();
    host = t.host;
    code = await host.deploy(await p.build());
  });
  after(() => t.close());

  const gas = async (method: string, pages: number): Promise<bigint> => {
    const input = Buffer.alloc(8);
    input.writeBigUInt64LE(BigInt(pages));
    const o = await host.call({ codeHash: code, method, contextId: id32('fingerprint-gas'), input: Uint8Array.from(input) });
    assert.equal(o.result.code, method === 'grow_panic' ? 'user_error' : 'return', JSON.stringify(o.result));
    return o.gasUsed;
  };

  test('a panic with more memory costs its hashing, exactly; a return with the same memory does not', async () => {
    const panicMore = (await gas('grow_panic', GROWN)) - (await gas('grow_panic', 0));
    const returnMore = (await gas('grow_return', GROWN)) - (await gas('grow_return', 0));
    assert.equal(panicMore - returnMore, BigInt(GROWN * PAGE) * BigInt(FINGERPRINT_GAS.perByte));
  });
});
