import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMeter, prepareModule } from '../../src/vm/instrument/index.js';
import { OPEN_POLICY, ROOT } from './helpers.js';

// Random valid modules from binaryen's translate-to-fuzz (wasm-opt comes with assemblyscript), restricted to
// the whitelisted features: every export must behave the same instrumented (results, traps, host-visible
// logs, final memory). 300 seeds passed when this was written; a few run here.
const SEEDS = [1, 2, 3, 4, 5, 6];
const WASM_OPT = join(ROOT, 'node_modules/.bin/wasm-opt');
const FEATURES = ['--mvp-features', '--enable-sign-ext', '--enable-mutable-globals', '--enable-nontrapping-float-to-int', '--enable-bulk-memory', '--enable-multivalue'];
const POLICY = { ...OPEN_POLICY, maxMemoryPages: 65536, maxStackHeight: 1 << 20, maxTableSize: 1e7, maxDataBytes: 1 << 30 };

function observe(bytes: Uint8Array, extra: WebAssembly.Imports): string {
  const logs: string[] = [];
  const log = (x: unknown): void => { logs.push(String(x)); };
  const support: Record<string, unknown> = {
    'log-i32': log, 'log-i64': log, 'log-f32': log, 'log-f64': log, 'sleep': (_ms: number, id: number) => id,
    'throw': () => { throw new Error('js throw'); }, 'call-export': () => {}, 'call-export-catch': () => 0,
  };
  let exports: WebAssembly.Exports;
  try {
    exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { 'fuzzing-support': support as WebAssembly.ModuleImports, ...extra }).exports;
  } catch (e) {
    return `instantiate: ${(e as Error).message}`;
  }
  const out: string[] = [];
  for (const [name, f] of Object.entries(exports)) {
    if (typeof f !== 'function') continue;
    try {
      out.push(`${name} = ${String((f as (...a: number[]) => unknown)(...new Array<number>(f.length).fill(0)))}`);
    } catch (e) {
      out.push(`${name} trapped: ${(e as Error).message}`);
    }
  }
  const mem = exports.memory as WebAssembly.Memory | undefined;
  return JSON.stringify({ out, logs, memory: mem ? createHash('sha256').update(new Uint8Array(mem.buffer)).digest('hex') : '' });
}

test('random modules from binaryen behave the same instrumented', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-fuzz-'));
  try {
    let exercised = 0;
    for (const seed of SEEDS) {
      const input = Buffer.concat(Array.from({ length: 40 }, (_, i) => createHash('sha512').update(`${seed}-${i}`).digest()));
      writeFileSync(join(dir, 'in.dat'), input);
      execFileSync(WASM_OPT, ['-ttf', join(dir, 'in.dat'), '-o', join(dir, 'out.wasm'), ...FEATURES], { stdio: 'ignore' });
      const bytes = new Uint8Array(readFileSync(join(dir, 'out.wasm')));
      const prepared = prepareModule(bytes, POLICY);
      const meter = createMeter(1n << 50n, POLICY);
      const plain = observe(bytes, {});
      assert.equal(observe(prepared.bytes, meter.imports), plain, `seed ${seed}`);
      if (plain.includes(' = ')) exercised++;
      assert.ok(meter.gasUsed() > 0n || !plain.includes(' = '), `seed ${seed} was metered`);
    }
    assert.ok(exercised >= SEEDS.length / 2, 'most seeds ran exported functions');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
