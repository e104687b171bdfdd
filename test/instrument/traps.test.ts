import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { captureFingerprint, originalFunctionIndex } from '../../src/vm/fingerprint.js';
import { ModuleRejected, OutOfGas, StackOverflow, createMeter, prepareModule } from '../../src/vm/instrument/index.js';
import { checkMethodExport, classifyTrap } from '../../src/vm/traps.js';
import { OPEN_POLICY, wat } from './helpers.js';

const TRAPS = `
(module
  (type $t (func (result i32)))
  (type $u (func (param i32) (result i32)))
  (import "t" "noop" (func $noop))
  (memory (export "memory") 1)
  (table 2 funcref)
  (elem (i32.const 0) $one)
  (data $d "abc")
  (func $one (result i32) (i32.const 1))
  (func (export "unreachable") (unreachable))
  (func (export "oob") (drop (i32.load (i32.const 65535))))
  (func (export "oob_store") (i64.store (i32.const 65532) (i64.const -1)))
  (func (export "div0") (drop (i32.div_s (i32.const 1) (i32.const 0))))
  (func (export "rem0") (drop (i64.rem_u (i64.const 1) (i64.const 0))))
  (func (export "overflow") (drop (i32.div_s (i32.const 0x80000000) (i32.const -1))))
  (func (export "conversion") (drop (i32.trunc_f64_u (f64.const -1))))
  (func (export "null_entry") (drop (call_indirect (type $t) (i32.const 1))))
  (func (export "signature") (drop (call_indirect (type $u) (i32.const 0) (i32.const 0))))
  (func (export "table_oob") (drop (call_indirect (type $t) (i32.const 9))))
  (func (export "memory_init") (memory.init $d (i32.const 0) (i32.const 0) (i32.const 9)))
  (func (export "fill_oob") (memory.fill (i32.const 65000) (i32.const 0) (i32.const 1000)))
)`;

const EXPECTED: Record<string, string> = {
  unreachable: 'wasm_trap unreachable',
  oob: 'wasm_trap memory_out_of_bounds',
  oob_store: 'wasm_trap memory_out_of_bounds',
  div0: 'wasm_trap integer_divide_by_zero',
  rem0: 'wasm_trap integer_divide_by_zero',
  overflow: 'wasm_trap integer_overflow',
  conversion: 'wasm_trap invalid_conversion_to_integer',
  null_entry: 'wasm_trap indirect_call_type_mismatch',
  signature: 'wasm_trap indirect_call_type_mismatch',
  table_oob: 'wasm_trap table_out_of_bounds',
  memory_init: 'wasm_trap memory_out_of_bounds',
  fill_oob: 'wasm_trap memory_out_of_bounds',
};

test('each WebAssembly trap of an instrumented module maps to its documented message', async () => {
  const prepared = prepareModule(await wat(TRAPS), OPEN_POLICY);
  for (const [name, message] of Object.entries(EXPECTED)) {
    const meter = createMeter(1n << 40n, OPEN_POLICY);
    const e = new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes), { t: { noop: () => {} }, ...meter.imports }).exports;
    let caught: unknown;
    try {
      (e[name] as () => void)();
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof WebAssembly.RuntimeError, name);
    assert.deepEqual(classifyTrap(caught), { code: 'vm_error', message }, name);
    assert.equal(meter.gasUsed(caught), 1n << 40n, `${name}: a trap uses the whole limit`);
  }
  // A trapping store writes nothing (the memory hash of the fingerprint relies on it).
  const meter = createMeter(1n << 40n, OPEN_POLICY);
  const e = new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes), { t: { noop: () => {} }, ...meter.imports }).exports;
  assert.throws(() => (e.oob_store as () => void)());
  assert.ok(new Uint8Array((e.memory as WebAssembly.Memory).buffer).every((b) => b === 0));
});

test('instantiation-time traps, our own errors and everything else', async () => {
  const seg = prepareModule(await wat('(module (memory 1) (data (i32.const 65534) "abc"))'), OPEN_POLICY);
  const meter = createMeter(1000n, OPEN_POLICY);
  assert.throws(() => new WebAssembly.Instance(new WebAssembly.Module(seg.bytes), meter.imports), (err) => {
    assert.deepEqual(classifyTrap(err), { code: 'vm_error', message: 'wasm_trap data_segment_out_of_bounds' });
    return true;
  });
  const elem = prepareModule(await wat('(module (table 1 funcref) (func $f) (elem (i32.const 1) $f))'), OPEN_POLICY);
  assert.throws(() => new WebAssembly.Instance(new WebAssembly.Module(elem.bytes), meter.imports), (err) => {
    assert.deepEqual(classifyTrap(err), { code: 'vm_error', message: 'wasm_trap table_out_of_bounds' });
    return true;
  });
  assert.deepEqual(classifyTrap(new OutOfGas()), { code: 'vm_error', message: 'out_of_gas' });
  assert.deepEqual(classifyTrap(new StackOverflow()), { code: 'vm_error', message: 'stack_overflow' });
  assert.deepEqual(classifyTrap(new ModuleRejected('feature_simd', '0xfd', 3, 0x40)),
    { code: 'vm_error', message: 'module rejected: feature_simd: 0xfd (function 3, offset 0x40)' });
  assert.equal(classifyTrap(new RangeError('Maximum call stack size exceeded')), undefined);
  assert.equal(classifyTrap(new WebAssembly.RuntimeError('some future trap')), undefined);
  assert.equal(classifyTrap(new Error('host bug')), undefined);
  assert.equal(classifyTrap('a string'), undefined);
});

