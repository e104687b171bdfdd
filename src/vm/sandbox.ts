/**
 * The VM's side of its OS sandbox: what the VM does to itself once it is connected to the host and before it
 * receives any untrusted byte. The host (src/host/sandbox/) prepares everything that must happen before Node
 * starts (uid, namespaces, limits, cgroup, launcher) and tells the VM its mode through the environment.
 *
 *   0. with a launcher that joins the cgroups after the fork (pid namespace): wait for its word "y" on the
 *      descriptor HOSTLINK_CGROUP_READY_FD names (3), then close it. End-of-file or any other byte: the VM is
 *      not inside its bounds, so it stops (sandbox_unavailable) before it says hello.
 *   1. close every descriptor above stderr that is not close-on-exec: those were inherited, never opened by
 *      Node (libuv opens everything close-on-exec), e.g. the host's LMDB file. Works without the C compiler.
 *   2. no_new_privs, a lifeline thread that ends the VM when the host's end of stderr closes (the host died,
 *      even while a wasm loop holds the main thread), and the seccomp allow-list on every thread (native addon).
 *   3. without the addon ('best-effort' only): a worker thread that ends the VM when its parent changes.
 */
import { closeSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { isMainThread, Worker } from 'node:worker_threads';
import { HostlinkError } from '../errors.js';
import { sandboxAddon } from './sandbox-native.js';

export type SandboxMode = 'required' | 'best-effort' | 'off';
export const SANDBOX_MODES: readonly SandboxMode[] = ['required', 'best-effort', 'off'];

/** Environment the host sets for its VMs (the VM's environment is otherwise scrubbed). */
export const SANDBOX_ENV = {
  mode: 'HOSTLINK_SANDBOX',
  /** The host's pid: the parent a VM must die with. */
  hostPid: 'HOSTLINK_HOST_PID',
  /** A descriptor whose other end the host holds (stderr): its hang-up means the host is gone. */
  lifelineFd: 'HOSTLINK_LIFELINE_FD',
  /** Set when a launcher armed PR_SET_PDEATHSIG: no watchdog thread is needed. */
  deathSignal: 'HOSTLINK_DEATH_SIGNAL',
  /** Set by the launcher (native/hostlink_launch.c) when its relay joins the cgroups for the VM: the descriptor of its word. */
  cgroupReadyFd: 'HOSTLINK_CGROUP_READY_FD',
} as const;

/**
 * Blocks until the launcher's relay has moved this process into its cgroups (one byte "y" on the descriptor
 * the launcher names), then closes that descriptor. Nothing to wait for without the variable. Throws
 * sandbox_unavailable when the relay reports no success (end-of-file: it could not join, its reason is on
 * stderr), so that a VM outside its bounds never handles a byte from the host.
 */
export function awaitCgroupJoin(env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env[SANDBOX_ENV.cgroupReadyFd];
  if (raw === undefined) return false;
  const fd = Number(raw);
  if (!Number.isInteger(fd) || fd < 3) throw new HostlinkError('sandbox_unavailable', `${SANDBOX_ENV.cgroupReadyFd}=${raw} is not a descriptor above stderr: start VMs through the Hostlink launcher`);
  const buf = Buffer.alloc(1);
  let got = 0;
  try {
    for (;;) {
      try {
        got = readSync(fd, buf, 0, 1, null);
        break;
      } catch (e) {
        if ((e as { code?: unknown }).code !== 'EINTR' && (e as { code?: unknown }).code !== 'EAGAIN') throw e;
      }
    }
  } catch (e) {
    throw new HostlinkError('sandbox_unavailable', `could not read the launcher's cgroup word on descriptor ${fd}: ${(e as Error).message}`);
  } finally {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
  if (got !== 1 || buf[0] !== 0x79) {
    throw new HostlinkError('sandbox_unavailable', 'the launcher could not move this VM into its cgroups (its reason is on stderr): stopping before any work');
  }
  return true;
}

export function isSandboxMode(s: string): s is SandboxMode {
  return (SANDBOX_MODES as readonly string[]).includes(s);
}

/** What enterSandbox did, for the self-test and diagnostics. */
export interface VmSandboxReport {
  mode: SandboxMode;
  closedDescriptors: number[];
  seccomp: boolean;
  lifeline: 'thread' | 'watchdog' | 'none';
  /** Why a layer is missing (best-effort). */
  missing: string[];
  /** The launcher's relay joined the cgroups after the fork and this VM waited for its word. */
  cgroupJoined: boolean;
}

const O_CLOEXEC = 0o2000000;

/** Closes inherited descriptors (> 2, not close-on-exec). Linux only; elsewhere there is nothing to read. */
export function closeInheritedDescriptors(): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return [];
  }
  const closed: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!(fd > 2)) continue;
    let flags: number;
    try {
      const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (!m) continue;
      flags = parseInt(m[1]!, 8);
    } catch {
      continue; // the directory listing's own descriptor, already gone
    }
    if ((flags & O_CLOEXEC) === 0) {
      try {
        closeSync(fd);
        closed.push(fd);
      } catch {
        // already closed
      }
    }
  }
  return closed;
}

