import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModuleRejected, prepareModule, type ModulePolicy } from '../../src/vm/instrument/index.js';
import { emptyModule } from '../../src/vm/instrument/module.js';
import { writeModule } from '../../src/vm/instrument/writer.js';
import { OPEN_POLICY, TEST_POLICY, wat } from './helpers.js';

function rejects(bytes: Uint8Array, message: string, policy: ModulePolicy = OPEN_POLICY): void {
  assert.throws(() => prepareModule(bytes, policy), (e: unknown) => {
    assert.ok(e instanceof ModuleRejected, String(e));
    assert.equal(e.message, message);
    return true;
  });
}

/** A module from raw section bytes: [id, ...content]. */
function raw(...sections: number[][]): Uint8Array {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const [id, ...content] of sections) out.push(id!, content.length, ...content);
  return Uint8Array.from(out);
}

test('limits: size, functions, locals, parameters', async () => {
  const three = await wat('(module (func) (func) (func (local i32 i32)))');
  rejects(three, `module rejected: module_too_large: ${three.length} bytes, limit 10`, { ...OPEN_POLICY, maxModuleBytes: 10 });
  rejects(three, 'module rejected: too_many_functions: 3 functions, limit 2', { ...OPEN_POLICY, maxFunctions: 2 });
  // With an import in front, the second defined function is function 2; the offset is where its code starts.
  const locals = await wat('(module (import "env" "x" (func)) (func) (func (param i32) (local i64 i64 i64)))');
  // The offset is where the function's instructions start (here its final `end`, the module's last byte).
  rejects(locals, `module rejected: too_many_locals: 4 locals, limit 3 (function 2, offset 0x${(locals.length - 1).toString(16)})`,
    { ...OPEN_POLICY, maxLocalsPerFunction: 3 });
  const params = await wat(`(module (func (param${' i32'.repeat(999)})))`);
  rejects(params, 'module rejected: too_many_params: type 0 has 999 parameters and 0 results, limit 998 and 999');
});

test('features outside the whitelist name the feature, function and offset', async () => {
  const cases: [string, string][] = [
    ['(module (func (param v128)))', 'module rejected: feature_simd: v128 (offset 0xd)'],
    ['(module (memory 1) (func (drop (i32.atomic.load (i32.const 0)))))', 'module rejected: feature_threads: 0xfe (function 0, offset 0x1e)'],
    ['(module (func (try (do) (catch_all))))', 'module rejected: feature_exceptions: 0x6 (function 0, offset 0x17)'],
    ['(module (type $v (func)) (table 1 funcref) (func (return_call_indirect (type $v) (i32.const 0))))', 'module rejected: feature_tail_call: 0x13 (function 0, offset 0x1f)'],
    ['(module (func (drop (ref.null extern))))', 'module rejected: feature_reference_types: 0xd0 (function 0, offset 0x17)'],
    ['(module (table 1 externref))', 'module rejected: feature_reference_types: externref table (offset 0xb)'],
    ['(module (table 1 funcref) (table 1 funcref))', 'module rejected: feature_reference_types: more than one table (offset 0xe)'],
    ['(module (table 1 funcref) (func (drop (table.size 0))))', 'module rejected: feature_reference_types: 0xfc 16 (function 0, offset 0x1d)'],
    ['(module (func (result i32) (select (result i32) (i32.const 1) (i32.const 2) (i32.const 0))))', 'module rejected: feature_reference_types: 0x1c (function 0, offset 0x1e)'],
  ];
  for (const [text, message] of cases) rejects(await wat(text), message);
  rejects(raw([5, 0x01, 0x04, 0x01]), 'module rejected: feature_memory64 (offset 0xb)');
  rejects(raw([1, 0x01, 0x5f, 0x00]), 'module rejected: feature_gc: type form (offset 0xb)');
  const two = emptyModule();
  two.memories.push({ min: 1, max: undefined }, { min: 1, max: undefined });
  rejects(writeModule(two), 'module rejected: feature_multi_memory (offset 0xd)');
});

test('imports: only catalogue functions; no memories, tables or globals; the instrumentation module is reserved', async () => {
  rejects(await wat('(module (import "env" "t" (table 1 funcref)))'), 'module rejected: import_table: env.t (offset 0xb)', TEST_POLICY);
  rejects(await wat('(module (import "env" "g" (global i32)))'), 'module rejected: import_global: env.g (offset 0xb)', TEST_POLICY);
  rejects(await wat('(module (import "env" "panic" (func (param i64))) (import "other" "f" (func)))'),
    'module rejected: import_not_allowed: other.f: unknown import module (offset 0x21)', TEST_POLICY);
  rejects(await wat('(module (import "hostlink" "gas" (func)))'),
    'module rejected: import_not_allowed: hostlink.gas: reserved module (offset 0x11)', OPEN_POLICY);
  // The catalogue's own functions pass.
  prepareModule(await wat('(module (import "env" "panic" (func (param i64))) (import "env" "storage_read" (func (param i64 i64) (result i32))))'), TEST_POLICY);
});

test('invalid modules are refused as such, not instrumented into something valid', async () => {
  rejects(await wat('(module (func (drop (i32.add (i64.const 1) (i32.const 1)))))'),
    'module rejected: invalid_module: rejected by the WebAssembly validator');
  // Indices that would land on the instrumentation's own globals, locals and functions.
  rejects(await wat('(module (global (mut i32) (i32.const 0)) (func (global.set 1 (i32.const 0))))'),
    'module rejected: invalid_module: global 1 does not exist (function 0, offset 0x21)');
  rejects(await wat('(module (func (param i32) (local.set 1 (i32.const 0))))'),
    'module rejected: invalid_module: local 1 does not exist (function 0, offset 0x1a)');
  rejects(await wat('(module (func (call 1)))'), 'module rejected: invalid_module: function 1 does not exist (function 0, offset 0x17)');
  rejects(await wat('(module (global i32 (i32.const 1)) (global i32 (global.get 0)))'), 'module rejected: invalid_const_expr (offset 0x10)');
  rejects(await wat('(module (global f32 (f32.const 1)))'), 'module rejected: float_instruction: float constant (offset 0xb)', { ...OPEN_POLICY, floats: 'reject' });
});
