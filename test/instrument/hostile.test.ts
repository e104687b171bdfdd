import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ROOT, TEST_POLICY, loadCorpus, runGuest, wat } from './helpers.js';
import { corpusFiles } from './scenarios.js';

const corpus = loadCorpus();

test('every hostile module has its documented outcome', async () => {
  const gas = BigInt(corpus.gasLimit);
  for (const c of corpus.cases) {
    const bytes = await wat(readFileSync(`${ROOT}test/hostile/${c.file}`, 'utf8'));
    const got = runGuest(bytes, c.method, TEST_POLICY, gas);
    const summary = { code: got.code, ...(got.message !== undefined && c.expect.message !== undefined ? { message: got.message } : {}), ...(c.expect.value !== undefined ? { value: got.value } : {}) };
    assert.deepEqual(summary, c.expect, `${c.file} ${c.method}: ${JSON.stringify(got).slice(0, 300)}`);
    if (got.message === 'out_of_gas') assert.equal(got.gasUsed, corpus.gasLimit, `${c.file}: out of gas uses the whole limit`);
  }
});

test('every file of the corpus has an expectation', () => {
  const covered = new Set(corpus.cases.map((c) => c.file));
  assert.deepEqual(corpusFiles().filter((f) => !covered.has(f)), []);
  assert.ok(corpus.cases.length >= 16);
});
