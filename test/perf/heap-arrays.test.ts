/**
 * V8 keeps a typed array of at most 64 bytes inside its heap; reading its `.buffer`, or handing it to an N-API
 * addon, moves its bytes out into a buffer of their own (a malloc, a copy, an ArrayBuffer the collector later
 * sweeps). Keys, values and 32-byte hashes are that short and fresh on every call: on the host that was about a
 * dozen such moves per call, in the VM three (docs/performance.md, "Short arrays kept in V8's heap"). These tests
 * hand short arrays to the functions a call runs through, in a child with V8's natives syntax, and check that
 * every one is still in the heap afterwards (%DebugPrint: a typed array in the heap has a base pointer).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ROOT } from '../helpers.js';

const dist = (rel: string): string => JSON.stringify(join(ROOT, 'dist', 'src', rel));

/** Runs `body` (an async module body with `check(name, array)` in scope) and returns each checked array's place. */
function placesAfter(body: string): { places: Map<string, 'heap' | 'outside'> | undefined; stderr: string } {
  const script = `
    const names = [];
    const check = (name, a) => { names.push(name); %DebugPrint(a); };
    ${body}
    process.stderr.write('NAMES ' + JSON.stringify(names) + '\\n');`;
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const names = JSON.parse(/NAMES (.*)/.exec(r.stderr)![1]!) as string[];
  const pointers = [...r.stdout.matchAll(/ - base_pointer: (\S+)/g)].map((m) => m[1]!);
  // A V8 built without object printing shows no fields: nothing to check then (the caller skips).
  if (pointers.length === 0) return { places: undefined, stderr: r.stderr };
  assert.equal(pointers.length, names.length, `one typed array printed per check:\n${r.stdout.slice(0, 2000)}`);
  return { places: new Map(names.map((n, i) => [n, pointers[i] === '0' ? 'outside' : 'heap'])), stderr: r.stderr };
}

function assertInHeap(t: TestContext, places: Map<string, 'heap' | 'outside'> | undefined): void {
  if (places === undefined) {
    t.skip(`this Node's %DebugPrint does not show where a typed array's bytes are (${process.version})`);
    return;
  }
  const moved = [...places].filter(([, p]) => p === 'outside').map(([n]) => n);
  assert.deepEqual(moved, [], `moved out of V8's heap: ${moved.join(', ')}`);
}

test('the state tree hashing leaves short keys, values and hash outputs in the heap (native SHA-256 and JavaScript)', (t) => {
  for (const impl of ['native', 'js'] as const) {
    const { places, stderr } = placesAfter(`
      const rec = await import(${dist('host/state/sha256-record.js')});
      const { sha256 } = await import(${dist('host/state/hash.js')});
      if (!rec.useStateHash(${JSON.stringify(impl)})) process.stderr.write('NO-ADDON\\n');
      const bytes = (n, seed) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
      const key = bytes(7, 1), value = bytes(10, 2), leaf = new Uint8Array(65);
      rec.leafRecordInto(key, value, leaf);
      check('leafRecordInto key', key);
      check('leafRecordInto value', value);
      const data = bytes(5, 3), out = new Uint8Array(32);
      rec.sha256Into(data, out, 0);
      check('sha256Into data', data);
      check('sha256Into out', out);
      const into = new Uint8Array(64);
      rec.sha256Into(bytes(3, 4), into, 32);
      check('sha256Into out at 32', into);
      const recs = new Uint8Array(130), slots = Uint8Array.of(0, 33), root = new Uint8Array(32);
      rec.hashChain(recs, 2, slots, root);
      check('hashChain slots', slots);
      check('hashChain out', root);
      const one = new Uint8Array(32);
      rec.hashRecordInto(leaf, one, 0);
      check('hashRecordInto out', one);
      const input = bytes(9, 5);
      const digest = sha256(input);
      check('sha256 input', input);
      check('sha256 digest', digest);
      // The staged paths give the digests node:crypto gives.
      const { createHash } = await import('node:crypto');
      const expect = (b) => createHash('sha256').update(b).digest('hex');
      const hex = (b) => Buffer.from(b).toString('hex');
      if (hex(out) !== expect(data) || hex(digest) !== expect(input) || hex(into.subarray(32)) !== expect(bytes(3, 4))) throw new Error('wrong digest');
      if (hex(leaf.subarray(1, 33)) !== expect(key) || hex(leaf.subarray(33)) !== expect(value)) throw new Error('wrong leaf record');
      if (hex(one) !== expect(leaf)) throw new Error('wrong record hash');`);
    if (impl === 'native' && stderr.includes('NO-ADDON')) {
      process.stdout.write('# note: the state hash addon is not built here; only the JavaScript path was checked\n');
      continue;
    }
    assertInHeap(t, places);
  }
});

test('state keys and values applied to real LMDB and read back stay in the heap', (t) => {
  const { places } = placesAfter(`
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { openLmdbStore } = await import(${dist('host/state/lmdb-store.js')});
    const { applyDelta, readState } = await import(${dist('host/state/merkle.js')});
    const dir = mkdtempSync(join(tmpdir(), 'hostlink-heap-arrays-'));
    const store = await openLmdbStore(dir);
    try {
      const ctx = new Uint8Array(32).fill(7);
      const key = Uint8Array.of(107, 49), value = Uint8Array.of(1, 2, 3), other = Uint8Array.of(9, 9, 9, 9);
      await store.write((txn) => applyDelta(txn, ctx, [[key, value], [other, Uint8Array.of(4)]]));
      const again = Uint8Array.of(107, 49);
      const read = readState(store, ctx, again);
      if (read === undefined || read.length !== 3) throw new Error('the value did not read back');
      check('applyDelta key', key);
      check('applyDelta value', value);
      check('applyDelta second key', other);
      check('applyDelta context id', ctx);
      check('readState key', again);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }`);
  assertInHeap(t, places);
});

test("the VM's storage overlay and latin1 keys leave short keys in the heap", (t) => {
  const { places } = placesAfter(`
    const { latin1 } = await import(${dist('latin1.js')});
    const { StorageOverlay } = await import(${dist('vm/storage-overlay.js')});
    const k = Uint8Array.of(0, 127, 128, 255);
    if (latin1(k) !== '\\x00\\x7f\\x80\\xff') throw new Error('latin1 changed the bytes');
    check('latin1', k);
    const overlay = new StorageOverlay({ readMany: (keys) => keys.map(() => Uint8Array.of(1)) });
    const written = Uint8Array.of(1, 2, 3), read = Uint8Array.of(4, 5), removed = Uint8Array.of(6);
    overlay.write(written, Uint8Array.of(9));
    overlay.read(read);
    overlay.remove(removed);
    overlay.delta();
    check('overlay written key', written);
    check('overlay read key', read);
    check('overlay removed key', removed);`);
  assertInHeap(t, places);
});

test('latin1 gives the same string as Buffer for short and long arrays and for views', async () => {
  const { latin1 } = await import('../../src/latin1.js');
  const long = Uint8Array.from({ length: 300 }, (_, i) => (i * 31) & 0xff);
  for (const bytes of [new Uint8Array(0), Uint8Array.of(0, 200, 65), long.subarray(10, 74), long.subarray(3, 68), long]) {
    assert.equal(latin1(bytes), Buffer.from(bytes).toString('latin1'));
  }
});
