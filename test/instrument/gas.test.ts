import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BR_TABLE_TARGETS_PER_GAS, GAS_COST, GAS_PER_BYTE, GAS_PER_PAGE, GAS_PER_PAGE_AFTER_GROW, GAS_PER_PAGE_AFTER_LARGE_GROW, GAS_PER_TABLE_ELEMENT, LARGE_MEMORY_PAGES } from '../../src/vm/instrument/gas.js';
import { OutOfGas, createMeter, prepareModule } from '../../src/vm/instrument/index.js';
import { OPEN_POLICY, loadContract, wat } from './helpers.js';

type Fn = (...a: number[]) => unknown;

async function metered(text: string, gas: bigint, host: Record<string, unknown> = {}, policy = OPEN_POLICY) {
  const prepared = prepareModule(await wat(text), policy);
  const meter = createMeter(gas, policy);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes), { t: host as WebAssembly.ModuleImports, ...meter.imports });
  return { e: instance.exports, meter };
}

function gasOf(run: () => unknown, meter: { gasUsed(): bigint }): bigint {
  const before = meter.gasUsed();
  run();
  return meter.gasUsed() - before;
}

test('a straight-line function costs the sum of its instructions, charged before it runs', async () => {
  // i32.const, i32.const, i32.mul, i32.const, i32.div_u, drop, memory-free: 1 + 1 + 2 + 1 + 8 + 1
  const src = '(module (func (export "f") (drop (i32.div_u (i32.mul (i32.const 6) (i32.const 7)) (i32.const 2)))))';
  const cost = BigInt(GAS_COST.simple * 4 + GAS_COST.multiply + GAS_COST.divide);
  assert.equal(cost, 14n);
  const { e, meter } = await metered(src, 1000n);
  assert.equal(gasOf(e.f as Fn, meter), cost);
  // Exactly enough gas succeeds; one less stops before the first instruction.
  const exact = await metered(src, cost);
  (exact.e.f as Fn)();
  assert.equal(exact.meter.gasUsed(), cost);
  const short = await metered(src, cost - 1n);
  assert.throws(() => (short.e.f as Fn)(), OutOfGas);
  assert.equal(short.meter.gasUsed(), cost - 1n, 'out of gas uses the whole limit');
});

test('a loop costs the same per iteration, and an infinite one ends exactly at the limit', async () => {
  const { e, meter } = await metered(`(module (func (export "sum") (param $n i32) (result i32) (local $s i32)
    (block $d (loop $l (br_if $d (i32.eqz (local.get $n)))
      (local.set $s (i32.add (local.get $s) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br $l))) (local.get $s))
    (func (export "forever") (loop (br 0))))`, 1n << 40n);
  const g = [1, 2, 3, 50].map((n) => gasOf(() => (e.sum as Fn)(n), meter));
  assert.equal(g[1]! - g[0]!, g[2]! - g[1]!);
  assert.equal(g[3]! - g[0]!, 49n * (g[1]! - g[0]!));
  const f = await metered('(module (func (export "forever") (loop (br 0))))', 123_457n);
  assert.throws(() => (f.e.forever as Fn)(), OutOfGas);
  assert.equal(f.meter.gasUsed(), 123_457n);
});

test('host functions charge the same counter as the instrumented code', async () => {
  const src = `(module (import "t" "h" (func $h))
    (func (export "run") (param $n i32) (loop $l (call $h) (local.tee $n (i32.sub (local.get $n) (i32.const 1))) (br_if $l)))
    (func (export "inner") (param i32) (if (local.get 0) (then (call $h) (call $h)))))`;
  let charge = 0n;
  const holder: { meter?: ReturnType<typeof createMeter> } = {};
  const a = await metered(src, 1n << 40n, { h: () => holder.meter!.charge(charge) });
  holder.meter = a.meter;
  const free = gasOf(() => (a.e.run as Fn)(10), a.meter);
  charge = 1000n;
  const paid = gasOf(() => (a.e.run as Fn)(10), a.meter);
  assert.equal(paid - free, 10_000n);
  // A host charge that does not fit ends the execution with out_of_gas and nothing left.
  const b = await metered(src, 5000n, { h: () => holder.meter!.charge(1000n) });
  holder.meter = b.meter;
  assert.throws(() => (b.e.run as Fn)(10), OutOfGas);
  assert.equal(b.meter.gasUsed(), 5000n);
});

