/**
 * `hostlink verify`: a store whose state, tree or code no longer matches its hashes is reported (each problem
 * named, exit 1), and a data file whose pages are damaged is reported with where the reader was, not a crash
 * of the command: LMDB pages carry no checksums, and before this command a damaged page was found only when
 * some command or the node crashed on it. Real stores on disk, the real CLI in its own process.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { putCode } from '../../src/host/state/code-store.js';
import { sha256 } from '../../src/host/state/hash.js';
import { openLmdbStore } from '../../src/host/state/lmdb-store.js';
import { applyDelta } from '../../src/host/state/merkle.js';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { tempDir } from '../helpers.js';

const enc = new TextEncoder();
const ctx = (name: string): Uint8Array => sha256(enc.encode(name));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const BIG = ctx('verify-big');
const SMALL = ctx('verify-small');
const CODE = enc.encode('\0asm not really a module, but code is stored by its hash whatever it is');

/**
 * Runs `hostlink verify`. Its progress lines ("hostlink verify: reading table code") appear on stderr only when a
 * step outlasts a second, which a loaded machine decides: they are taken out of `stderr` and returned apart.
 */
function verify(dir: string, ...extra: string[]): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; progress: string[] } {
  const r = spawnSync(process.execPath, [HOSTLINK_BIN, 'verify', '--data-dir', dir, ...extra], { encoding: 'utf8' });
  const lines = r.stderr.split(/(?<=\n)/);
  const isProgress = (l: string): boolean => /^hostlink verify: (opening the store|reading table |checking )/.test(l);
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: lines.filter((l) => !isProgress(l)).join(''), progress: lines.filter(isProgress) };
}

