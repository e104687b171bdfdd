/**
 * Oversized and absurd inputs to the real `hostlink` binary end at once with a one-line error naming the
 * limit; socket directories of killed hosts are removed by the next host.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { contractPath, tempDir } from '../helpers.js';

const dir = tempDir();
const kv = contractPath('kv-store');

function hostlink(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [HOSTLINK_BIN, ...args], { encoding: 'utf8', cwd: dir.path, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('hostlink CLI bounds', () => {
  after(() => dir.remove());

  test('call /dev/zero and --input @/dev/zero stop at the limit with its name', () => {
    const code = hostlink('call', '/dev/zero', 'run');
    assert.equal(code.code, 2);
    assert.equal(code.stderr, 'hostlink: contract /dev/zero is larger than 10485760 bytes (max_module_size)\n');
    const input = hostlink('call', kv, 'get', '--input', '@/dev/zero');
    assert.equal(input.code, 2);
    assert.equal(input.stderr, 'hostlink: input file /dev/zero is larger than 16777216 bytes (max_input_bytes)\n');
  });

  test('check, inspect and every file option read /dev/zero only up to their limit', () => {
    const contract = 'hostlink: contract /dev/zero is larger than 10485760 bytes (max_module_size)\n';
    for (const command of ['check', 'inspect']) {
      const r = hostlink(command, '/dev/zero');
      assert.deepEqual([r.code, r.stderr], [2, contract], command);
    }
    const settings = 'is larger than 1048576 bytes (the most a token, certificate or configuration file may hold)\n';
    const token = hostlink('serve', '--token-file', '/dev/zero', '--data-dir', join(dir.path, 'serve-token'));
    assert.deepEqual([token.code, token.stderr], [2, `hostlink: the token file /dev/zero ${settings}`]);
    assert.equal(existsSync(join(dir.path, 'serve-token')), false, 'nothing opened');
    const worker = hostlink('worker', '--runtime', '127.0.0.1:1', '--slots', '1', '--cert', '/dev/zero', '--key', '/dev/zero', '--ca', '/dev/zero');
    assert.deepEqual([worker.code, worker.stderr], [2, `hostlink: the TLS cert file /dev/zero ${settings}`]);
    const agent = hostlink('agent', '--config', '/dev/zero');
    assert.deepEqual([agent.code, agent.stderr], [2, `hostlink: agent configuration /dev/zero ${settings}`]);
  });

  test('--data-dir under /proc and an out-of-range --deadline: one-line errors', () => {
    const proc = hostlink('deploy', kv, '--data-dir', '/proc/hostlink-nope');
    assert.equal(proc.code, 2);
    assert.equal(proc.stderr, 'hostlink: data directory /proc/hostlink-nope: cannot create /proc/hostlink-nope (ENOENT)\n');
    const deadline = hostlink('call', kv, 'get', '--deadline', String(2 ** 31));
    assert.equal(deadline.code, 2);
    assert.equal(deadline.stderr, 'hostlink: --deadline must be a whole number of milliseconds from 1 to 2147483647 (got "2147483648")\n');
  });

  test('--data-dir "" is a usage error, not the current directory', () => {
    const empty = join(dir.path, 'empty-data-dir');
    mkdirSync(empty);
    const r = spawnSync(process.execPath, [HOSTLINK_BIN, 'deploy', kv, '--data-dir', ''], { encoding: 'utf8', cwd: empty });
    assert.deepEqual([r.status, r.stderr], [2, 'hostlink: --data-dir must not be empty: give a directory, or leave the option out for ./.hostlink\n']);
    assert.deepEqual(readdirSync(empty), [], 'nothing written in the current directory');
  });

  test('commands that only read refuse a data directory that does not exist; commands that write create it', () => {
    const typo = join(dir.path, 'typo');
    const missing = `data directory ${typo} does not exist: check --data-dir (deploy, call and serve create it; the default is ./.hostlink in the current directory)`;
    const hash = 'ab'.repeat(32);
    for (const args of [['state', 'default'], ['contexts'], ['codes'], ['inspect', hash], ['view', hash, 'get'], ['call', hash, 'get', '--view']]) {
      const r = hostlink(...args, '--data-dir', typo);
      assert.deepEqual([r.code, r.stderr], [1, `hostlink: ${missing}\n`], args.join(' '));
      assert.equal(existsSync(typo), false, `${args.join(' ')} created nothing`);
    }
    const deployed = hostlink('deploy', kv, '--data-dir', typo);
    assert.equal(deployed.code, 0, deployed.stderr);
    const codes = hostlink('codes', '--data-dir', typo);
    assert.equal(codes.code, 0, codes.stderr);
    assert.match(codes.stdout, new RegExp(`^${deployed.stdout.trim()} `));
  });

  test('a data directory this user may not reach is said to be that, not missing', (t) => {
    // As root, permissions do not apply: run the command as nobody when it can read the checkout; otherwise a
    // folder on the path with no permissions at all does it.
    const asRoot = process.getuid?.() === 0;
    const locked = join(dir.path, 'locked');
    mkdirSync(join(locked, 'data'), { recursive: true });
    chmodSync(locked, asRoot ? 0o700 : 0o000);
    const user = asRoot ? { uid: 65534, gid: 65534 } : {};
    if (asRoot && spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(HOSTLINK_BIN)})`], user).status !== 0) {
      chmodSync(locked, 0o700);
      return t.skip('the user nobody cannot read this checkout (a clone in a private folder)');
    }
    try {
      for (const args of [['state', 'default'], ['contexts'], ['call', 'ab'.repeat(32), 'get', '--view']]) {
        const r = spawnSync(process.execPath, [HOSTLINK_BIN, ...args, '--data-dir', join(locked, 'data')], { encoding: 'utf8', cwd: '/', timeout: 60_000, ...user });
        assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /^hostlink: data directory .*locked\/data: cannot use .*locked\/data \(EACCES\): permission denied; run as the user that owns the node's data, or give this user access\n$/, args.join(' '));
      }
    } finally {
      chmodSync(locked, 0o700);
    }
  });

  test('two CLI loops on one data directory take turns: no write is lost', async () => {
    const data = join(dir.path, 'shared');
    const run = (args: string[]) =>
      new Promise<number | null>((resolve) => {
        const p = spawn(process.execPath, [HOSTLINK_BIN, ...args], { cwd: dir.path, stdio: 'ignore' });
        p.on('exit', resolve);
      });
    const loop = async (name: string) => {
      const codes: (number | null)[] = [];
      for (let i = 0; i < 2; i++) codes.push(await run(['call', kv, 'set', '--input', `{"key":"${name}${i}","value":"v"}`, '--context', 'shared', '--mode', 'oneshot', '--data-dir', data]));
      return codes;
    };
    const codes = await Promise.all([loop('a'), loop('b')]);
    assert.deepEqual(codes.flat(), Array(4).fill(0));
    const state = hostlink('state', 'shared', '--json', '--data-dir', data);
    assert.equal(state.code, 0, state.stderr);
    const keys = (JSON.parse(state.stdout) as { entries: { key: string }[] }).entries.map((e) => e.key);
    assert.deepEqual(keys.filter((k) => k.startsWith('e:')).sort(), ['e:a0', 'e:a1', 'e:b0', 'e:b1']);
  });

  test('the socket directory of a killed host is removed by the next host', () => {
    // A pid that no longer runs: a finished child's.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const stale = join(tmpdir(), `hostlink-${dead}-abcdef`);
    mkdirSync(stale, { recursive: true });
    const r = hostlink('call', kv, 'get', '--input', '{"key":"x"}', '--context', 'sweep');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(existsSync(stale), false);
  });
});
