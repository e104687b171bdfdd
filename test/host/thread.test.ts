/**
 * The thread launcher (launcher 'thread'): VMs as worker threads of the host process, behind the same executor.
 * Through Host: the kv-store in pool and one-shot mode; a deadline ends an infinite WebAssembly loop in a thread
 * (worker.terminate) with `timeout`, state unchanged, and the host keeps serving; the Host refuses the launcher
 * unless the sandbox is off. Through the executor with misbehaving VM threads: an uncaught error, process.exit
 * and a full V8 heap in the thread end only that thread, as a crash with what it said, and the host goes on.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Executor } from '../../src/host/executor/executor.js';
import { Host, type Outcome } from '../../src/host/host.js';
import { Job } from '../../src/host/job.js';
import { launchThreadVm, threadLauncher } from '../../src/host/thread-launcher.js';
import { contract, contractPath, id32, MemoryBackend, message, tempDir, text, utf8 } from '../helpers.js';
import { cliIn } from '../cli/run-cli.js';

const UNLIMITED_GAS = 1n << 62n;
/** Deadlines of tests that are not about them: starting a VM on a loaded machine can take seconds. */
const SLOW_OK = 60_000;
const json = (o: unknown): Uint8Array => utf8(JSON.stringify(o));
const value = (o: Outcome): string => {
  assert.equal(o.result.code, 'return', JSON.stringify(o.result));
  return text((o.result as { value: Uint8Array }).value);
};

describe('Host with launcher thread', () => {
  const dir = tempDir();
  let host: Host;
  let kv: Uint8Array;
  const ctx = id32('thread');

  before(async () => {
    host = await Host.open({ dataDir: dir.path, launcher: 'thread', sandbox: 'off', poolSize: 1, killGraceMs: 200, deadlineMs: SLOW_OK });
    kv = await host.deploy(contract('kv-store'));
  });
  after(async () => {
    await host.close();
    dir.remove();
  });

  for (const mode of ['pool', 'oneshot'] as const) {
    test(`${mode}: the kv-store sets and gets, in a thread of this process`, async () => {
      const launched: number[] = [];
      const onLaunch = (e: { pid: number }): void => void launched.push(e.pid);
      host.events.on('vm.launched', onLaunch);
      try {
        const set = await host.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: 'v' }), contextId: ctx, mode });
        assert.equal(value(set), 'null');
        const get = await host.call({ codeHash: kv, method: 'get', input: json({ key: 'k' }), contextId: ctx, mode });
        assert.equal(value(get), '"v"');
        assert.deepEqual(host.state(ctx).root, set.stateRoot);
      } finally {
        host.events.off('vm.launched', onLaunch);
      }
      assert.ok(launched.length >= (mode === 'oneshot' ? 2 : 0));
      assert.ok(launched.every((pid) => pid === process.pid), 'a VM thread has the host pid');
    });
  }

});

describe('Host with launcher thread: deadlines', () => {
  for (const mode of ['pool', 'oneshot'] as const) {
    test(`${mode}: a deadline ends an infinite loop in the thread with timeout, state unchanged, and the host keeps serving`, async () => {
      const dir = tempDir();
      // A host of its own: the only VM thread it has when the call ends is the looping one.
      const host = await Host.open({ dataDir: dir.path, launcher: 'thread', sandbox: 'off', mode, poolSize: 1, killGraceMs: 200, deadlineMs: SLOW_OK });
      try {
        const [kv, hold] = [await host.deploy(contract('kv-store')), await host.deploy(contract('hold'))];
        const ctx = id32(`thread-deadline-${mode}`);
        await host.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: 'v' }), contextId: ctx });
        await waitFor(() => host.vmPids().length === (mode === 'pool' ? 1 : 0));
        const before = host.state(ctx);
        const o = await host.call({ codeHash: hold, method: 'write_then_loop', contextId: ctx, deadlineMs: 800, gasLimit: UNLIMITED_GAS });
        assert.deepEqual(o.result, { code: 'internal_error', message: 'timeout', fingerprint: null });
        assert.equal(o.applied, false);
        assert.deepEqual(host.state(ctx), before);
        // The looping thread ends (terminated): the host would otherwise keep a spinning thread per timed-out call.
        await waitFor(() => host.vmPids().length === 0);
        for (let i = 0; i < 2; i++) {
          assert.equal(value(await host.call({ codeHash: kv, method: 'get', input: json({ key: 'k' }), contextId: ctx })), '"v"');
        }
      } finally {
        await host.close();
        dir.remove();
      }
    });
  }
});

describe('Host refuses launcher thread without sandbox off', () => {
  for (const sandbox of [undefined, 'required', 'best-effort'] as const) {
    test(`sandbox ${sandbox ?? 'unset (default)'}`, async () => {
      const saved = process.env.HOSTLINK_SANDBOX;
      delete process.env.HOSTLINK_SANDBOX; // the default, not whatever the suite runs with
      try {
        await assert.rejects(
          Host.open({ launcher: 'thread', ...(sandbox !== undefined ? { sandbox } : {}) }),
          (e: Error & { code?: string }) =>
            e.code === 'usage' && e.message === "launcher 'thread' runs VMs inside the host process without an OS sandbox: it needs sandbox 'off' (--launcher thread --sandbox off)",
        );
      } finally {
        if (saved !== undefined) process.env.HOSTLINK_SANDBOX = saved;
      }
    });
  }

  test('a launcher other than process is refused beside workers, which run every VM themselves', async () => {
    const workers = { listen: '127.0.0.1:0', tls: { cert: '/nonexistent/c', key: '/nonexistent/k', ca: '/nonexistent/ca' } };
    for (const launcher of ['runtime', 'thread'] as const) {
      await assert.rejects(
        Host.open({ launcher, sandbox: 'off', workers }),
        (e: Error & { code?: string }) => e.code === 'usage' && e.message.includes(`launcher '${launcher}' cannot be combined with workers`),
      );
    }
  });

  test('HOSTLINK_SANDBOX=off counts as switched off', async () => {
    const saved = process.env.HOSTLINK_SANDBOX;
    process.env.HOSTLINK_SANDBOX = 'off';
    try {
      const host = await Host.open({ launcher: 'thread' });
      await host.close();
    } finally {
      if (saved === undefined) delete process.env.HOSTLINK_SANDBOX;
      else process.env.HOSTLINK_SANDBOX = saved;
    }
  });
});

