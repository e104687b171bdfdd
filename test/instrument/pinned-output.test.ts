/**
 * The instrumenter's output, pinned byte for byte: every example contract, the bench contracts, the kitchen-sink
 * fixture and the hostile corpus, under the policies VMs use (floats canonicalized and rejected). Gas figures,
 * metering and determinism all follow from these bytes, and a VM caches them by INSTRUMENTATION_VERSION, so a
 * change that only meant to make the instrumenter faster must leave every digest here unchanged. When the
 * output is meant to change, bump INSTRUMENTATION_VERSION and replace PINNED with what the failure prints.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { DEFAULT_LIMITS } from '../../src/protocol/message.js';
import { INSTRUMENTATION_VERSION, ModuleRejected, prepareModule, type ModulePolicy, type PrepareOptions } from '../../src/vm/instrument/index.js';
import { policyFor } from '../../src/vm/policy.js';
import { KITCHEN_SINK } from './fixtures.js';
import { OPEN_POLICY, ROOT, TEST_POLICY, wat } from './helpers.js';
import { corpusFiles } from './scenarios.js';

const PINNED_VERSION = 10;
/** sha256 over the per-module lines below (name, then the output's sha256 and shape, or the rejection). */
const PINNED = '810b267fc3aec033070220ca7ed86d115cc0cd45901ec1c814644b29c530b884';

function outcome(bytes: Uint8Array, policy: ModulePolicy, options: PrepareOptions): string {
  try {
    const p = prepareModule(bytes, policy, options);
    const digest = createHash('sha256').update(p.bytes).digest('hex');
    const memory = p.importedMemory === undefined ? '' : ` memory ${p.importedMemory.min}..${p.importedMemory.max}`;
    return `${digest} ${p.bytes.length} ${p.importedFunctionCount}/${p.addedImports}/${p.functionCount} ${JSON.stringify(p.exports)}${memory}`;
  } catch (e) {
    if (e instanceof ModuleRejected) return `rejected ${e.message}`;
    throw e;
  }
}

async function inputs(): Promise<Array<[string, Uint8Array]>> {
  const out: Array<[string, Uint8Array]> = [];
  for (const dir of ['examples', 'bench/contracts']) {
    for (const name of readdirSync(`${ROOT}${dir}`).sort()) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(`${ROOT}${dir}/${name}/build/${name}.wasm`);
      } catch {
        continue; // not a contract directory
      }
      out.push([`${dir}/${name}`, new Uint8Array(bytes)]);
    }
  }
  out.push(['kitchen-sink', await wat(KITCHEN_SINK)]);
  for (const f of corpusFiles()) out.push([`hostile/${f}`, await wat(readFileSync(`${ROOT}test/hostile/${f}`, 'utf8'))]);
  return out;
}

test('the instrumented bytes of every example, bench contract, fixture and hostile module are unchanged', async () => {
  // The VM's policies as the VM prepares modules (memory imported), and as defined in the module.
  const vm = { importMemory: true };
  const policies: Array<[string, ModulePolicy, PrepareOptions]> = [
    ['vm canonicalize', policyFor({ limits: DEFAULT_LIMITS, floats: 'canonicalize' }), vm],
    ['vm reject', policyFor({ limits: DEFAULT_LIMITS, floats: 'reject' }), vm],
    ['vm canonicalize, memory defined', policyFor({ limits: DEFAULT_LIMITS, floats: 'canonicalize' }), {}],
    ['test', TEST_POLICY, {}],
    ['open', OPEN_POLICY, {}],
  ];
  const lines: string[] = [];
  const all = await inputs();
  assert.ok(all.length >= 20, `found only ${all.length} modules to pin`);
  for (const [name, bytes] of all) {
    for (const [pname, policy, options] of policies) lines.push(`${name} [${pname}] ${outcome(bytes, policy, options)}`);
  }
  const text = lines.join('\n');
  // Modules really were instrumented, not all rejected.
  assert.ok(lines.filter((l) => !l.includes('] rejected ')).length >= 20, text);
  const digest = createHash('sha256').update(text).digest('hex');
  assert.equal(INSTRUMENTATION_VERSION, PINNED_VERSION, 'INSTRUMENTATION_VERSION changed: re-pin the output below');
  assert.equal(digest, PINNED, `the instrumenter's output changed (digest ${digest}). If that is intended, bump INSTRUMENTATION_VERSION and pin the new digest; the per-module lines:\n${text}`);
});
