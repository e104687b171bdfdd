import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';

test('generated files are up to date with protocol/*.json (run npm run codegen when this fails)', async () => {
  const codegen = (await import(pathToFileURL(join(ROOT, 'scripts', 'codegen.mjs')).href)) as { staleFiles: () => string[] };
  assert.deepEqual(codegen.staleFiles(), []);
});
