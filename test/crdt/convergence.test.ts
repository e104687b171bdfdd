/**
 * Convergence end to end: three Hosts (each its own LMDB store and VM processes) start from the same state,
 * make different concurrent changes to every collection kind through examples/collab, exchange their
 * artifacts through apply_storage_delta (test/contracts/host-calls apply_delta) in different orders, and
 * end with identical state roots, identical storage and identical answers to every query.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Host, type Outcome } from '../../src/host/host.js';
import { contract, id32, tempDir, text, utf8 } from '../helpers.js';

const CTX = id32('collab convergence');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface Node {
  host: Host;
  dir: { path: string; remove: () => void };
  collab: Uint8Array;
  sync: Uint8Array;
  executor: Uint8Array;
  /** Artifacts of this node's own changes, in order. */
  artifacts: Uint8Array[];
}

function value(o: Outcome): string {
  assert.equal(o.result.code, 'return', JSON.stringify(o.result));
  const v = (o.result as { value: unknown }).value;
  return v instanceof Uint8Array ? text(v) : String(v);
}

async function call(n: Node, method: string, input: object = {}, datetime?: string): Promise<string> {
  const o = await n.host.call({
    codeHash: n.collab,
    method,
    input: utf8(JSON.stringify(input)),
    contextId: CTX,
    executorId: n.executor,
    ...(datetime ? { datetime } : {}),
  });
  const v = value(o);
  if (o.artifact !== null) n.artifacts.push(o.artifact);
  return v;
}

async function applyDelta(n: Node, artifact: Uint8Array): Promise<void> {
  const o = await n.host.call({
    codeHash: n.sync,
    method: 'apply_delta',
    input: utf8(JSON.stringify({ delta: hex(artifact) })),
    contextId: CTX,
    executorId: n.executor,
  });
  assert.equal(value(o), 'null');
  assert.equal(o.artifact, null, 'merging emits nothing');
}

/** Everything a client can ask collab, as one string per query. */
async function queries(n: Node, users: Uint8Array[], hashes: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const m of ['summary', 'titles', 'edits', 'tags', 'status', 'edit_count']) out.push(`${m} ${await call(n, m)}`);
  for (const u of users) {
    out.push(`edit_count ${await call(n, 'edit_count', { executor: hex(u) })}`);
    out.push(`get_draft ${await call(n, 'get_draft', { user: hex(u) })}`);
  }
  for (const h of hashes) out.push(`get_attachment ${await call(n, 'get_attachment', { hash: h })}`);
  for (const s of ['intro', 'body', 'outro']) out.push(`get_title ${await call(n, 'get_title', { section: s })}`);
  for (const t of ['urgent', 'old', 'bob', 'carol']) out.push(`has_tag ${t} ${await call(n, 'has_tag', { tag: t })}`);
  return out;
}