test('memory.grow is charged per requested page and bulk operations per byte', async () => {
  const { e, meter } = await metered(`(module (memory 1 100)
    (func (export "grow") (param i32) (drop (memory.grow (local.get 0))))
    (func (export "fill") (param i32) (memory.fill (i32.const 0) (i32.const 1) (local.get 0)))
    (func (export "copy") (param i32) (memory.copy (i32.const 0) (i32.const 100) (local.get 0))))`, 1n << 40n);
  // Each grow also pays for every page of the memory it leaves (V8 takes a new buffer of the whole memory as
  // fresh external memory), at a higher rate past 64 MiB, where each one sets off a garbage collection.
  const [page, small, large] = [GAS_PER_PAGE, GAS_PER_PAGE_AFTER_GROW, GAS_PER_PAGE_AFTER_LARGE_GROW].map(BigInt) as [bigint, bigint, bigint];
  const base = gasOf(() => (e.grow as Fn)(0), meter) - 1n * small; // one page before and after
  assert.equal(gasOf(() => (e.grow as Fn)(3), meter), base + 3n * page + 4n * small);
  assert.equal(gasOf(() => (e.grow as Fn)(1000), meter), base + 1000n * page + 1004n * small, 'charged even when the grow fails');
  assert.equal(gasOf(() => (e.grow as Fn)(2), meter), base + 2n * page + 6n * small);
  const big = await metered(`(module (memory ${LARGE_MEMORY_PAGES} ${LARGE_MEMORY_PAGES + 10}) (func (export "grow") (param i32) (drop (memory.grow (local.get 0)))))`, 1n << 50n, {}, { ...OPEN_POLICY, maxMemoryPages: LARGE_MEMORY_PAGES + 10 });
  assert.equal(gasOf(() => (big.e.grow as Fn)(0), big.meter), base + BigInt(LARGE_MEMORY_PAGES) * small, 'at 64 MiB: the lower rate');
  assert.equal(gasOf(() => (big.e.grow as Fn)(1), big.meter), base + page + BigInt(LARGE_MEMORY_PAGES + 1) * large);
  assert.equal(gasOf(() => (big.e.grow as Fn)(0), big.meter), base + BigInt(LARGE_MEMORY_PAGES + 1) * large, 'grow(0) past 64 MiB');
  assert.equal(gasOf(() => (big.e.grow as Fn)(0x7fffffff), big.meter), base + 0x7fffffffn * page + BigInt(LARGE_MEMORY_PAGES + 1 + 65536) * large, 'the pages requested count up to 65536');
  const fill0 = gasOf(() => (e.fill as Fn)(0), meter);
  assert.equal(gasOf(() => (e.fill as Fn)(4096), meter) - fill0, 4096n * BigInt(GAS_PER_BYTE));
  const copy0 = gasOf(() => (e.copy as Fn)(0), meter);
  assert.equal(gasOf(() => (e.copy as Fn)(777), meter) - copy0, 777n * BigInt(GAS_PER_BYTE));
});

test('the start function is metered', async () => {
  const prepared = prepareModule(await wat('(module (func $s (loop (br 0))) (start $s))'), OPEN_POLICY);
  const meter = createMeter(50_000n, OPEN_POLICY);
  assert.throws(() => new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes), meter.imports), OutOfGas);
  assert.equal(meter.gasUsed(), 50_000n);
});

test('fib gas grows with the work and repeats exactly', async () => {
  const prepared = prepareModule(loadContract('fib'), OPEN_POLICY);
  const gas = (n: number): bigint => {
    const meter = createMeter(1n << 40n, OPEN_POLICY);
    const e = new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes), { env: { abort: () => {} }, ...meter.imports }).exports;
    (e.fib as Fn)(n);
    return meter.gasUsed();
  };
  const g = [5, 10, 15].map(gas);
  assert.ok(g[0]! < g[1]! && g[1]! < g[2]!);
  assert.equal(gas(15), g[2]);
});

test('meter limits', () => {
  assert.throws(() => createMeter(-1n, OPEN_POLICY), RangeError);
  assert.throws(() => createMeter(1n << 63n, OPEN_POLICY), RangeError);
  const m = createMeter(10n, OPEN_POLICY);
  m.charge(4n);
  assert.equal(m.gasUsed(), 4n);
  assert.throws(() => m.charge(7n), OutOfGas);
  assert.equal(m.gasUsed(), 10n);
  assert.ok(Error.stackTraceLimit >= OPEN_POLICY.maxStackHeight / 8, 'stack traces can hold every wasm frame');
});

test('docs/determinism.md shows the cost table the code charges', async () => {
  const { readFileSync } = await import('node:fs');
  const { ROOT } = await import('./helpers.js');
  const doc = readFileSync(`${ROOT}docs/determinism.md`, 'utf8');
  for (const [cls, cost] of Object.entries(GAS_COST)) {
    assert.match(doc, new RegExp(`^\\| ${cls} \\| ${cost} \\|`, 'm'), `${cls} costs ${cost}`);
  }
  assert.match(doc, new RegExp(`\\*\\*${GAS_PER_PAGE} per requested page\\*\\*`));
  assert.match(doc, new RegExp(`\\*\\*${GAS_PER_BYTE} per byte\\*\\*`));
  assert.match(doc, new RegExp(`\\*\\*${GAS_PER_TABLE_ELEMENT} per element\\*\\*`));
  assert.match(doc, new RegExp(`\\*\\*1 per ${BR_TABLE_TARGETS_PER_GAS} targets\\*\\*`));
});
