/**
 * The contract developer's commands as a user runs them (separate processes, a data directory on disk, real
 * VM processes): strict ids and `hostlink id`, view, --datetime/--seed, a closed stdout pipe, parser errors,
 * VM processes per call. Listings, state and inspection: inspect.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { parseId } from '../../src/cli/common.js';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { contractPath, sha256, tempDir, utf8 } from '../helpers.js';
import { cliIn } from './run-cli.js';

const dir = tempDir('hostlink-devx-');
const kv = contractPath('kv-store');
const calls = contractPath('host-calls');
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const { run: hostlink, json } = cliIn(dir.path);
const oneLine = (s: string): void => assert.equal(s.trimEnd().split('\n').length, 1, `one line expected: ${s}`);

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

  test('a name that is not UTF-8 is refused: its bytes would become U+FFFD, one id for many names', () => {
    // Node gives argv bytes that are not UTF-8 as U+FFFD: \xff, \xfe and a real U+FFFD were all one account.
    for (const name of ["$'\\xff'", "$'acct\\xfe'", "name:$'\\xef\\xbf\\xbd'"]) {
      const r = spawnSync('bash', ['-c', `"$0" "$1" id ${name}`, process.execPath, HOSTLINK_BIN], { encoding: 'utf8' });
      assert.equal(r.status, 2, `${name}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stderr, "hostlink: NAME: the name is not UTF-8 text (bytes that are not UTF-8, half a UTF-16 pair, or the character U+FFFD they become): names must be UTF-8 text\n");
    }
    // A JSON body may escape half a UTF-16 pair, which UTF-8 also encodes as U+FFFD.
    assert.throws(() => parseId('acct\ud800', 'context'), /^HostlinkError: context: the name is not UTF-8 text/);
    assert.equal(hostlink('id', 'héllo wörld ✓').code, 0);
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
