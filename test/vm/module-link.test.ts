/**
 * ModuleLink: a module's import functions are built once and serve whichever execution is running. These
 * check that they serve exactly that one: nested runs (a sub-instance inside a parent's host call) see their
 * own execution and the parent sees its own again afterwards, including when the nested run throws, and an
 * import called outside any run fails instead of serving some other execution.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseMessage } from '../../src/protocol/message.js';
import { Execution } from '../../src/vm/execution.js';
import { ModuleLink } from '../../src/vm/imports/index.js';
import { createMeter } from '../../src/vm/instrument/index.js';
import { policyFor } from '../../src/vm/policy.js';
import { id32, message } from '../helpers.js';

const msg = parseMessage(message({ codeHash: id32('code'), method: 'run' }));
const fresh = (): { ex: Execution; meter: ReturnType<typeof createMeter> } => {
  const meter = createMeter(1_000_000n, policyFor(msg));
  return { ex: new Execution(msg, { readMany: () => [] }, meter), meter };
};
const wanted: WebAssembly.ModuleImportDescriptor[] = [{ module: 'env', name: 'register_len', kind: 'function' }];
const registerLen = (imports: WebAssembly.Imports): ((id: bigint) => bigint) =>
  (imports.env as Record<string, (id: bigint) => bigint>).register_len!;

describe('ModuleLink (import functions shared by the instances of one module)', () => {
  test('nested runs serve their own execution, the outer one again after the inner returns or throws', () => {
    const link = new ModuleLink(wanted);
    const outer = fresh();
    const inner = fresh();
    outer.ex.registers.set(1n, new Uint8Array(3));
    inner.ex.registers.set(1n, new Uint8Array(7));
    link.run(outer.ex, outer.meter, (imports) => {
      const len = registerLen(imports);
      assert.equal(len(1n), 3n);
      link.run(inner.ex, inner.meter, () => assert.equal(len(1n), 7n));
      assert.equal(len(1n), 3n);
      assert.throws(() => link.run(inner.ex, inner.meter, () => {
        throw new Error('trap in the sub-instance');
      }), /trap in the sub-instance/);
      assert.equal(len(1n), 3n);
    });
  });

  test('every run gets its own meter: gas global and out_of_gas act on that run only', () => {
    const link = new ModuleLink(wanted);
    const a = fresh();
    const b = fresh();
    link.run(a.ex, a.meter, (imports) => {
      const hostlink = imports.hostlink as Record<string, unknown>;
      assert.equal(hostlink.gas, a.meter.gas);
      assert.throws(() => (hostlink.out_of_gas as () => void)(), { name: 'OutOfGas' });
    });
    assert.equal(a.meter.gasUsed(), 1_000_000n);
    assert.equal(b.meter.gasUsed(), 0n);
  });

  test('an import called outside any run throws instead of serving a stale execution', () => {
    const link = new ModuleLink(wanted);
    const a = fresh();
    let kept: ((id: bigint) => bigint) | undefined;
    link.run(a.ex, a.meter, (imports) => {
      kept = registerLen(imports);
    });
    assert.throws(() => kept!(1n), /outside its execution/);
  });
});
