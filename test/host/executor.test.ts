/**
 * The executor's rules hold for any Launcher, not only the local-process one the Host picks: here launchers of
 * other kinds (one that cannot start VMs, one that wraps real VM processes as a remote worker would hand them
 * out) run pool and one-shot jobs through the same deadline, crash and start-failure rules.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { HostlinkError } from '../../src/errors.js';
import { Executor } from '../../src/host/executor/executor.js';
import { Job } from '../../src/host/job.js';
import type { Launcher, VmHandle, VmRole } from '../../src/host/launcher.js';
import { processLauncher } from '../../src/host/supervisor.js';
import { contract, MemoryBackend, message } from '../helpers.js';

const FAKE_VM = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'fake-vm.js');
const backend = new MemoryBackend();
const kv = backend.deploy(contract('kv-store'));
const job = (): Job => new Job(message({ codeHash: kv, method: 'get' }));
const ROLES: VmRole[] = ['pool', 'oneshot'];
const executor = (launcher: Launcher, role: VmRole, startTimeoutMs?: number): Executor =>
  new Executor(backend, launcher, { role, size: role === 'pool' ? 1 : Infinity, killGraceMs: 100, ...(startTimeoutMs !== undefined ? { startTimeoutMs } : {}) });

/**
 * Real VM processes of the fake VM, handed out as a remote launcher would (after `delayMs`: a worker's slot that
 * takes a while to free up); counts what the executor asks.
 */
function remoteLike(mode: string, delayMs = 0): Launcher & { launched: VmRole[]; stopped: number } {
  const local = processLauncher({ transport: 'unix', command: [process.execPath, FAKE_VM, mode] });
  const self = {
    kind: 'remote' as const,
    launched: [] as VmRole[],
    stopped: 0,
    async launch(role: VmRole): Promise<VmHandle> {
      self.launched.push(role);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      const vm = await local.launch(role);
      const stop = vm.stop.bind(vm);
      return Object.assign(vm, { stop: (grace: number) => (self.stopped++, stop(grace)) });
    },
  };
  return self;
}

describe('executor over any launcher', () => {
  for (const role of ROLES) {
    test(`${role}: a launcher that cannot start a VM fails the job with its reason`, async () => {
      const refusing: Launcher = { kind: 'runtime', launch: () => Promise.reject(new HostlinkError('vm_crash', 'no runtime registered')) };
      const ex = executor(refusing, role);
      const end = await ex.submit(job(), 60_000);
      assert.deepEqual(end, { kind: 'crash', crash: { exitCode: null, signal: null, stderr: 'could not start a VM process: no runtime registered' } });
      assert.deepEqual(ex.pids(), []);
      await ex.close();
    });

    test(`${role}: the deadline stops the VM through its handle, whoever launched it`, async () => {
      const launcher = remoteLike('take-hold');
      const ex = executor(launcher, role);
      const end = await ex.submit(job(), 300);
      assert.deepEqual(end, { kind: 'timeout' });
      assert.deepEqual(launcher.launched, [role], 'one VM, launched for its role');
      assert.equal(launcher.stopped, 1, "the job's VM is stopped at its deadline");
      await ex.close(200);
    });

    test(`${role}: the deadline counts from when a VM takes the job, not while the job waits for one`, async () => {
      // The launch takes longer than the whole deadline: counted from submission, the job timed out before any VM
      // saw it (on a busy node, not on an idle one).
      const launcher = remoteLike('take-hold', 700);
      const ex = executor(launcher, role);
      const submitted = performance.now();
      const end = await ex.submit(job(), 300);
      const took = performance.now() - submitted;
      assert.deepEqual(end, { kind: 'timeout' });
      assert.ok(took >= 950, `the job ended ${Math.round(took)} ms after submission: its deadline ran while it waited for a VM`);
      assert.equal(launcher.stopped, 1);
      await ex.close(200);
    });

    test(`${role}: a VM that never asks for work does not start the deadline; the start timeout ends the job as a crash`, async () => {
      const launcher = remoteLike('hello-only');
      const ex = executor(launcher, role, 300);
      const end = await ex.submit(job(), 50);
      assert.equal(end.kind, 'crash', JSON.stringify(end));
      await ex.close(200);
    });

    test(`${role}: a VM that dies mid-execution is a crash with its exit code and stderr`, async () => {
      const ex = executor(remoteLike('lie-pid'), role); // takes its job, then exits with code 7
      const end = await ex.submit(job(), 60_000);
      assert.equal(end.kind, 'crash');
      assert.equal(end.kind === 'crash' && end.crash.exitCode, 7);
      await ex.close(200);
    });
  }
});
