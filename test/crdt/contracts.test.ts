/**
 * The state functions and the -1 convention through real contracts (test/contracts/host-calls,
 * examples/collab) run in process: the imports link, traps surface as named VM errors, and a collection
 * error reaches the contract as the SDK's CrdtError.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runInProcess } from '../../src/host/in-process.js';
import type { JobEnd } from '../../src/host/job.js';
import { decodeArtifact } from '../../src/vm/crdt/actions.js';
import { CodeCache } from '../../src/vm/runner.js';
import { contract, id32, MemoryBackend, message, text, utf8 } from '../helpers.js';

type Ended = Extract<JobEnd, { kind: 'result' }>;

describe('state functions and collections through contracts', () => {
  const backend = new MemoryBackend();
  const calls = backend.deploy(contract('host-calls'));
  const collab = backend.deploy(contract('collab'));
  const cache = new CodeCache();
  let ctx = id32('test-context');
  const run = (codeHash: Uint8Array, method: string, input: object = {}): Ended => {
    const end = runInProcess(backend, message({ codeHash, method, input: utf8(JSON.stringify(input)), contextId: ctx }), cache);
    assert.equal(end.kind, 'result');
    const r = end as Ended;
    if (r.result.code === 'return') backend.apply(ctx, r.effects.writes);
    return r;
  };
  const returned = (r: Ended): string => {
    assert.equal(r.result.code, 'return', JSON.stringify(r.result));
    const v = (r.result as { value: unknown }).value;
    return v instanceof Uint8Array ? text(v) : String(v);
  };
  const failure = (r: Ended): string => (r.result as { message: string }).message;

  test('commit records the root hash and artifact; a second commit is CommitTwice', () => {
    const root = 'ab'.repeat(32);
    const ok = run(calls, 'commit_state', { root, artifact: '0100000000' });
    assert.equal(returned(ok), 'null');
    assert.equal(Buffer.from(ok.effects.rootHash!).toString('hex'), root);
    assert.equal(Buffer.from(ok.effects.artifact!).toString('hex'), '0100000000');
    assert.match(failure(run(calls, 'commit_twice')), /^CommitTwice \(commit\): commit was already called/);
    assert.match(failure(run(calls, 'commit_state', { root: 'ab', artifact: '' })), /^InvalidMemoryAccess \(commit\): root hash must be 32 bytes/);
  });

  test('root document, flush and apply_storage_delta', () => {
    assert.equal(returned(run(calls, 'read_root')), 'null');
    returned(run(calls, 'persist_root', { doc: 'hello' }));
    assert.equal(returned(run(calls, 'read_root')), '"hello"');
    const flushed = run(calls, 'flush');
    assert.equal(returned(flushed), 'false', 'nothing pending in a new call');
    assert.equal(flushed.effects.artifact, null);
    assert.match(failure(run(calls, 'apply_delta', { delta: '02' })), /^DeserializationError \(apply_storage_delta\): artifact: unsupported artifact version 2/);
  });

  test('collab: each changing call emits its artifact; a wrong-kind id is a CrdtError panic', () => {
    ctx = id32('collab context');
    const init = run(collab, 'init');
    const ids = JSON.parse(returned(init)) as Record<string, string>;
    assert.deepEqual(
      decodeArtifact(init.effects.artifact!).map((a) => a.type),
      ['create', 'create', 'create', 'create', 'create', 'create', 'create', 'root'],
    );
    const set = run(collab, 'set_title', { section: 's', title: 't' });
    assert.deepEqual(decodeArtifact(set.effects.artifact!).map((a) => a.type), ['member', 'element', 'counter']);
    assert.equal(run(collab, 'titles').effects.artifact, null, 'a query emits nothing');
    // A document whose "titles" names the tags set: the map functions answer -1, the SDK panics.
    returned(run(calls, 'persist_root', { doc: JSON.stringify({ ...ids, titles: ids.tags }) }));
    const bad = run(collab, 'set_title', { section: 's', title: 't' });
    assert.equal(bad.result.code, 'user_error');
    assert.match(failure(bad), /^Panic: CrdtError\(js_crdt_map_insert\): collection [0-9a-f]{64} is a set, not a map/);
  });
});
