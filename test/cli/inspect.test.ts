/**
 * What a contract developer reads back with the CLI (separate processes, a data directory on disk, real VM
 * processes): contexts and codes, state with CRDT collections decoded and long values cut, check/inspect with
 * the fix hints, method_not_found listing the methods.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { contractPath, sha256, tempDir, utf8 } from '../helpers.js';
import { cliIn } from './run-cli.js';

const dir = tempDir('hostlink-inspect-');
const kv = contractPath('kv-store');
const collab = contractPath('collab');
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const { run: hostlink, json } = cliIn(dir.path);

/** A module importing env.abort, as AssemblyScript emits without the SDK's abort flag. */
const ABORT_WASM = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x0b, 0x02, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x00, 0x60, 0x00, 0x00, // types: (i32 x4)->(), ()->()
  0x02, 0x0d, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x05, 0x61, 0x62, 0x6f, 0x72, 0x74, 0x00, 0x00, // import env.abort
  0x03, 0x02, 0x01, 0x01, // one function of type 1
  0x07, 0x07, 0x01, 0x03, 0x72, 0x75, 0x6e, 0x00, 0x01, // export "run"
  0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // body
]);

describe('hostlink listings, state and inspection', () => {
  after(() => dir.remove());

  test('contexts and codes list what the data directory holds', () => {
    hostlink('call', kv, 'set', '--input', '{"key":"a","value":"b"}', '--context', 'listed');
    const contexts = json<{ context: string; keys: number; root: string }[]>(['contexts']);
    const listed = contexts.find((c) => c.context === hexOf(sha256(utf8('listed'))));
    assert.ok(listed, 'the context is listed');
    assert.equal(listed.keys, 2); // the entry and the contract's index
    assert.equal(listed.root, json<{ root: string }>(['state', 'listed']).root);
    const codes = json<{ code_hash: string; bytes: number; methods: string[] }[]>(['codes']);
    const kvCode = codes.find((c) => c.code_hash === hexOf(sha256(readFileSync(kv))));
    assert.ok(kvCode);
    assert.deepEqual(kvCode.methods, ['set', 'get', 'get_result', 'get_unchecked', 'remove', 'entries']);
  });

  test('state cuts long values (in full with --full) and decodes CRDT collections', () => {
    const long = 'x'.repeat(1000);
    hostlink('call', kv, 'set', '--input', JSON.stringify({ key: 'long', value: long }), '--context', 'big');
    const text = hostlink('state', 'big').stdout;
    assert.match(text, new RegExp(`e:long = x{200}… \\(1000 bytes; --full shows all\\)\\n`));
    assert.ok(hostlink('state', 'big', '--full').stdout.includes(`e:long = ${long}\n`));
    const cut = json<{ entries: { key: string; value: string; bytes?: number; truncated?: boolean }[] }>(['state', 'big']);
    assert.deepEqual(cut.entries.find((e) => e.key === 'e:long'), { key: 'e:long', value: 'x'.repeat(200), bytes: 1000, truncated: true });

    assert.equal(hostlink('call', collab, 'set_title', '--input', '{"section":"intro","title":"Hello"}', '--context', 'doc').code, 0);
    assert.equal(hostlink('call', collab, 'add_tag', '--input', '{"tag":"draft"}', '--context', 'doc').code, 0);
    const s = json<{ collections: { kind: string; entries?: { key: string; value: string }[]; values?: string[]; total?: string }[] }>(['state', 'doc']);
    const map = s.collections.find((c) => c.kind === 'map');
    assert.deepEqual(map?.entries, [{ key: 'intro', value: 'Hello' }]);
    assert.deepEqual(s.collections.find((c) => c.kind === 'set')?.values, ['draft']);
    assert.equal(s.collections.find((c) => c.kind === 'counter')?.total, '2');
    assert.match(hostlink('state', 'doc').stdout, /\n {2}map [0-9a-f]{16}… \(1 entry\)\n {4}intro = Hello\n/);
    assert.ok(hostlink('state', 'doc', '--raw').stdout.includes('0xff6372647443'), '--raw shows the stored keys');
  });

  test('check and deploy name the fix; inspect lists the methods; method_not_found lists them too', () => {
    const abortFile = join(dir.path, 'abort.wasm');
    writeFileSync(abortFile, ABORT_WASM);
    const checked = hostlink('check', abortFile);
    assert.equal(checked.code, 1);
    assert.match(checked.stderr, /would be refused: import_not_allowed: env\.abort: unknown host function/);
    assert.match(checked.stderr, /\n {2}fix: .*compile with --use abort=~lib\/@hostlink\/sdk\/assembly\/panic\/hostlinkAbort/);
    const deployed = hostlink('deploy', abortFile);
    assert.notEqual(deployed.code, 0);
    assert.match(deployed.stderr, /contract refused: import_not_allowed: env\.abort.*\n {2}fix: .*--use abort=~lib\/@hostlink\/sdk/);
    assert.equal(hostlink('check', kv).code, 0);

    const hash = hostlink('deploy', kv).stdout.trim();
    const byHash = json<{ embedded: boolean; methods: { name: string }[] }>(['inspect', hash]);
    assert.equal(byHash.embedded, false);
    assert.deepEqual(byHash.methods.map((m) => m.name), ['set', 'get', 'get_result', 'get_unchecked', 'remove', 'entries']);
    const missing = hostlink('call', hash, 'gett');
    assert.equal(missing.stdout, 'vm_error: method_not_found gett (methods: set, get, get_result, get_unchecked, remove, entries)\n');
  });
});