test('method exports: missing, not a function, wrong signature', async () => {
  const p = prepareModule(await wat(`(module (memory (export "memory") 1) (global (export "g") i32 (i32.const 1))
    (func (export "ok")) (func (export "takes") (param i32)))`), OPEN_POLICY);
  assert.equal(checkMethodExport(p, 'ok'), undefined);
  // Only exports of type () -> () are listed: not the memory, the global or `takes`.
  assert.deepEqual(checkMethodExport(p, 'nope'), { code: 'vm_error', message: 'method_not_found nope (methods: ok)' });
  const none = prepareModule(await wat(`(module (func (export "__collect")) (func (export "f") (param i32)))`), OPEN_POLICY);
  assert.deepEqual(checkMethodExport(none, 'x'), { code: 'vm_error', message: 'method_not_found x (the contract exports no methods)' });
  const many = prepareModule(await wat(`(module ${Array.from({ length: 25 }, (_, i) => `(func (export "m${i}"))`).join(' ')})`), OPEN_POLICY);
  assert.match((checkMethodExport(many, 'x') as { message: string }).message, /^method_not_found x \(methods: m0, m1, .*, m19, … \(25 in all\)\)$/);
  assert.deepEqual(checkMethodExport(p, 'g'), { code: 'vm_error', message: 'method_not_function g' });
  assert.deepEqual(checkMethodExport(p, 'memory'), { code: 'vm_error', message: 'method_not_function memory' });
  assert.deepEqual(checkMethodExport(p, 'takes'), { code: 'vm_error', message: 'method_not_function takes' });
});

const CHAIN = `
(module
  (type $v (func))
  (import "t" "a" (func $ha))
  (import "t" "b" (func $hb))
  (memory (export "memory") 1)
  (table 1 funcref)
  (elem (i32.const 0) $inner)
  (func $inner (i32.store (i32.const 8) (i32.const 0xabcd)) (drop (i32.div_u (i32.const 1) (i32.const 0))))
  (func $middle (call_indirect (type $v) (i32.const 0)))
  (func $outer (call $middle))
  (func (export "run") (i32.store (i32.const 0) (i32.const 7)) (call $outer))
  (func $spin (loop (br 0)))
  (func (export "spin") (call $spin))
)`;

test('fingerprint: original function indices innermost first, memory hashes', async () => {
  const prepared = prepareModule(await wat(CHAIN), OPEN_POLICY);
  // Two imports: $inner is function 2, $middle 3, $outer 4, run 5, $spin 6, spin 7.
  assert.equal(prepared.importedFunctionCount, 2);
  assert.equal(prepared.functionCount, 8);
  assert.equal(originalFunctionIndex(2 + prepared.addedImports, prepared), 2);
  assert.equal(originalFunctionIndex(2, prepared), undefined, 'an added import');
  assert.equal(originalFunctionIndex(8 + prepared.addedImports, prepared), undefined, 'a helper');
  const imports = { t: { a: () => {}, b: () => {} } };
  for (const [method, frames, message] of [['run', [2, 3, 4, 5], 'wasm_trap integer_divide_by_zero'], ['spin', [6, 7], 'out_of_gas']] as const) {
    const meter = createMeter(10_000n, OPEN_POLICY);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes), { ...imports, ...meter.imports });
    const memory = inst.exports.memory as WebAssembly.Memory;
    let caught: unknown;
    try {
      (inst.exports[method] as () => void)();
    } catch (err) {
      caught = err;
    }
    assert.equal(classifyTrap(caught)?.message, message);
    const fp = captureFingerprint(caught, [memory], prepared);
    assert.deepEqual(fp.frames, frames, method);
    assert.deepEqual(Buffer.from(fp.memoryHashes[0]!).toString('hex'),
      createHash('sha256').update(new Uint8Array(memory.buffer)).digest('hex'));
  }
  assert.deepEqual(captureFingerprint(new Error('no wasm here'), [], prepared), { frames: [], memoryHashes: [] });
});
