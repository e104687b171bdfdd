/**
 * The contract ABI: doc-comment annotations, the custom section it travels in (replaced, never duplicated,
 * invisible to execution), and the fallback to the exports for a module without one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_ABI_BYTES } from '../../src/protocol/bounds.generated.js';
import { ABI_SECTION, deriveAbi, docComments, embedAbi, emittedKinds, methodNames, readAbi, type ContractAbi } from '../../src/contract/abi.js';
import { customSection, readCustomSection } from '../../src/contract/sections.js';
import { Host } from '../../src/host/host.js';
import { contract, id32, text, utf8 } from '../helpers.js';

const SOURCE = `
/**
 * Moves a piece.
 * Second line of prose.
 * @input {"from": "string",
 *         "to": "string"}
 * @output {"ok": "bool"}
 * @event moved {"to": "string"}
 */
export function move(): void { emit<string>("moved", "{}"); emitWithHandler("other", x, "h"); }

/** @view
 * @output not json at all */
export function peek(): void {}
export function bare(): void {}
`;

test('doc comments give prose, JSON shapes (multi-line), views and events; other text is kept as text', () => {
  const docs = docComments(SOURCE);
  assert.deepEqual(docs.get('move'), {
    doc: 'Moves a piece. Second line of prose.',
    input: { from: 'string', to: 'string' },
    output: { ok: 'bool' },
    view: false,
    events: [{ kind: 'moved', data: { to: 'string' } }],
  });
  assert.deepEqual(docs.get('peek'), { doc: '', output: 'not json at all', view: true, events: [] });
  assert.equal(docs.has('bare'), false);
  assert.deepEqual(emittedKinds([SOURCE]), ['moved', 'other']);
});

test('methods come from the exports (callable ones only); the section is replaced, not added twice', async () => {
  const kv = contract('kv-store');
  assert.deepEqual(methodNames(kv), ['set', 'get', 'get_result', 'get_unchecked', 'remove', 'entries']);
  const abi = deriveAbi(kv, '/** Sets.\n * @input {"key":"string"} */\nexport function set(): void {}', [], 'kv');
  assert.deepEqual(abi.methods[0], { name: 'set', doc: 'Sets.', input: { key: 'string' } });
  assert.deepEqual(abi.methods[1], { name: 'get' });
  const once = embedAbi(kv, abi);
  const twice = embedAbi(once, { ...abi, name: 'kv2' });
  assert.ok(WebAssembly.validate(twice));
  assert.equal(twice.length, once.length + 1, 'one section, with a one-byte-longer name');
  assert.deepEqual(readAbi(twice), { abi: { ...abi, name: 'kv2' }, embedded: true, unexported: [] });
  // The section is the author's claim: the methods are the exports, its entries for no export are dropped.
  const claims = readAbi(embedAbi(kv, { format: 'hostlink-abi/1', methods: [{ name: 'mint', doc: 'made up' }, { name: 'get', view: true }, { name: '__new' }] } as ContractAbi));
  assert.deepEqual(claims.abi.methods.map((m) => m.name), methodNames(kv));
  assert.deepEqual(claims.abi.methods[1], { name: 'get', view: true });
  assert.deepEqual([claims.embedded, claims.unexported, claims.abi.events], [true, ['mint', '__new'], []]);
  assert.deepEqual(readAbi(kv).embedded, false);
  assert.deepEqual(readAbi(kv).abi.methods.map((m) => m.name), methodNames(kv));
  // A malformed section describes nothing: the exports are used.
  const garbage = customSection(kv, ABI_SECTION, utf8('{not json'));
  assert.deepEqual(readAbi(garbage), { abi: { format: 'hostlink-abi/1', methods: methodNames(kv).map((name) => ({ name })), events: [] }, embedded: false, unexported: [] });
  assert.deepEqual(text(readCustomSection(garbage, ABI_SECTION)!), '{not json');

  // The section changes nothing a call does: same result, same gas as the module without it.
  const host = await Host.open({ poolSize: 1 });
  try {
    const [plain, described] = [await host.deploy(kv), await host.deploy(twice)];
    const run = (codeHash: Uint8Array, ctx: string) => host.call({ codeHash, method: 'set', input: utf8('{"key":"a","value":"b"}'), contextId: id32(ctx) });
    const [a, b] = [await run(plain, 'abi-a'), await run(described, 'abi-b')];
    assert.deepEqual([b.result, b.gasUsed], [a.result, a.gasUsed]);
  } finally {
    await host.close();
  }
});

test('hostlink build refuses to embed an ABI over max_abi_bytes, which every node would ignore', () => {
  const kv = contract('kv-store');
  const doc = 'd'.repeat(MAX_ABI_BYTES);
  assert.throws(() => embedAbi(kv, { format: 'hostlink-abi/1', methods: [{ name: 'set', doc }], events: [] }), /the contract's ABI is \d+ bytes, over max_abi_bytes \(262144\).*shorten its doc comments/);
});
