import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TIERS, runChild } from './helpers.js';
import { determinismReport, scenariosUrl, stackReport } from './scenarios.js';

const childReport = (fn: 'determinismReport' | 'stackReport', flags: readonly string[]): Promise<string> =>
  runChild([...flags], `const m = await import(${JSON.stringify(scenariosUrl)}); process.stdout.write(await m.${fn}());`);

test('results, gas, errors, frames and memory hashes repeat exactly within a process', async () => {
  const a = await determinismReport();
  const b = await determinismReport();
  assert.equal(b, a);
  const r = JSON.parse(a) as Record<string, { error?: string; gas: string; frames?: number[] }>;
  // The report is not trivially equal: executions did run out of gas at different points.
  assert.equal(r['fib oog 1000']!.error, 'out_of_gas');
  assert.equal(r['fib oog 1000']!.gas, '1000');
  assert.ok(r['fib oog 1000']!.frames!.length > 1);
  assert.notDeepEqual(r['sha256 5000'], r['sha256 77777']);
  assert.equal(r['sha256 1000000000']!.error, undefined);
});

test('the same executions are byte-identical under Liftoff only and TurboFan only', async () => {
  const [here, liftoff, turbofan] = await Promise.all([
    determinismReport(),
    childReport('determinismReport', TIERS.liftoff),
    childReport('determinismReport', TIERS.turbofan),
  ]);
  assert.equal(liftoff, here, 'liftoff child == this process');
  assert.equal(turbofan, here, 'turbofan child == this process');
});

test('worst-case recursions end with stack_overflow at the same depth in every tier, never a RangeError', async () => {
  const [liftoff, turbofan] = await Promise.all([
    childReport('stackReport', TIERS.liftoff),
    childReport('stackReport', TIERS.turbofan),
  ]);
  assert.equal(turbofan, liftoff);
  const r = JSON.parse(liftoff) as Record<string, { error?: string; frames?: { depth: number } }>;
  for (const [shape, o] of Object.entries(r)) {
    assert.equal(o.error, 'stack_overflow', `${shape}: ${JSON.stringify(o)}`);
    assert.ok(o.frames!.depth > 2, shape);
  }
  assert.equal(await stackReport(), liftoff, 'and the same in this process');
});

test('control: without the limit the same recursions do hit V8 RangeError (so the test above can fail)', async () => {
  const r = JSON.parse(await stackReport(1 << 30)) as Record<string, { error?: string }>;
  assert.match(r['tiny frames']!.error!, /^unclassified RangeError: Maximum call stack size exceeded/);
  assert.match(r['most locals']!.error!, /^unclassified RangeError/);
});