describe('a VM thread that fails ends only itself', () => {
  const backend = new MemoryBackend();
  const kv = backend.deploy(contract('kv-store'));
  const entry = (name: string): URL => new URL(`./thread-vm-${name}.js`, import.meta.url);
  const cases = [
    { name: 'throw', exitCode: 1, stderr: /deliberate VM thread failure/ },
    { name: 'exit', exitCode: 9, stderr: /^$/ },
    { name: 'oom', exitCode: 1, stderr: /out of memory/i },
  ];
  for (const c of cases) {
    for (const role of ['pool', 'oneshot'] as const) {
      test(`${role}: ${c.name} mid-call is a crash with the thread's exit code and message; the host goes on`, async () => {
        const launcher = threadLauncher({ transport: 'unix', entry: entry(c.name), heapMb: 32 });
        const ex = new Executor(backend, launcher, { role, size: role === 'pool' ? 1 : Infinity, killGraceMs: 100 });
        try {
          const end = await ex.submit(new Job(message({ codeHash: kv, method: 'get' })), SLOW_OK);
          assert.equal(end.kind, 'crash', JSON.stringify(end, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)));
          if (end.kind !== 'crash') return;
          assert.equal(end.crash.exitCode, c.exitCode);
          assert.equal(end.crash.signal, null);
          assert.match(end.crash.stderr, c.stderr);
        } finally {
          await ex.close(200);
        }
        // This process (the host) is alive and a real VM thread still runs calls.
        const good = new Executor(backend, threadLauncher({ transport: 'unix' }), { role, size: 1, killGraceMs: 100 });
        try {
          const end = await good.submit(new Job(message({ codeHash: kv, method: 'get', input: json({ key: 'x' }) })), SLOW_OK);
          assert.equal(end.kind, 'result', JSON.stringify(end, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)));
        } finally {
          await good.close(200);
        }
      });
    }
  }

  test('the thread gets no stdin, no environment but PATH, no arguments, and reports the host pid', async () => {
    const vm = await launchThreadVm({ transport: 'tcp', entry: entry('probe') }, 'oneshot');
    assert.equal(vm.pid, process.pid);
    assert.deepEqual(await vm.exited, { exitCode: 0, signal: null });
    assert.deepEqual(JSON.parse(vm.stderrTail()), { env: ['PATH'], stdinBytes: 0, pid: process.pid, argv: [] });
    await assert.rejects(vm.connection, /the VM thread ended before connecting/);
  });
});

describe('the CLI and the guards', () => {
  test('enterSandbox refuses to run in a VM thread (it would close the host\'s descriptors and filter its syscalls)', async () => {
    const vm = await launchThreadVm({ transport: 'unix', entry: new URL('./thread-vm-sandbox.js', import.meta.url) }, 'oneshot');
    assert.deepEqual(await vm.exited, { exitCode: 0, signal: null }, vm.stderrTail());
    assert.match(vm.stderrTail(), /^enterSandbox called in a worker thread/);
  });

  test('the spare VM thread never keeps the host process alive', () => {
    const launcher = new URL('../../src/host/thread-launcher.js', import.meta.url).href;
    // Launches one VM (a spare is started behind it), lets it end, and never closes the launcher.
    const script = `const { threadLauncher } = await import(${JSON.stringify(launcher)});
      const vm = await threadLauncher({ transport: 'unix' }).launch('oneshot');
      (await vm.connection).destroy();
      await vm.exited;`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: SLOW_OK });
    assert.equal(r.signal, null, 'the process had to be killed: something kept it alive');
    assert.equal(r.status, 0, r.stderr);
  });

  test('hostlink call --launcher thread --sandbox off runs in a thread; without --sandbox off it is refused', () => {
    const dir = tempDir();
    try {
      const { run } = cliIn(dir.path);
      const kv = contractPath('kv-store');
      const set = run('call', kv, 'set', '--input', '{"key":"k","value":"v"}', '--context', 'cli', '--launcher', 'thread', '--sandbox', 'off');
      assert.equal(set.code, 0, set.stderr);
      const get = run('call', kv, 'get', '--input', '{"key":"k"}', '--context', 'cli', '--launcher', 'thread', '--sandbox', 'off', '--mode', 'oneshot', '--json');
      assert.equal(get.code, 0, get.stderr);
      assert.match(get.stdout, /\\"v\\"|"v"/);
      const refused = run('call', kv, 'get', '--input', '{"key":"k"}', '--context', 'cli', '--launcher', 'thread', '--sandbox', 'best-effort');
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /launcher 'thread' runs VMs inside the host process without an OS sandbox: it needs sandbox 'off' \(--launcher thread --sandbox off\)/);
      const bad = run('call', kv, 'get', '--launcher', 'fiber');
      assert.match(bad.stderr, /--launcher must be process, runtime or thread/);
    } finally {
      dir.remove();
    }
  });
});

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}