describe('hostlink verify', () => {
  const tmp = tempDir('hostlink-verify-');
  const sound = join(tmp.path, 'sound');
  let codeHash: Uint8Array;
  before(async () => {
    const store = await openLmdbStore(sound);
    codeHash = await putCode(store, CODE);
    // More keys than one change log holds (its pages written back at checkpoints), some deleted again, and a
    // second context whose last changes are only in its log.
    for (let i = 0; i < 300; i++) await store.write((t) => applyDelta(t, BIG, [[enc.encode(`key-${i}`), enc.encode(`value-${i}`)]]));
    for (let i = 0; i < 300; i += 7) await store.write((t) => applyDelta(t, BIG, [[enc.encode(`key-${i}`), null]]));
    for (let i = 0; i < 5; i++) await store.write((t) => applyDelta(t, SMALL, [[enc.encode(`k${i}`), enc.encode(`v${i}`)]]));
    await store.close();
  });
  after(() => tmp.remove());

  /** A copy of the sound store changed by `tamper` (through LMDB itself, behind the state tree's back). */
  async function tampered(name: string, tamper: Parameters<Awaited<ReturnType<typeof openLmdbStore>>['write']>[0]): Promise<string> {
    const dir = join(tmp.path, name);
    cpSync(sound, dir, { recursive: true });
    const store = await openLmdbStore(dir);
    await store.write(tamper);
    await store.close();
    return dir;
  }

  test('a sound store: every table read, each context and code checked, exit 0', () => {
    const r = verify(sound);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /: 13 tables, [\d,]+ entries .*; 1 contract, 2 contexts, 0 blobs checked\n/);
    assert.match(r.stdout, /every code matches its hash, every context its state root and every blob file its record\n$/);
    const json = verify(sound, '--json');
    assert.equal(json.status, 0, json.stderr);
    const report = JSON.parse(json.stdout) as { ok: boolean; codes: number; contexts: number; problems: unknown[]; tables: { table: string; entries: number }[] };
    assert.equal(report.ok, true);
    assert.equal(report.contexts, 2);
    assert.equal(report.codes, 1);
    assert.deepEqual(report.problems, []);
    assert.equal(report.tables.find((t) => t.table === 'state')?.entries, 300 - 43 + 5);
  });

  test('a value changed behind the tree: the context is named with both roots, exit 1', async () => {
    const stateKey = new Uint8Array([...SMALL, ...sha256(enc.encode('k3'))]);
    const dir = await tampered('value', (t) => {
      const entry = t.get('state', stateKey)!;
      entry[entry.length - 1] ^= 1;
      t.put('state', stateKey, entry);
    });
    const r = verify(dir);
    assert.equal(r.status, 1, r.stderr);
    // Found by the tree check (the logged key's entry no longer gives the stored root) or the recomputed root.
    assert.match(r.stdout, new RegExp(`^context ${hex(SMALL)}: .*(has|hash to the) root [0-9a-f]{64}, but its stored root is [0-9a-f]{64}\\n`, 'm'));
    assert.doesNotMatch(r.stdout, new RegExp(`context ${hex(BIG)}`), 'the untouched context is not reported');
    assert.match(r.stderr, /^hostlink: 1 problem in the store in .* \(listed above\)\. Nothing was changed: restore the directory from a backup\.\n$/);
  });

  test('an entry removed, an entry stored under another key, a root replaced, code changed: each reported', async () => {
    const removedKey = new Uint8Array([...BIG, ...sha256(enc.encode('key-1'))]);
    const dir = await tampered('several', (t) => {
      t.del('state', removedKey);
      // k1's entry moved under k2's hash: the table key is no longer the hash of the entry's key.
      const k1 = new Uint8Array([...SMALL, ...sha256(enc.encode('k1'))]);
      const k2 = new Uint8Array([...SMALL, ...sha256(enc.encode('k2'))]);
      t.put('state', k2, t.get('state', k1)!);
      t.put('code', codeHash, enc.encode('other bytes'));
    });
    const r = verify(dir, '--json');
    assert.equal(r.status, 1, r.stderr);
    const report = JSON.parse(r.stdout) as { ok: boolean; problems: { kind: string; id: string; problem: string }[] };
    assert.equal(report.ok, false);
    const byId = new Map(report.problems.map((p) => [p.id, p]));
    assert.equal(report.problems.length, 3, JSON.stringify(report.problems));
    assert.match(byId.get(hex(codeHash))!.problem, /^its 11 stored bytes hash to [0-9a-f]{64}$/);
    assert.match(byId.get(hex(SMALL))!.problem, /another key's hash|not the hash of its key/);
    assert.match(byId.get(hex(BIG))!.problem, /root [0-9a-f]{64}, but its stored root is [0-9a-f]{64}/);

    // A root value without entries is as wrong as entries without a root.
    const rootOnly = await tampered('root-only', (t) => {
      for (const [k] of [...t.range('state', SMALL)]) t.del('state', k);
    });
    const ro = verify(rootOnly);
    assert.equal(ro.status, 1, ro.stderr);
    assert.match(ro.stdout, new RegExp(`^context ${hex(SMALL)}: .*(has|hash to the) root 0{64}, but its stored root is [0-9a-f]{64}`, 'm'));
  });

  // Every page after the two meta pages overwritten: the meta pages are sound, so the file passes the open-time
  // check and the damage is met only when a page is read. What is met decides how it shows: a page number past
  // the end of the file can crash the reader (SIGBUS), a page of the wrong type is an error lmdb reports.
  const damaged = /^hostlink: the store in .* (is damaged: .* crashed the reader \(SIG[A-Z]+\)|cannot be read: .* failed: .*MDB_[A-Z_]+.*)\. Nothing was changed: .*restore the directory from a backup\.\n$/;
  const patterns: [string, (i: number) => number][] = [
    ['0xff bytes', () => 0xff],
    ['zeros', () => 0],
    ['pseudo-random bytes', (i) => (Math.imul(i, 2654435761) >>> 24) & 0xff],
  ];
  for (const [name, byte] of patterns) {
    test(`data pages overwritten with ${name}: the command says where it was reading and exits 1; the file is untouched`, () => {
      const dir = join(tmp.path, `damaged-${name.replace(/\W+/g, '-')}`);
      cpSync(sound, dir, { recursive: true });
      const file = join(dir, 'data.mdb');
      const bytes = readFileSync(file);
      for (let i = 2 * 4096; i < bytes.length; i++) bytes[i] = byte(i);
      writeFileSync(file, bytes);
      const r = verify(dir);
      assert.equal(r.signal, null, `the command itself died of ${r.signal}`);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, damaged);
      assert.deepEqual(readFileSync(file), bytes, 'data.mdb unchanged');
    });
  }

  test('a table whose pages hold fewer entries than its header counts is reported, not passed', () => {
    // A damaged branch page can make LMDB skip a whole subtree without an error: the walk then read a third
    // fewer tree pages and every root still matched its entries (a 65 MB store passed). Each table's entries
    // are now counted against the count LMDB keeps in the table's record, apart from its pages: here that record
    // is changed instead, which is the same disagreement, made exactly.
    const dir = join(tmp.path, 'miscounted');
    cpSync(sound, dir, { recursive: true });
    const file = join(dir, 'data.mdb');
    const bytes = readFileSync(file);
    const pageSize = bytes.readUInt32LE(48);
    const meta = bytes.readBigUInt64LE(152) >= bytes.readBigUInt64LE(pageSize + 152) ? 0 : pageSize;
    const mainRoot = Number(bytes.readBigUInt64LE(meta + 136));
    const page = bytes.subarray(mainRoot * pageSize, (mainRoot + 1) * pageSize);
    // The main tree's record of the table: its name (padded to an even length), then LMDB's table record, whose
    // entry count is at byte 32.
    const name = page.indexOf('state');
    assert.ok(name > 0, 'the state table\'s record is in the main tree\'s root page');
    const at = name + 6 + 32;
    const count = page.readBigUInt64LE(at);
    assert.equal(count, BigInt(300 - 43 + 5), 'the record\'s entry count is where LMDB keeps it');
    page.writeBigUInt64LE(count + 7n, at);
    writeFileSync(file, bytes);
    const r = verify(dir);
    assert.equal(r.status, 1, `a miscounted store passed: ${r.stdout}`);
    assert.match(r.stdout, new RegExp(`^table state: its header counts ${count + 7n} entries and reading it found ${count}: pages of the table are damaged$`, 'm'));
  });

  test('wrong arguments: exit 2 with the usage', () => {
    const r = spawnSync(process.execPath, [HOSTLINK_BIN, 'verify', 'extra'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /hostlink verify takes no arguments/);
    const empty = spawnSync(process.execPath, [HOSTLINK_BIN, 'verify', '--data-dir', ''], { encoding: 'utf8' });
    assert.equal(empty.status, 2);
    const missing = verify(join(tmp.path, 'missing'));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /does not exist: check --data-dir/);
  });
});
