/**
 * The `hostlink` command as a user runs it: separate processes, a data directory on disk, real VM processes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { contractPath, tempDir } from '../helpers.js';
import { GAS_SCHEDULE_VERSION } from '../../src/vm/host-functions.generated.js';
import { INSTRUMENTATION_VERSION } from '../../src/vm/instrument/index.js';

const dir = tempDir();
const kv = contractPath('kv-store');

function hostlink(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [HOSTLINK_BIN, ...args], { encoding: 'utf8', cwd: dir.path });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('hostlink CLI', () => {
  after(() => dir.remove());

  test('names inherited from Object.prototype are unknown commands, not a crash', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const r = hostlink(name);
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^hostlink: unknown command '${name}'\n`));
    }
  });

  for (const transport of ['unix', 'tcp']) {
    test(`call over ${transport}: a value set by one process is read by the next`, () => {
      const set = hostlink('call', kv, 'set', '--input', `{"key":"k-${transport}","value":"v"}`, '--transport', transport, '--context', 'cli');
      assert.equal(set.code, 0, set.stderr);
      assert.equal(set.stdout, 'null\n');
      const get = hostlink('call', kv, 'get', '--input', `{"key":"k-${transport}"}`, '--transport', transport, '--context', 'cli', '--mode', 'oneshot');
      assert.equal(get.code, 0, get.stderr);
      assert.equal(get.stdout, '"v"\n');
    });
  }

  test('deploy prints the hash; call by hash; --json output; state lists keys and the root', () => {
    const deployed = hostlink('deploy', kv);
    assert.equal(deployed.code, 0);
    const hash = deployed.stdout.trim();
    assert.match(hash, /^[0-9a-f]{64}$/);
    const call = hostlink('call', hash, 'get', '--input', '{"key":"k-unix"}', '--context', 'cli', '--json');
    const out = JSON.parse(call.stdout) as { result: string; value: string; applied: boolean; state_root: string };
    assert.deepEqual([out.result, out.value, out.applied], ['return', '"v"', true]);
    const state = hostlink('state', 'cli', '--json');
    const s = JSON.parse(state.stdout) as { root: string; entries: { key: string; value: string }[] };
    assert.equal(s.root, out.state_root);
    assert.ok(s.entries.some((e) => e.key === 'e:k-unix' && e.value === 'v'));
  });

  test('a failing method exits 1 and prints the error; state is unchanged', () => {
    const before = hostlink('state', 'cli').stdout;
    const r = hostlink('call', kv, 'get_result', '--input', '{"key":"nope"}', '--context', 'cli');
    assert.equal(r.code, 1);
    assert.equal(r.stdout, 'user_error: {"kind":"NotFound","data":"nope"}\n');
    assert.equal(hostlink('state', 'cli').stdout, before);
  });

  test('--limit overrides a VM limit for one call; a wrong name lists the known ones', () => {
    const r = hostlink('call', kv, 'set', '--input', '{"key":"lim","value":"v"}', '--context', 'limits', '--limit', 'max_storage_key_size=3', '--json');
    const out = JSON.parse(r.stdout) as { result: string; message: string };
    assert.equal(out.result, 'vm_error');
    assert.match(out.message, /^KeyLengthOverflow \(storage_write\)/);
    const bad = hostlink('call', kv, 'get', '--limit', 'max_nothing=1');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^hostlink: --limit: 'limits.max_nothing' is not a known limit \(known: max_memory_pages, /);
  });

  test('errors are one clear line, no stack trace unless --verbose', () => {
    const missing = hostlink('call', 'nope.wasm', 'get');
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, 'hostlink: no such file: nope.wasm: check the path, or build the contract first (hostlink build, run in the contract project, writes build/NAME.wasm)\n');
    const badJson = hostlink('call', kv, 'get', '--input', '{nope');
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /^hostlink: --input is not valid JSON/);
    assert.equal(badJson.stderr.trim().split('\n').length, 1);
    const verbose = hostlink('call', 'nope.wasm', 'get', '--verbose');
    assert.match(verbose.stderr, /\n\s+at /);
    const unknown = hostlink('frobnicate');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    const notWasm = hostlink('deploy', HOSTLINK_BIN);
    assert.equal(notWasm.stderr, `hostlink: ${HOSTLINK_BIN} is not a WebAssembly module: give the compiled contract (hostlink build, run in the contract project, writes build/NAME.wasm)\n`);
  });

  test('doctor reports the channel in use and whether the VM can run', () => {
    const r = hostlink('doctor', '--json');
    const out = JSON.parse(r.stdout) as { ready: boolean; versions: Record<string, unknown>; checks: { name: string; ok: boolean; detail: string }[] };
    assert.equal(r.code, out.ready ? 0 : 1);
    // What a node and its workers must agree on besides the protocol (messages carry both: docs/message.md).
    assert.equal(out.versions.gasSchedule, GAS_SCHEDULE_VERSION);
    assert.equal(out.versions.instrumentation, INSTRUMENTATION_VERSION);
    assert.ok(out.ready, 'this machine can run the VM');
    const inUse = out.checks.find((c) => c.name === 'VM channel in use');
    assert.ok(inUse && ['native', 'js'].includes(inUse.detail));
  });

  test('every command has --help', () => {
    for (const cmd of ['call', 'deploy', 'state', 'demo', 'vm', 'doctor']) {
      const r = hostlink(cmd, '--help');
      assert.equal(r.code, 0, cmd);
      assert.match(r.stdout, /^usage: hostlink /, cmd);
    }
    assert.match(hostlink('--help').stdout, /commands:/);
  });
});
