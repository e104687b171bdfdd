// Executions whose every observable (result, gas used, error message, frames, memory hashes) must be identical
// across runs and across V8 tiers. Run in this process and in child processes started with different tiering
// flags; the JSON texts are compared byte for byte. No tests here.
import { readFileSync, readdirSync } from 'node:fs';
import { createMeter, prepareModule, type ModulePolicy } from '../../src/vm/instrument/index.js';
import { captureFingerprint } from '../../src/vm/fingerprint.js';
import { classifyTrap } from '../../src/vm/traps.js';
import { KITCHEN_CALLS, KITCHEN_IMPORTS, KITCHEN_SINK } from './fixtures.js';
import { OPEN_POLICY, ROOT, TEST_POLICY, loadContract, loadCorpus, runGuest, wat } from './helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
type Fn = (...a: number[]) => unknown;
const ABORT = { env: { abort: (): never => { throw new Error('abort'); } } };

/** Instantiates the instrumented module, calls `run(exports)` and records everything observable. */
function observe(bytes: Uint8Array, imports: WebAssembly.Imports, gas: bigint, run: (e: WebAssembly.Exports) => unknown, policy: ModulePolicy = OPEN_POLICY): unknown {
  const prepared = prepareModule(bytes, policy);
  const meter = createMeter(gas, policy);
  let exports: WebAssembly.Exports | undefined;
  try {
    exports = new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes), { ...imports, ...meter.imports }).exports;
    const value = run(exports);
    return { value: typeof value === 'bigint' ? `${value}n` : value, gas: `${meter.gasUsed()}` };
  } catch (e) {
    const memories = exports?.memory ? [exports.memory as WebAssembly.Memory] : [];
    const fp = captureFingerprint(e, memories, prepared);
    return {
      error: classifyTrap(e)?.message ?? `unclassified ${String(e)}`,
      gas: `${meter.gasUsed(e)}`,
      frames: fp.frames,
      memory: fp.memoryHashes.map(hex),
    };
  }
}

export async function determinismReport(): Promise<string> {
  const out: Record<string, unknown> = {};
  const fib = loadContract('fib');
  out.fib = observe(fib, ABORT, 1n << 40n, (e) => (e.fib as Fn)(20));
  for (const gas of [1000n, 12345n, 100000n, 1000000n]) {
    out[`fib oog ${gas}`] = observe(fib, ABORT, gas, (e) => (e.fib as Fn)(25));
  }
  const sha = loadContract('sha256');
  for (const gas of [5000n, 77777n, 300000n, 10n ** 9n]) {
    out[`sha256 ${gas}`] = observe(sha, ABORT, gas, (e) => (e.sha256Loop as Fn)(1000, 3));
  }
  const memcpy = loadContract('memcpy');
  for (const gas of [200000n, 1234567n, 10n ** 9n]) {
    out[`memcpy ${gas}`] = observe(memcpy, ABORT, gas, (e) => {
      (e.fill as Fn)(65536, 7);
      (e.bulkCopy as Fn)(65536, 2);
      return (e.copyLoop as Fn)(65536, 3);
    });
  }
  const sink = await wat(KITCHEN_SINK);
  out.kitchen = observe(sink, KITCHEN_IMPORTS, 1n << 40n, (e) =>
    KITCHEN_CALLS.map(([name, args]) => {
      try {
        const v = (e[name] as Fn)(...args);
        return typeof v === 'bigint' ? `${v}n` : v;
      } catch (err) {
        return `trap ${(err as Error).message}`;
      }
    }));
  // The hostile corpus with a smaller gas limit, so that the infinite loops end quickly.
  const corpus = loadCorpus();
  for (const c of corpus.cases) {
    const bytes = await wat(readFileSync(`${ROOT}test/hostile/${c.file}`, 'utf8'));
    out[`hostile ${c.file} ${c.method}`] = runGuest(bytes, c.method, TEST_POLICY, 10_000_000n);
  }
  return JSON.stringify(out);
}

/** Every .wat file of the hostile corpus. */
export function corpusFiles(): string[] {
  return readdirSync(`${ROOT}test/hostile`).filter((f) => f.endsWith('.wat')).sort();
}

/**
 * Recursions with the worst frames we can build within TEST_POLICY (most locals, most parameters, deepest
 * operand stack, mutual and indirect recursion, a host function doing JS work at every level). Each must end
 * with stack_overflow, at the same depth in every tier; never with V8's RangeError.
 */
export async function stackReport(maxStackHeight = TEST_POLICY.maxStackHeight): Promise<string> {
  const policy: ModulePolicy = { ...OPEN_POLICY, maxStackHeight };
  const maxLocals = TEST_POLICY.maxLocalsPerFunction;
  const i64s = (n: number): string => ' i64'.repeat(n);
  const shapes: Record<string, string> = {
    'most locals': `(func $r (param i64) (local${i64s(maxLocals - 1)}) (call $r (local.get 0))) (func (export "run") (call $r (i64.const 0)))`,
    'most params': `(func $r (param${i64s(998)}) ${"(local.get 0) ".repeat(998)} (call $r)) (func (export "run") ${"(i64.const 1) ".repeat(998)} (call $r))`,
    'deep operand stack': `(func $r (result i64) ${'(i64.const 1) '.repeat(2000)} (call $r) ${'(i64.add) '.repeat(2000)}) (func (export "run") (drop (call $r)))`,
    'tiny frames': `(func $r (call $r)) (func (export "run") (call $r))`,
    'mutual': `(func $a (local${i64s(300)}) (call $b (i32.const 0))) (func $b (param i32) (call $c (i64.const 1) (f64.const 2))) (func $c (param i64 f64) (local f32 f32) (call $a)) (func (export "run") (call $a))`,
    'indirect': `(type $v (func)) (table 2 funcref) (elem (i32.const 0) $x $y) (func $x (local${i64s(50)}) (call_indirect (type $v) (i32.const 1))) (func $y (call_indirect (type $v) (i32.const 0))) (func (export "run") (call $x))`,
    'host call at every level': `(import "t" "work" (func $work (param i32) (result i32))) (func $r (param i32) (local${i64s(200)}) (drop (call $work (local.get 0))) (call $r (i32.add (local.get 0) (i32.const 1)))) (func (export "run") (call $r (i32.const 0)))`,
  };
  // A host function that itself needs some native stack: a JS recursion of 100 frames and a JSON round trip.
  const jsDepth = (n: number): number => (n === 0 ? 0 : 1 + jsDepth(n - 1));
  const work = (i: number): number => jsDepth(100) + JSON.parse(JSON.stringify({ i, s: 'x'.repeat(64) })).i;
  const out: Record<string, unknown> = {};
  for (const [name, body] of Object.entries(shapes)) {
    const bytes = await wat(`(module ${body})`);
    out[name] = observe(bytes, { t: { work } }, 1n << 60n, (e) => (e.run as Fn)(), policy);
  }
  return JSON.stringify(out, (k, v) => (k === 'frames' && Array.isArray(v) ? { depth: v.length, innermost: v.slice(0, 4) } : v));
}

export const scenariosUrl = import.meta.url;
