/**
 * Object literals that start with a spread and then add properties (`{ ...info, vmPid }`) get a new hidden class
 * every time Node 20's optimizing compiler runs them; on the host that was about three hidden classes and ten
 * inline-cache handlers per call, all allocated in V8's old generation (docs/performance.md, "Hidden classes made
 * per call"). The modules a call, request or execution runs through use `extend()` (src/extend.ts) instead. The
 * CLI and the contract build tools run once per command and are left alone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../helpers.js';

const SRC = join(ROOT, 'src');
const ONCE_PER_COMMAND = ['cli', 'contract'].map((d) => join(SRC, d));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return ONCE_PER_COMMAND.includes(path) ? [] : sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** `name:line: text` of each object literal whose first element is a spread and which defines a property after it. */
function spreadThenAdd(name: string, text: string): string[] {
  const sf = ts.createSourceFile(name, text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isObjectLiteralExpression(node) && node.properties.length > 0 && ts.isSpreadAssignment(node.properties[0]!)) {
      if (node.properties.some((p) => !ts.isSpreadAssignment(p))) {
        const line = sf.getLineAndCharacterOfPosition(node.getStart()).line + 1;
        found.push(`${name}:${line}: ${node.getText().replace(/\s+/g, ' ').slice(0, 100)}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

test('no object literal on a call path starts with a spread and then adds properties (use extend())', () => {
  const files = sources(SRC);
  assert.ok(files.length > 100, `expected the product's sources under ${SRC}`);
  const found = files.flatMap((f) => spreadThenAdd(relative(ROOT, f), readFileSync(f, 'utf8')));
  assert.deepEqual(found, [], `write these as extend(base, { ... }) (src/extend.ts says why):\n${found.join('\n')}`);
});

test('the scan flags a spread followed by a property, and nothing else', () => {
  const text = 'const a = { ...info, vmPid: 1 };\nconst b = { ...x, ...y };\nconst c = { k: 1, ...x, z: 2 };\nconst d = { ...x, ...y, e };';
  assert.deepEqual(spreadThenAdd('probe.ts', text), ['probe.ts:1: { ...info, vmPid: 1 }', 'probe.ts:4: { ...x, ...y, e }']);
});

test('extend() keeps one hidden class once optimized, where the literal it replaces makes one per call (this Node)', () => {
  // Run in a child with V8's natives syntax, which the suite's own process does not have.
  const script = `
    const { extend } = await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'extend.js'))});
    const count = (make) => {
      let prev = make(0), fresh = 0;
      for (let i = 1; i < 60000; i++) { const o = make(i); if (!%HaveSameMap(prev, o)) fresh++; prev = o; }
      return fresh;
    };
    const viaExtend = (i) => extend({ callId: i, method: 'set' }, { vmPid: i, queueMs: 1 });
    const viaLiteral = (i) => { const info = { callId: i, method: 'set' }; return { ...info, vmPid: i, queueMs: 1 }; };
    console.log(JSON.stringify({ extend: count(viaExtend), literal: count(viaLiteral) }));`;
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const counts = JSON.parse(r.stdout) as { extend: number; literal: number };
  // A few while the function warms up and is optimized; not one per call.
  assert.ok(counts.extend < 10, `extend() made ${counts.extend} hidden classes in 60,000 calls`);
  if (counts.literal < 10) process.stdout.write(`# note: this Node (${process.version}) no longer makes a hidden class per spread-then-add literal\n`);
});
