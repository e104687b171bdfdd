/**
 * The closed catalogue of result reasons (protocol/reasons.json): every documented or expected error message
 * starts with a catalogued reason whose code matches, and no source file outside the catalogue spells a
 * reason as a string literal when it builds an error result.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { RESULT_REASONS, reasonMessage, reasonOf } from '../../src/protocol/reasons.js';
import { assertCatalogued } from './catalogue.js';
import { INTERNAL_ERROR_CLASSES } from '../../src/errors.js';
import { ROOT } from '../helpers.js';

test('every error message the hostile corpus expects starts with a catalogued reason of its code', () => {
  let checked = 0;
  for (const rel of ['test/hostile/expected.json', 'test/hostile/workload/expected.json']) {
    const { cases } = JSON.parse(readFileSync(join(ROOT, rel), 'utf8')) as { cases: { file: string; expect: { code: string; message?: string } }[] };
    for (const c of cases) {
      if (c.expect.code !== 'vm_error' && c.expect.code !== 'internal_error') continue;
      assertCatalogued(c.expect.code, c.expect.message ?? '', `${rel} ${c.file}`);
      checked++;
    }
  }
  assert.ok(checked > 10, `only ${checked} error cases found`);
});

test('every message example of the vm_error and internal_error tables of docs/results.md starts with a catalogued reason', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'results.md'), 'utf8');
  let checked = 0;
  for (const code of ['vm_error', 'internal_error'] as const) {
    const section = doc.split(`\n## ${code}\n`)[1]?.split('\n## ')[0];
    assert.ok(section, `docs/results.md has no "## ${code}" section`);
    for (const row of section.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| cause'))) {
      const message = row.slice(row.lastIndexOf(' | ') + 3);
      const example = /`([^`]+)`/.exec(message)?.[1];
      // Rows without an example ("that VMError's message") or with a placeholder name ("<ErrorName> (...)").
      if (example === undefined || example.startsWith('<')) continue;
      assertCatalogued(code, example, `docs/results.md ${code} row "${row.slice(0, 60)}…"`);
      checked++;
    }
  }
  assert.ok(checked > 20, `only ${checked} examples found`);
});

test('a message that starts with anything else is not catalogued', () => {
  for (const m of ['timeouts', 'OOMx', 'module rejected', 'wasm_trapx unreachable', 'KeyLengthOverflow: x', 'Panic: boom', 'NotAName (f)', '']) {
    assert.equal(reasonOf(m), undefined, m);
  }
  assert.equal(reasonOf(reasonMessage('timeout')), 'timeout');
  assert.equal(reasonOf(reasonMessage('module_rejected', 'feature_simd: 0xfd')), 'module_rejected');
  assert.equal(reasonOf('KeyLengthOverflow (storage_write): key too long'), 'KeyLengthOverflow');
});

/** Every .ts file under dir, except generated ones. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return name.endsWith('.ts') && !name.endsWith('.generated.ts') ? [p] : [];
  });
}

test('no source file builds an error result from a string-literal reason (reasonMessage / reasonResult instead)', () => {
  const reasons = Object.values(RESULT_REASONS).map((r) => r.prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  // A quote or backtick directly followed by a catalogued prefix and then the end of the string, a space or
  // an interpolation: the reason spelled out where the catalogue should be used.
  const literal = new RegExp(`['\`"](${reasons.join('|')})(['\`"]| |\\$\\{)`);
  const offenders: string[] = [];
  for (const file of sources(join(ROOT, 'src'))) {
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      if (!/code: '(vm_error|internal_error)'|vmError\(|endWith\(|message: |message ===/.test(line)) return;
      // The catalogue's own calls, and HostlinkError codes (a different closed set that shares some words).
      const rest = line.replace(/(reasonMessage|reasonResult|HostlinkError)\('[A-Za-z_]+'/g, '');
      if (literal.test(rest)) offenders.push(`${file.slice(ROOT.length + 1)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(offenders, []);
});

test('codegen refuses a reason listed twice or with an unknown result code', async () => {
  const codegen = (await import(pathToFileURL(join(ROOT, 'scripts', 'codegen.mjs')).href)) as { checkReasons: (rs: unknown, results: unknown) => void };
  const results = JSON.parse(readFileSync(join(ROOT, 'protocol', 'results.json'), 'utf8')) as unknown;
  const r = { name: 'timeout', code: 'vm_error', meaning: 'm', documented: 'docs/results.md' };
  assert.throws(() => codegen.checkReasons({ reasons: [r, r] }, results), /reason timeout is listed twice/);
  assert.throws(() => codegen.checkReasons({ reasons: [{ ...r, code: 'return' }] }, results), /reason timeout has code return/);
});

test('every error class outside src/errors.ts extends the closed set or is listed as internal control flow', () => {
  const internal = new Set<string>(INTERNAL_ERROR_CLASSES);
  const found: string[] = [];
  for (const file of sources(join(ROOT, 'src'))) {
    if (file.endsWith(join('src', 'errors.ts')) || file.endsWith('.d.ts')) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(/class (\w+) extends Error\b/g)) found.push(m[1]!);
  }
  assert.deepEqual(found.filter((c) => !internal.has(c)), [], 'add the class to src/errors.ts, extend HostlinkError, or list it in INTERNAL_ERROR_CLASSES saying where it is caught');
  assert.deepEqual([...internal].filter((c) => !found.includes(c)), [], 'INTERNAL_ERROR_CLASSES lists a class that no longer exists');
});
