/**
 * What the command line says when something is wrong, as a contract author meets it (real `hostlink` processes, a data
 * directory on disk, real VMs): missing and non-WebAssembly files, limits that stop a call (gas, handing the
 * result over, the deadline) with how to raise them, a data directory owned by a running serve, view, codes
 * and contexts through that serve, an empty context, `new` over a file, and each command's own help.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { contractPath, ROOT, tempDir } from '../helpers.js';
import { startServe, type ServeProcess } from '../server/serve-process.js';
import { cliIn } from './run-cli.js';
import { call, Probe } from '../node/probe.js';

const dir = tempDir('hostlink-ux-');
const { run: hostlink } = cliIn(dir.path);
const kv = contractPath('kv-store');
const misbehave = contractPath('misbehave');

describe('hostlink CLI: errors that say what happened and what to do', () => {
  after(() => dir.remove());

  test('a contract argument that looks like a path and does not exist is a missing file', () => {
    for (const command of ['call', 'view']) {
      const r = hostlink(command, 'build/nope.wasm', 'add');
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, 'hostlink: no such file: build/nope.wasm: check the path, or build the contract first (hostlink build, run in the contract project, writes build/NAME.wasm)\n');
    }
    const inspected = hostlink('inspect', 'nope.wasm');
    assert.match(inspected.stderr, /^hostlink: no such file: nope\.wasm: /);
    const deployed = hostlink('deploy', 'sub/nope.wasm');
    assert.match(deployed.stderr, /^hostlink: no such file: sub\/nope\.wasm: /);
    // Neither a path nor a hash: the old wording, with what to give instead.
    assert.match(hostlink('call', 'nope', 'add').stderr, /^hostlink: nope is neither a file nor a 64-character code hash: give the contract's \.wasm file/);
  });

  test('every wrong argument exits 2, whatever is wrong with it: missing, a directory, a bad method name; nothing runs', () => {
    // A missing file exited 1 where a directory exited 2, `check` said only "does not exist", a missing build
    // folder was called "not a directory", and a method name the VM refuses started a VM (13,800 gas, exit 1).
    const missingFile = /^hostlink: no such file: nope\.wasm: check the path, or build the contract first/;
    const cases: [string[], RegExp][] = [
      [['check', 'nope.wasm'], missingFile],
      [['check', dir.path], /is a directory/],
      [['deploy', 'nope.wasm'], missingFile],
      [['deploy', dir.path], /is a directory/],
      [['inspect', 'nope.wasm'], missingFile],
      [['call', 'nope.wasm', 'get'], missingFile],
      [['view', 'nope.wasm', 'get'], missingFile],
      [['call', 'nope', 'get'], /^hostlink: nope is neither a file nor a 64-character code hash/],
      [['call', kv, 'get', '--input', '@no-such-input'], /^hostlink: input file no-such-input does not exist\n$/],
      [['call', kv, 'get', '--input', `@${dir.path}`], /^hostlink: input file .* is a directory\n$/],
      [['build', 'no-such-project'], /^hostlink: no-such-project does not exist: give the contract project's folder/],
      [['build', kv], /is not a directory: give the contract project's folder/],
      [['call', kv, 'bad name!'], /^hostlink: METHOD "bad name!" is not a method name: method names are 1-256 ASCII letters, digits or _; hostlink inspect CONTRACT lists a contract's methods\n$/],
      [['view', kv, ''], /^hostlink: METHOD "" is not a method name/],
      [['call', kv, 'a'.repeat(257)], /is not a method name: method names are 1-256/],
    ];
    for (const [args, stderr] of cases) {
      const r = hostlink(...args);
      assert.equal(r.code, 2, `${args.join(' ').slice(0, 100)}: ${r.stderr}`);
      assert.match(r.stderr, stderr, args.join(' ').slice(0, 100));
      assert.equal(r.stdout, '', 'nothing ran');
    }
    // A raised max_method_name_length admits a longer name: the VM runs it and the contract has no such method.
    const longer = hostlink('call', kv, 'a'.repeat(257), '--limit', 'max_method_name_length=300');
    assert.equal(longer.code, 1, longer.stderr);
    assert.match(longer.stdout, /^vm_error: method_not_found/);
    // `check` answers whether a module would be refused: a refused one is its answer (exit 1), not a wrong argument.
    writeFileSync(join(dir.path, 'garbage.wasm'), 'garbage');
    assert.equal(hostlink('check', 'garbage.wasm').code, 1);
  });

  test('a file that is not WebAssembly is named, with how to get the compiled contract', () => {
    const pkg = join(ROOT, 'package.json');
    for (const args of [['call', pkg, 'add'], ['deploy', pkg]]) {
      const r = hostlink(...args);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, `hostlink: ${pkg} is not a WebAssembly module: give the compiled contract (hostlink build, run in the contract project, writes build/NAME.wasm)\n`);
    }
    assert.doesNotMatch(hostlink('call', pkg, 'add').stderr, /examples\//);
    // WebAssembly's header, then garbage: the deploy's own check refuses it, and the command names the file.
    writeFileSync(join(dir.path, 'broken.wasm'), Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0xff));
    assert.equal(hostlink('deploy', 'broken.wasm').stderr, 'hostlink: broken.wasm is not a valid WebAssembly module: deploy the compiled contract (.wasm), not its source\n');
  });

  test('--gas out of range names the range in the option\'s words', () => {
    for (const bad of ['99999999999999999999', '9223372036854775808', '-1', '1e9']) {
      const r = hostlink('call', kv, 'get', '--gas=' + bad);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /^hostlink: --gas must be an integer from 0 to 9223372036854775807 \(got "/, bad);
    }
  });

  test('out_of_gas says which limit was used up and how to raise it; a result too large to hand over says so', () => {
    const loop = hostlink('call', misbehave, 'loop_forever', '--gas', '1000000');
    assert.equal(loop.code, 1);
    assert.equal(loop.stdout, 'vm_error: out_of_gas\n');
    assert.match(loop.stderr, /gas 1000000;/);
    assert.match(loop.stderr, /\n {2}hint: the call used up its gas limit of 1000000 \(a method that never ends stops this way too\): raise it with --gas N \(at most 9223372036854775807\)\n$/);
    // 1 MiB returned: the method finishes well within 1e8, but handing the value over costs 200 gas per byte.
    const big = hostlink('call', misbehave, 'big_return', '--gas', '100000000');
    assert.equal(big.stdout, 'vm_error: out_of_gas\n');
    assert.match(big.stderr, /\n {2}hint: the method finished, but handing its result and changes to the host costs 200 gas per byte \(handed_to_host\) and the call's limit of 100000000 gas could not pay for them: return less, or raise the limit with --gas N/);
  });

  test('a timeout names the deadline and --deadline, and does not show gas 0 as measured', () => {
    const r = hostlink('call', misbehave, 'loop_forever', '--gas', '1000000000000000', '--deadline', '400');
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, 'internal_error: timeout\n');
    assert.match(r.stderr, /state unchanged; gas not reported \(the VM was stopped at the deadline\);/);
    assert.doesNotMatch(r.stderr, /gas 0/);
    assert.match(r.stderr, /\n {2}hint: the call ran past its deadline of 400 ms and its VM was stopped .*: raise it with --deadline MS \(at most \d+\)\n$/);
  });

  test('state of a context without state exits 0 with a note on where contexts with state are listed', () => {
    hostlink('call', kv, 'set', '--input', '{"key":"a","value":"b"}'); // the data directory exists
    const r = hostlink('state', 'nosuch');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /\n {2}\(empty\)\n$/);
    assert.equal(r.stderr, 'note: this context has no state (a mistyped name shows the same): hostlink contexts lists the contexts with state\n');
    assert.equal(hostlink('state', 'default').stderr, '', 'no note for a context with state');
  });

  test('new over a regular file is a usage error', () => {
    writeFileSync(join(dir.path, 'afile'), 'x');
    const r = hostlink('new', 'afile');
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `hostlink: ${join(dir.path, 'afile')} already exists and is not a folder: choose another NAME or --dir\n`);
  });

  test('each command\'s help lists only its own options', () => {
    const view = hostlink('view', '--help').stdout;
    assert.doesNotMatch(view, /--view|--validators|applies the result|Options:\n\n/);
    for (const o of ['--input', '--gas', '--server', '--datetime', '--deadline', '--sandbox']) assert.ok(view.includes(o), `view --help has ${o}`);
    assert.match(hostlink('view', kv, 'get', '--validators', '2').stderr, /^hostlink: unknown option --validators for hostlink view/);
    for (const command of ['inspect', 'contexts', 'codes', 'state', 'deploy']) {
      const help = hostlink(command, '--help').stdout;
      for (const vmOption of ['--transport', '--mode', '--launcher', '--deadline', '--sandbox']) assert.ok(!help.includes(vmOption), `${command} --help lists ${vmOption}`);
      assert.ok(help.includes('--data-dir'), `${command} --help has --data-dir`);
    }
    for (const vmOption of ['--transport', '--mode', '--launcher', '--deadline', '--sandbox']) assert.ok(hostlink('call', '--help').stdout.includes(vmOption));
  });
});

describe('hostlink CLI beside a running serve', () => {
  const dataDir = join(dir.path, 'served');
  let serve: ServeProcess;
  let hash: string;

  before(async () => {
    serve = await startServe(['--data-dir', dataDir]);
    const deployed = hostlink('deploy', kv, '--server', serve.url);
    assert.equal(deployed.code, 0, deployed.stderr);
    hash = deployed.stdout.trim();
  });
  after(async () => {
    await serve.stop();
  });

  test('a command on its data directory names the serve and --server URL at once', () => {
    const started = Date.now();
    for (const args of [['call', kv, 'get', '--input', '{"key":"a"}'], ['state', 'default'], ['codes']]) {
      const r = hostlink(...args, '--data-dir', dataDir);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(
        r.stderr,
        `hostlink: data directory ${dataDir} is owned by hostlink serve (process ${serve.child.pid}, ${serve.url}): send this command through it with --server ${serve.url} (or HOSTLINK_SERVER=${serve.url}), or stop it first\n`,
      );
    }
    assert.ok(Date.now() - started < 20_000, 'no wait for a serve to finish');
    const inspect = hostlink('inspect', hash, '--data-dir', dataDir);
    assert.match(inspect.stderr, /owned by hostlink serve .*: stop it first \(this command has no --server\)/);
  });

  test('view --server runs through the node\'s view endpoint and applies nothing', () => {
    const viewed = hostlink('view', hash, 'set', '--input', '{"key":"v","value":"1"}', '--server', serve.url, '--json');
    assert.equal(viewed.code, 0, viewed.stderr);
    const out = JSON.parse(viewed.stdout) as { result: string; applied: boolean };
    assert.deepEqual([out.result, out.applied], ['return', false]);
    const text = hostlink('view', hash, 'set', '--input', '{"key":"v","value":"1"}', '--server', serve.url);
    assert.match(text.stderr, /view: not applied \(\d+ change\(s\) discarded\)/);
    assert.equal(hostlink('call', hash, 'get', '--input', '{"key":"v"}', '--server', serve.url).stdout, 'null\n');
    // Only the options that really run locally are refused, each by name.
    const seeded = hostlink('view', hash, 'get', '--seed', 'name:s', '--server', serve.url);
    assert.equal(seeded.code, 2);
    assert.equal(seeded.stderr, 'hostlink: --seed runs only on this machine, not through a node: drop --server (or HOSTLINK_SERVER) to use it\n');
  });

  test('codes and contexts --server list what the node holds', () => {
    hostlink('call', hash, 'set', '--input', '{"key":"a","value":"b"}', '--context', 'listed', '--server', serve.url);
    const codes = hostlink('codes', '--server', serve.url, '--json');
    assert.equal(codes.code, 0, codes.stderr);
    const listed = JSON.parse(codes.stdout) as { code_hash: string; methods: string[] }[];
    assert.deepEqual(listed.map((c) => c.code_hash), [hash]);
    assert.ok(listed[0]!.methods.includes('set'));
    const contexts = hostlink('contexts', '--server', serve.url);
    assert.equal(contexts.code, 0, contexts.stderr);
    assert.match(contexts.stdout, /^[0-9a-f]{64} {2}root [0-9a-f]{16}…/m);
  });
});

test('hostlink call exits 3 when the method returned but a follow-up ended by a node failure, and says so', async () => {
  // `go` writes, then emits a handler that loops until its deadline (its gas is unlimited) and one after it:
  // the tree halts at the first. Exit 0 told a script the call was whole while this node's state was not.
  const p = new Probe();
  const emit = (handler: string): string => call('emit_with_handler', p.descriptors('kind', ''), p.buf(handler));
  p.method('go', `(drop ${call('storage_write', p.buf('go'), p.buf('applied'), 0)}) ${emit('spin')} ${emit('after')} ${call('ret_i64', 0)}`);
  p.method('spin', '(loop $l (br $l))');
  p.method('after', call('ret_i64', 1));
  const dir = tempDir();
  try {
    writeFileSync(join(dir.path, 'halts.wasm'), await p.build());
    const r = cliIn(dir.path).run('call', 'halts.wasm', 'go', '--gas', String(10n ** 15n), '--deadline', '1000');
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /follow-ups halted: handler spin \(call \d+\) ended by a node failure \(internal_error timeout\); 1 later follow-up\(s\) did not run/);
  } finally {
    dir.remove();
  }
});
