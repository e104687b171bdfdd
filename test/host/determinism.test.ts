/**
 * Determinism across V8 tiers, through real VM processes: the same executions run by VMs started with only the
 * baseline compiler (Liftoff), only the optimising compiler (TurboFan), and V8's defaults, must give
 * byte-identical result encodings (fingerprints included), gas used, storage deltas and logs. So must VMs that
 * check wasm memory bounds with V8's trap handler (guard regions) instead of the VMs' inline checks.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Host, type Outcome } from '../../src/host/host.js';
import { HOSTLINK_BIN, VM_NODE_FLAGS } from '../../src/host/supervisor.js';
import { contract, id32, ROOT, tempDir, utf8 } from '../helpers.js';
import { wat } from '../instrument/helpers.js';

const TIERS: Record<string, readonly string[]> = {
  liftoff: [...VM_NODE_FLAGS, '--liftoff', '--no-wasm-tier-up'],
  turbofan: [...VM_NODE_FLAGS, '--no-liftoff'],
  'trap-handler': VM_NODE_FLAGS.filter((f) => f !== '--disable-wasm-trap-handler'),
  default: VM_NODE_FLAGS,
};

interface Step {
  code: 'kv-store' | 'misbehave' | 'nan-bits';
  method: string;
  input?: string;
  gasLimit?: bigint;
}

const STEPS: Step[] = [
  { code: 'kv-store', method: 'set', input: '{"key":"a","value":"1"}' },
  { code: 'kv-store', method: 'set', input: '{"key":"b","value":"2"}' },
  { code: 'kv-store', method: 'entries', input: '{}' },
  { code: 'kv-store', method: 'get_unchecked', input: '{"key":"zz"}' },
  { code: 'misbehave', method: 'trap' },
  { code: 'misbehave', method: 'oob' },
  { code: 'misbehave', method: 'panic_msg' },
  { code: 'misbehave', method: 'recurse', input: '{"depth":100000000}' },
  { code: 'misbehave', method: 'loop_forever', gasLimit: 3_000_000n },
  { code: 'misbehave', method: 'log_flood' },
  { code: 'nan-bits', method: 'run' },
];

async function runAll(tier: string): Promise<Outcome[]> {
  const dir = tempDir();
  const host = await Host.open({ dataDir: dir.path, poolSize: 1, vmCommand: [process.execPath, ...TIERS[tier]!, HOSTLINK_BIN, 'vm'] });
  try {
    const codes = {
      'kv-store': await host.deploy(contract('kv-store')),
      misbehave: await host.deploy(contract('misbehave')),
      'nan-bits': await host.deploy(await wat(readFileSync(join(ROOT, 'test/hostile/nan-bits.wat'), 'utf8')), { check: false }),
    };
    const out: Outcome[] = [];
    for (const s of STEPS) {
      out.push(await host.call({ codeHash: codes[s.code], method: s.method, input: utf8(s.input ?? ''), contextId: id32('tiers'), ...(s.gasLimit ? { gasLimit: s.gasLimit } : {}) }));
    }
    return out;
  } finally {
    await host.close();
    dir.remove();
  }
}

describe('determinism across V8 tiers (separate VM processes)', () => {
  test('liftoff-only, turbofan-only, trap-handler and default VMs agree byte for byte', async () => {
    const results: Record<string, Outcome[]> = {};
    for (const tier of Object.keys(TIERS)) results[tier] = await runAll(tier);
    const base = results.default!;
    // The steps cover every ending: returns, panics, traps with fingerprints, gas and stack limits.
    const codes = base.map((o) => o.result.code === 'return' ? 'return' : `${o.result.code}:${o.result.message.split(' ')[0]}`);
    assert.deepEqual(codes, ['return', 'return', 'return', 'user_error:Panic:', 'vm_error:wasm_trap', 'vm_error:wasm_trap', 'user_error:Panic:', 'vm_error:stack_overflow', 'vm_error:out_of_gas', 'vm_error:LogsOverflow', 'return']);
    assert.ok(base.some((o) => o.result.code !== 'return' && o.result.fingerprint instanceof Map), 'some results carry fingerprints');
    assert.notDeepEqual(TIERS['trap-handler'], TIERS.default, 'VMs check bounds inline by default');
    for (const tier of ['liftoff', 'turbofan', 'trap-handler']) {
      STEPS.forEach((s, i) => {
        const a = base[i]!;
        const b = results[tier]![i]!;
        const what = `${tier} vs default, step ${i} (${s.code}.${s.method})`;
        assert.deepEqual(Buffer.from(b.resultBytes), Buffer.from(a.resultBytes), `${what}: result bytes`);
        assert.equal(b.gasUsed, a.gasUsed, `${what}: gas used`);
        assert.deepEqual(b.writes, a.writes, `${what}: writes`);
        assert.deepEqual(b.logs, a.logs, `${what}: logs`);
        assert.deepEqual(b.stateRoot, a.stateRoot, `${what}: state root`);
      });
    }
  });
});
