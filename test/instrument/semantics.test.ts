import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createMeter, prepareModule } from '../../src/vm/instrument/index.js';
import { KITCHEN_CALLS, KITCHEN_IMPORTS, KITCHEN_SINK } from './fixtures.js';
import { OPEN_POLICY, loadContract, wat } from './helpers.js';

type Fn = (...a: number[]) => number | bigint;
const ABORT = { env: { abort: (): never => { throw new Error('abort'); } } };

function both(bytes: Uint8Array, imports: WebAssembly.Imports): { plain: WebAssembly.Exports; metered: WebAssembly.Exports } {
  const prepared = prepareModule(bytes, OPEN_POLICY);
  assert.equal(WebAssembly.validate(prepared.bytes), true, 'instrumented module validates');
  const meter = createMeter(1n << 50n, OPEN_POLICY);
  return {
    plain: new WebAssembly.Instance(new WebAssembly.Module(bytes), imports).exports,
    metered: new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes), { ...imports, ...meter.imports }).exports,
  };
}

const memHash = (e: WebAssembly.Exports): string =>
  createHash('sha256').update(new Uint8Array((e.memory as WebAssembly.Memory).buffer)).digest('hex');

test('fib computes the same numbers instrumented', () => {
  const { plain, metered } = both(loadContract('fib'), ABORT);
  for (let n = 0; n <= 22; n++) assert.equal((metered.fib as Fn)(n), (plain.fib as Fn)(n), `fib(${n})`);
  assert.equal((metered.fib as Fn)(20), 6765);
});

test('sha256 matches node:crypto, instrumented and not', () => {
  const { plain, metered } = both(loadContract('sha256'), ABORT);
  for (const e of [plain, metered]) {
    const input = new Uint8Array((e.memory as WebAssembly.Memory).buffer, Number((e.inputPtr as Fn)()), 4096);
    for (const len of [0, 1, 55, 56, 63, 64, 65, 119, 1000, 4096]) {
      for (let i = 0; i < len; i++) input[i] = (i * 7 + len) & 0xff;
      (e.sha256 as Fn)(len);
      const out = Buffer.from(new Uint8Array((e.memory as WebAssembly.Memory).buffer, Number((e.outputPtr as Fn)()), 32));
      assert.equal(out.toString('hex'), createHash('sha256').update(input.subarray(0, len)).digest('hex'), `len ${len}`);
    }
  }
  assert.equal((metered.sha256Loop as Fn)(300, 5), (plain.sha256Loop as Fn)(300, 5));
});

test('memcpy loops and memory.copy give the same memory', () => {
  const { plain, metered } = both(loadContract('memcpy'), ABORT);
  for (const e of [plain, metered]) (e.fill as Fn)(20000, 99);
  assert.equal((metered.copyLoop as Fn)(20000, 3), (plain.copyLoop as Fn)(20000, 3));
  assert.equal((metered.bulkCopy as Fn)(20000, 3), (plain.bulkCopy as Fn)(20000, 3));
  assert.equal(memHash(metered), memHash(plain));
});

test('kitchen sink: loops, br_table, multi-value, bulk memory, tables, start, floats behave the same', async () => {
  const bytes = await wat(KITCHEN_SINK);
  const { plain, metered } = both(bytes, KITCHEN_IMPORTS);
  assert.equal((metered.started as WebAssembly.Global).value, 42, 'start function ran');
  const call = (e: WebAssembly.Exports, name: string, args: number[]): unknown => {
    try {
      return (e[name] as Fn)(...args);
    } catch (err) {
      return `trap: ${(err as Error).message}`;
    }
  };
  for (const [name, args] of KITCHEN_CALLS) {
    assert.equal(call(metered, name, args), call(plain, name, args), `${name}(${args.join(', ')})`);
  }
  // The second bulk call uses a dropped segment: both trap the same way.
  assert.equal(call(metered, 'bulk', [1]), 'trap: memory access out of bounds');
  assert.equal(memHash(metered), memHash(plain));
});

test('the memory maximum is clamped to the policy, and a module without one gets it', async () => {
  const policy = { ...OPEN_POLICY, maxMemoryPages: 3 };
  for (const decl of ['(memory (export "memory") 1)', '(memory (export "memory") 1 100)']) {
    const bytes = await wat(`(module ${decl} (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`);
    const meter = createMeter(1n << 40n, policy);
    const e = new WebAssembly.Instance(new WebAssembly.Module(prepareModule(bytes, policy).bytes), meter.imports).exports;
    assert.equal((e.grow as Fn)(3), -1, `${decl}: growing past 3 pages fails`);
    assert.equal((e.grow as Fn)(2), 1);
    assert.equal((e.memory as WebAssembly.Memory).buffer.byteLength, 3 * 65536);
  }
  const small = await wat('(module (memory 2 2) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))');
  const e = new WebAssembly.Instance(new WebAssembly.Module(prepareModule(small, policy).bytes), createMeter(1n << 40n, policy).imports).exports;
  assert.equal((e.grow as Fn)(1), -1, 'a smaller declared maximum is kept');
});

test('floats: reject policy refuses float instructions, canonicalize keeps ordinary results', async () => {
  const bytes = await wat('(module (func (export "f") (param f32) (result f32) (f32.add (local.get 0) (f32.const 1.5))))');
  assert.throws(() => prepareModule(bytes, { ...OPEN_POLICY, floats: 'reject' }),
    { message: 'module rejected: float_instruction (function 0, offset 0x22)' });
  const { plain, metered } = both(bytes, {});
  for (const x of [0, -0, 1e30, Infinity, -Infinity, 3.25]) assert.equal((metered.f as Fn)(x), (plain.f as Fn)(x));
  assert.ok(Number.isNaN((metered.f as Fn)(NaN)));
});
