/**
 * The contract developer's commands as a user runs them (separate processes, a data directory on disk, real
 * VM processes): strict ids and `hostlink id`, view, --datetime/--seed, contexts and codes, state decoding and
 * truncation, a closed stdout pipe, parser errors, check/inspect and the fix hints, VM processes per call.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { contractPath, sha256, tempDir, utf8 } from '../helpers.js';

const dir = tempDir('hostlink-devx-');
const kv = contractPath('kv-store');
const calls = contractPath('host-calls');
const collab = contractPath('collab');
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function hostlink(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [HOSTLINK_BIN, ...args], { encoding: 'utf8', cwd: dir.path });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const json = <T>(args: string[]): T => {
  const r = hostlink(...args, '--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
};
const oneLine = (s: string): void => assert.equal(s.trimEnd().split('\n').length, 1, `one line expected: ${s}`);

/** A module importing env.abort, as AssemblyScript emits without the SDK's abort flag. */
const ABORT_WASM = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x0b, 0x02, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x00, 0x60, 0x00, 0x00, // types: (i32 x4)->(), ()->()
  0x02, 0x0d, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x05, 0x61, 0x62, 0x6f, 0x72, 0x74, 0x00, 0x00, // import env.abort
  0x03, 0x02, 0x01, 0x01, // one function of type 1
  0x07, 0x07, 0x01, 0x03, 0x72, 0x75, 0x6e, 0x00, 0x01, // export "run"
  0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // body
]);

/** Pids of the `hostlink vm` processes whose parent is `pid` (from /proc). */
function vmChildren(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').includes('vm')) out.push(Number(e));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

describe('hostlink CLI for contract developers', () => {
  after(() => dir.remove());

  test('ids: 64 hex with or without 0x, name:TEXT or a plain name; hex of another length is refused', () => {
    const alice = hexOf(sha256(utf8('alice')));
    assert.equal(hostlink('id', 'alice').stdout, alice + '\n');
    assert.equal(hostlink('id', 'name:alice').stdout, alice + '\n');
    assert.equal(hostlink('id', '0x' + alice.toUpperCase()).stdout, alice + '\n');
    // The executor the contract sees is exactly the bytes given, whichever way they are written.
    const withPrefix = json<{ value: string }>(['call', calls, 'ids', '--executor', '0x' + alice, '--context', 'ids']);
    const named = json<{ value: string }>(['call', calls, 'ids', '--executor', 'name:alice', '--context', 'ids']);
    assert.equal((JSON.parse(withPrefix.value) as { executor_id: string }).executor_id, alice);
    assert.equal(named.value, withPrefix.value);
    for (const bad of [alice.slice(1), '0x' + alice.slice(1), alice + '0', 'cafe', '0x']) {
      const r = hostlink('call', calls, 'ids', '--executor', bad);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /^hostlink: --executor '.*' looks like hex but has \d+ digits: an id is exactly 64 hex digits \(32 bytes\); to use it as a name, write name:/, bad);
      oneLine(r.stderr);
    }
    assert.equal(hostlink('state', 'abc').code, 2);
    assert.equal(hostlink('id', 'name:').code, 2);
  });

  test('view runs a method without applying it; --datetime and --seed reach the contract', () => {
    const viewed = json<{ result: string; applied: boolean; view: boolean; writes: unknown[] }>(['view', kv, 'set', '--input', '{"key":"k","value":"v"}', '--context', 'views']);
    assert.deepEqual([viewed.result, viewed.applied, viewed.view, viewed.writes.length > 0], ['return', false, true, true]);
    assert.equal(json<{ value: string }>(['call', kv, 'get', '--input', '{"key":"k"}', '--context', 'views']).value, 'null');
    const text = hostlink('call', kv, 'set', '--input', '{"key":"k","value":"v"}', '--context', 'views', '--view');
    assert.match(text.stderr, /view: not applied \(\d+ change\(s\) discarded\)/);
    assert.equal(hostlink('state', 'views').stdout.includes('(empty)'), true);

    const now = json<{ value: string }>(['view', calls, 'now', '--datetime', '2031-02-03T04:05:06Z']);
    assert.equal(now.value, `"${Date.UTC(2031, 1, 3, 4, 5, 6) * 1e6}"`);
    const r1 = json<{ value: string }>(['view', calls, 'random', '--input', '{"n":8}', '--seed', 'name:s1']);
    const r2 = json<{ value: string }>(['view', calls, 'random', '--input', '{"n":8}', '--seed', hexOf(sha256(utf8('s1')))]);
    const r3 = json<{ value: string }>(['view', calls, 'random', '--input', '{"n":8}', '--seed', 'name:s2']);
    assert.equal(r1.value, r2.value);
    assert.notEqual(r1.value, r3.value);
    const bad = hostlink('view', calls, 'now', '--datetime', 'yesterday');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^hostlink: '--datetime' must be an RFC 3339 date-time/);
  });

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

  test('a reader that closes the pipe early (state --json | head) ends the command quietly', async () => {
    hostlink('call', kv, 'set', '--input', JSON.stringify({ key: 'huge', value: 'y'.repeat(100_000) }), '--context', 'pipe');
    const child = spawn(process.execPath, [HOSTLINK_BIN, 'state', 'pipe', '--json', '--full'], { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.destroy(); // the reader is gone before the first write, like `| head -c 0` or `| true`
    const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });

  test("Node's parser errors become one line naming the option", () => {
    const unknown = hostlink('call', kv, 'get', '--frobnicate');
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr, "hostlink: unknown option --frobnicate for hostlink call: run hostlink call --help for its options\n");
    const negative = hostlink('call', kv, 'get', '--gas', '-5');
    assert.equal(negative.code, 2);
    assert.match(negative.stderr, /^hostlink: --gas needs a value \(a value that starts with '-' is written --gas=VALUE, e\.g\. --gas=-1\)/);
    oneLine(negative.stderr);
    const value = hostlink('state', 'x', '--json=yes');
    assert.equal(value.stderr, 'hostlink: --json takes no value: run hostlink state --help for its options\n');
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

  test('one call starts one VM process (the default pool holds one)', async () => {
    const hold = contractPath('hold');
    const child = spawn(process.execPath, [HOSTLINK_BIN, 'call', hold, 'write_then_loop', '--gas', String((1n << 63n) - 1n), '--deadline', '120000', '--context', 'procs'], { cwd: dir.path, stdio: 'ignore' });
    try {
      // The pool launches all its VMs at once, so once one child exists every one does.
      let vms: number[] = [];
      while (vms.length === 0) {
        await new Promise((r) => setTimeout(r, 50));
        vms = vmChildren(child.pid!);
      }
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(vmChildren(child.pid!).length, 1);
    } finally {
      const vms = vmChildren(child.pid!);
      child.kill('SIGKILL');
      for (const pid of vms) process.kill(pid, 'SIGKILL');
    }
  });
});