/**
 * Ends the VM when its parent process changes (the host died and the VM was re-parented): the fallback when
 * the addon is missing. A worker thread, so it runs while a wasm loop holds the main thread.
 */
function startWatchdog(): void {
  const parent = process.ppid;
  const code = `
    const { readFileSync } = require('node:fs');
    const { workerData } = require('node:worker_threads');
    const ppid = () => Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[1]);
    setInterval(() => { try { if (ppid() !== workerData) process.kill(process.pid, 'SIGKILL'); } catch {} }, 200);`;
  const w = new Worker(code, { eval: true, workerData: parent });
  w.unref();
}

let entered: VmSandboxReport | undefined;

/**
 * Applies the in-process layers once. Mode 'required' throws HostlinkError('sandbox_unavailable') when the
 * addon cannot install them; 'best-effort' says on stderr what is missing and carries on.
 */
export function enterSandbox(env: NodeJS.ProcessEnv = process.env): VmSandboxReport {
  if (entered) return entered;
  // A VM thread (launcher 'thread') shares the host's process: closing descriptors or installing seccomp there
  // would act on the node itself. Such a VM has no sandbox by design; it must never get here.
  if (!isMainThread) throw new HostlinkError('internal', 'enterSandbox called in a worker thread: a VM thread runs without a sandbox (launcher thread needs sandbox off)');
  // First: the cgroup word (its descriptor is inherited on purpose, so it must be read before the sweep below).
  const cgroupJoined = awaitCgroupJoin(env);
  const raw = env[SANDBOX_ENV.mode] ?? 'best-effort';
  const mode: SandboxMode = isSandboxMode(raw) ? raw : 'required'; // an unknown word never weakens the sandbox
  const report: VmSandboxReport = { mode, closedDescriptors: closeInheritedDescriptors(), seccomp: false, lifeline: 'none', missing: [], cgroupJoined };
  if (mode === 'off') return (entered = report);
  const lifelineFd = env[SANDBOX_ENV.lifelineFd] !== undefined ? Number(env[SANDBOX_ENV.lifelineFd]) : -1;
  const { addon, reason } = sandboxAddon();
  // Node opens stdout/stderr lazily, probing the descriptor's type with calls the filter refuses: open them now.
  void process.stdout;
  void process.stderr;
  if (addon) {
    try {
      addon.install(Number.isInteger(lifelineFd) ? lifelineFd : -1);
      report.seccomp = true;
      if (lifelineFd >= 0) report.lifeline = 'thread';
    } catch (e) {
      report.missing.push(`seccomp: ${(e as Error).message}`);
    }
  } else {
    report.missing.push(`seccomp: ${reason}`);
  }
  if (report.missing.length > 0) {
    if (mode === 'required') {
      throw new HostlinkError('sandbox_unavailable', `sandbox required but ${report.missing.join('; ')}`);
    }
    // No warning here: the host reported the missing layers once (a VM's stderr ends up in crash reports).
    if (process.platform === 'linux' && env[SANDBOX_ENV.deathSignal] !== '1') {
      startWatchdog();
      report.lifeline = 'watchdog';
    }
  }
  return (entered = report);
}