describe('three hosts converge through apply_storage_delta', () => {
  const nodes: Node[] = [];

  before(async () => {
    for (const name of ['alice', 'bob', 'carol']) {
      const dir = tempDir('hostlink-crdt-');
      const host = await Host.open({ dataDir: dir.path, poolSize: 1 });
      const collab = await host.deploy(contract('collab'));
      const sync = await host.deploy(contract('host-calls'));
      nodes.push({ host, dir, collab, sync, executor: id32(name), artifacts: [] });
    }
  });

  after(async () => {
    for (const n of nodes) {
      await n.host.close();
      n.dir.remove();
    }
  });

  test('different concurrent updates, exchanged in different orders, give identical roots and answers', async () => {
    const [a, b, c] = nodes as [Node, Node, Node];

    // The same starting state everywhere: alice creates the document, the others merge her artifacts.
    await call(a, 'init');
    await call(a, 'set_title', { section: 'intro', title: 'Draft intro' });
    await call(a, 'add_tag', { tag: 'old' });
    const start = a.artifacts.splice(0);
    for (const n of [b, c]) for (const art of start) await applyDelta(n, art);
    const startRoot = a.host.state(CTX).root;
    for (const n of [b, c]) assert.deepEqual(n.host.state(CTX).root, startRoot, 'same starting state root');

    // Concurrent changes: nobody sees the others' until the exchange. Alice's clock runs one second ahead.
    const later = '2024-11-26T06:42:43.5Z';
    assert.equal(await call(a, 'set_title', { section: 'intro', title: "Alice's intro" }, later), '"Draft intro"');
    await call(a, 'add_tag', { tag: 'urgent' }, later);
    await call(a, 'set_status', { status: 'review' }, later);
    await call(a, 'save_draft', { text: 'alice draft' }, later);
    const spec = JSON.parse(await call(a, 'attach', { content: 'spec v1' }, later)) as { hash: string };

    await call(b, 'set_title', { section: 'intro', title: "Bob's intro" });
    await call(b, 'set_title', { section: 'body', title: 'Body' });
    await call(b, 'add_tag', { tag: 'urgent' });
    await call(b, 'add_tag', { tag: 'bob' });
    await call(b, 'set_status', { status: 'final' });
    await call(b, 'save_draft', { text: 'bob draft' });
    await call(b, 'attach', { content: 'spec v1' });
    await call(b, 'pop_edit');

    assert.equal(await call(c, 'remove_title', { section: 'intro' }), '"Draft intro"');
    await call(c, 'set_title', { section: 'outro', title: 'The end' });
    await call(c, 'clear_tags');
    await call(c, 'add_tag', { tag: 'carol' });
    await call(c, 'set_status', { status: null });
    await call(c, 'save_draft', { text: 'carol draft' });
    await call(c, 'discard_draft');
    await call(c, 'save_draft', { text: 'carol draft 2' });
    const photo = JSON.parse(await call(c, 'attach', { content: 'photo' })) as { hash: string };

    const [fromA, fromB, fromC] = [a.artifacts.splice(0), b.artifacts.splice(0), c.artifacts.splice(0)];
    assert.ok(fromA.length >= 5 && fromB.length >= 8 && fromC.length >= 8, 'every change produced an artifact');
    const roots = nodes.map((n) => hex(n.host.state(CTX).root));
    assert.equal(new Set(roots).size, 3, 'the concurrent changes diverged');

    // The exchange, in three different orders (one artifact twice, one replica's own artifacts reversed).
    for (const art of [...fromC].reverse()) await applyDelta(a, art);
    for (const art of fromB) await applyDelta(a, art);
    for (let i = 0; i < Math.max(fromA.length, fromC.length); i++) {
      if (fromC[i]) await applyDelta(b, fromC[i]!);
      if (fromA[i]) await applyDelta(b, fromA[i]!);
    }
    await applyDelta(b, fromA[0]!);
    for (const art of [...fromB, ...fromA].reverse()) await applyDelta(c, art);

    const root = a.host.state(CTX).root;
    for (const n of nodes) assert.deepEqual(n.host.state(CTX).root, root, 'identical state roots');
    const entries = (n: Node): string[] => n.host.state(CTX).entries.map(([k, v]) => `${hex(k)}=${hex(v)}`);
    for (const n of [b, c]) assert.deepEqual(entries(n), entries(a), 'identical storage');

    const users = nodes.map((n) => n.executor);
    const hashes = [spec.hash, photo.hash, hex(id32('no such attachment'))];
    const answers = await Promise.all(nodes.map((n) => queries(n, users, hashes)));
    assert.deepEqual(answers[1], answers[0]);
    assert.deepEqual(answers[2], answers[0]);
    for (const n of nodes) assert.deepEqual(n.host.state(CTX).root, root, 'queries change nothing');

    // What the merge rules say the document holds.
    const summary = JSON.parse(answers[0]![0]!.slice('summary '.length)) as Record<string, unknown>;
    assert.deepEqual(summary.titles, { body: 'Body', intro: "Alice's intro", outro: 'The end' }, 'add wins over the concurrent remove; the later write wins');
    assert.deepEqual(summary.tags, ['bob', 'carol', 'urgent'], "carol's clear removed only what she had seen");
    assert.equal(summary.status, 'review', "alice's later timestamp wins");
    // Every recorded edit counts once: alice 2 before and 4 concurrent, bob 6, carol 6.
    assert.equal(summary.edit_count, 2 + 4 + 6 + 6);
    const drafts = answers[0]!.filter((q) => q.startsWith('get_draft'));
    assert.deepEqual(drafts, ['get_draft "alice draft"', 'get_draft "bob draft"', 'get_draft "carol draft 2"']);
    assert.ok(answers[0]!.includes('get_attachment "spec v1"') && answers[0]!.includes('get_attachment "photo"'));
  });
});
