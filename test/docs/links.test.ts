/**
 * Relative links in the documentation resolve, in the repository and once installed: docs/*.md, the README
 * and the examples' READMEs ship in the hostlink package, so they may not point into what it leaves out
 * (src/, test/, bench/); the SDK's README ships alone in @hostlink/sdk, so its links stay inside the SDK.
 * Links inside code blocks are examples, not links.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers.js';

/** The relative link targets of a Markdown file (no scheme, not a bare #anchor), without their anchors. */
function relativeLinks(file: string): string[] {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#'))
    .map((t) => t.split('#')[0]!);
}

function check(file: string, packageRoot: string, notShipped: string[]): string[] {
  const problems: string[] = [];
  for (const target of relativeLinks(file)) {
    const path = resolve(dirname(file), target);
    const inPackage = relative(packageRoot, path);
    if (!existsSync(path)) problems.push(`${relative(ROOT, file)}: ${target} does not exist`);
    else if (inPackage.startsWith('..')) problems.push(`${relative(ROOT, file)}: ${target} is outside its package (${relative(ROOT, packageRoot) || '.'})`);
    else if (notShipped.some((d) => inPackage === d || inPackage.startsWith(d + sep))) problems.push(`${relative(ROOT, file)}: ${target} is not in the published package`);
  }
  return problems;
}

test('relative links in docs/, the READMEs and the SDK README resolve where they are read', () => {
  const docs = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f));
  const examples = readdirSync(join(ROOT, 'examples')).map((e) => join(ROOT, 'examples', e, 'README.md')).filter((f) => existsSync(f));
  const problems = [
    ...[...docs, ...examples, join(ROOT, 'README.md')].flatMap((f) => check(f, ROOT, ['src', 'test', 'bench'])),
    ...check(join(ROOT, 'sdk', 'assemblyscript', 'README.md'), join(ROOT, 'sdk', 'assemblyscript'), []),
  ];
  assert.deepEqual(problems, []);
  assert.ok(docs.length > 10, 'the docs were found');
});
