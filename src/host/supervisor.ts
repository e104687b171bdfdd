/**
 * Launching and stopping VM processes.
 *
 * Each VM process gets its own listener (a fresh unix socket path or an ephemeral TCP port on loopback) and its
 * own secret, written to its stdin pipe (never on the command line or in a file). Only a connection that proves
 * the secret in its hello gets through the gate (vm-gate.ts); anyone else who connects, another local user on
 * TCP for instance, is closed and the listener keeps waiting for the real VM. Waiting for the connection always
 * races the child's exit: a VM that dies before it dials is a crash, never a hang in accept().
 *
 * The execution message never travels on the command line either: every VM asks for it with next_message.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostlinkError } from '../errors.js';
import { newVmSecret } from '../protocol/hello-proof.js';
import { formatAddress, type HostAddress } from '../transport/address.js';
import type { ChannelImpl } from '../transport/connect.js';
import type { HostEvents } from './events.js';
import type { VmCrash } from './job.js';
import { reapWithin, type Launcher, type VmExit, type VmHandle, type VmRole } from './launcher.js';
import { createSocketDir } from './socket-dir.js';
import { prepareSandbox, type PreparedSandbox, type SandboxSetting } from './sandbox/plan.js';
import { admitVm, type Gate, type GateOptions } from './vm-gate.js';
import { vmEntryCommand } from './vm-entry.js';
import { extend } from '../extend.js';

export type Transport = 'unix' | 'tcp';

/** The `hostlink` launcher of this installation (bin/hostlink.js). */
export const HOSTLINK_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'hostlink.js');

/** The V8 flag that keeps WebAssembly in the baseline compiler (see VM_NODE_FLAGS); VM threads set it at run time. */
export const WASM_BASELINE_ONLY_FLAG = '--liftoff-only';

/**
 * Node flags for VM processes (the start-up snapshot is built with the same ones: Node refuses a blob built with
 * other V8 flags):
 * - WebAssembly compiled by V8's baseline compiler only (Liftoff: one pass, its cost bounded per function by
 *   max_compile_state_slots). V8 otherwise recompiles hot functions with its optimizing compiler on background
 *   threads, outside gas and after the call: nested loops that write many locals (a 47 KB module, 9,402 gas) made
 *   it build 1.5 GB, and four such functions 5 GB, so the same call returned under a 12 GiB VM bound and was
 *   killed under the default 3 GiB. Contract code runs slower (metered SHA-256 about 4x, a copy loop about 3x,
 *   recursive calls about 1.4x: docs/performance.md); the JavaScript of the VM itself is still optimized;
 * - a bounded heap, so a runaway VM fails fast instead of swapping the node;
 * - a 16x larger tier-up budget than V8's default (67584): a one-shot VM lives ~100 ms, and with the default budget
 *   V8 spends ~20 ms of CPU on background threads optimizing the instrumenter's loops for a process that exits
 *   right after (measured: VM CPU per cold call -15 %, the same as --no-opt). Functions that stay hot, in a pool VM
 *   or a long execution, are still optimized, only later (a pool VM returns to the default budget at its second
 *   message: tierUpForPool in src/vm/process.ts). The JIT tier never changes what a VM computes;
 * - wasm bounds checks compiled inline instead of V8's trap handler: with the trap handler every wasm memory
 *   reserves 10 GiB of address space (guard regions) that is mapped and unmapped again for each call's fresh
 *   memory, page tables included; inline checks reserve only the memory's maximum. Out-of-bounds accesses trap
 *   the same way with the same message (docs/performance.md, "The VM's CPU per pooled execution").
 */
export const VM_NODE_FLAGS: readonly string[] = [WASM_BASELINE_ONLY_FLAG, '--max-old-space-size=2048', '--interrupt-budget=1081344', '--disable-wasm-trap-handler'];

/**
 * What every VM process finds in its environment besides PATH and the sandbox's own variables; nothing else of
 * the node's environment reaches it.
 *
 * GLIBC_TUNABLES=glibc.malloc.hugetlb=1: glibc's malloc marks the memory it maps for transparent huge pages
 * (madvise). A VM starts by reading its ~6 MB start-up snapshot into one malloc'd buffer and deserializing it,
 * and on a virtual machine each 4 KiB page fault is dear: with the tunable, starting a VM from its snapshot
 * faults ~1,400 fewer pages and takes about a quarter less CPU (docs/performance.md, "VM start-up"). It changes
 * where memory comes from, never what a VM computes. glibc older than 2.35, or another C library, ignores it.
 */
export const VM_ENVIRONMENT: Readonly<Record<string, string>> = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' };

/** The version of the glibc this Node runs on, or null on another C library. */
function glibcRuntime(): string | null {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ?? null;
}

/** Where Linux says whether transparent huge pages are used: `always [madvise] never`, the bracketed one in force. */
export const THP_MODE_FILE = '/sys/kernel/mm/transparent_hugepage/enabled';

/**
 * Whether VM_ENVIRONMENT's malloc tunable takes effect here, and why not: it needs glibc 2.35 or newer (the C
 * library Node runs on; null for another one) and transparent huge pages in `always` or `madvise` mode.
 */
export function vmMallocHugePages(
  thpModeFile = THP_MODE_FILE,
  glibc: string | null = glibcRuntime(),
): { used: boolean; detail: string } {
  let mode: string | undefined;
  try {
    mode = /\[(\w+)\]/.exec(readFileSync(thpModeFile, 'utf8'))?.[1];
  } catch {
    mode = undefined;
  }
  if (glibc === null) return { used: false, detail: 'not glibc: the C library ignores GLIBC_TUNABLES; VMs start with more page faults' };
  const [major = 0, minor = 0] = glibc.split('.').map(Number);
  if (!(major > 2 || (major === 2 && minor >= 35))) return { used: false, detail: `glibc ${glibc} (needs 2.35 or newer for glibc.malloc.hugetlb); VMs start with more page faults` };
  if (mode !== 'always' && mode !== 'madvise') {
    return { used: false, detail: `transparent huge pages ${mode === undefined ? `unknown (${thpModeFile} unreadable)` : mode}; VMs start with more page faults (echo madvise > ${thpModeFile} to use them)` };
  }
  return { used: true, detail: `glibc ${glibc}, transparent huge pages ${mode}: VMs' malloc maps huge pages (fewer page faults at start-up)` };
}

export interface LaunchOptions {
  transport: Transport;
  /** Command that starts a VM; `--host ADDR` is appended, the secret goes to its stdin. Default: this installation's `hostlink vm`. */
  command?: readonly string[];
  channel?: ChannelImpl;
  /** Extra environment for the VM (the VM otherwise gets a minimal environment). */
  env?: Record<string, string>;
  /** Bounds on connections that have not proved the secret yet. */
  gate?: GateOptions;
  /** Where to report vm.launched and vm.exited. */
  events?: HostEvents;
  /** How the VM will be used, for events: a warm pool worker or one process per call. */
  role?: VmRole;
  /** The VM's OS sandbox (src/host/sandbox/plan.ts); default HOSTLINK_SANDBOX or 'required'. */
  sandbox?: SandboxSetting;
  /** With launcher 'runtime': the handshake deadline (src/runtime/launcher.ts; default 5000 ms). */
  handshakeTimeoutMs?: number;
  /** The VM's secret; default a fresh one. A remote worker passes the one the node sent (src/worker/preamble.ts). */
  secret?: Uint8Array;
}

const STDERR_TAIL_BYTES = 8 * 1024;
let socketDir: string | undefined;
let socketCounter = 0;

/** This host process's private directory for VM sockets, removed at exit (shared with src/runtime/launcher.ts). */
export function vmSocketDir(): string {
  return (socketDir ??= createSocketDir()); // also removes those of killed hosts (socket-dir.ts)
}

function socketPath(): string {
  return join(vmSocketDir(), `vm-${++socketCounter}.sock`);
}

/** A fresh private listener for one VM: a new unix socket in this host's directory, or an ephemeral loopback port. */
export function listen(transport: Transport): Promise<{ server: Server; address: HostAddress }> {
  return new Promise((resolve, reject) => {
    const server = createServer({ noDelay: true, pauseOnConnect: false });
    server.once('error', reject);
    if (transport === 'unix') {
      const path = socketPath();
      server.listen(path, () => resolve({ server, address: { kind: 'unix', path } }));
    } else {
      server.listen(0, '127.0.0.1', () => {
        const a = server.address();
        if (a === null || typeof a === 'string') return reject(new HostlinkError('internal', 'TCP listener has no port'));
        resolve({ server, address: { kind: 'tcp', host: '127.0.0.1', port: a.port } });
      });
    }
  });
}

/** A running VM process and its (single, authenticated) connection. */
export type { VmExit } from './launcher.js';

export class VmProcess implements VmHandle {
  readonly exited: Promise<VmExit>;
  /**
   * Resolves with the VM's socket once a connection proved the VM's secret (paused, its hello not yet read:
   * hand it to serveSession); rejects with a crash error if the VM exits first.
   */
  readonly connection: Promise<Socket>;
  private stderrBuf = Buffer.alloc(0);
  private exitInfo: VmExit | null = null;
  private readonly gate: Gate;

  /**
   * `gate` yields the VM's authenticated connection: admitVm on a listener the VM dials (launchVm), or the runtime
   * handshake (src/runtime/launcher.ts). It is closed when the VM exits first.
   */
  constructor(
    readonly child: ChildProcess,
    gate: Gate,
    readonly address: HostAddress,
  ) {
    this.gate = gate;
    this.connection = this.gate.connection;
    this.exited = new Promise((resolve) => {
      const ended = (exitCode: number | null, signal: string | null): void => {
        if (this.exitInfo) return;
        this.exitInfo = { exitCode, signal };
        this.gate.close(new HostlinkError('vm_crash', 'the VM exited before connecting'));
        resolve(this.exitInfo);
      };
      child.once('exit', ended);
      // A process that could not be started at all may report only 'error': it ended all the same.
      child.once('error', (e: Error) => {
        if (child.pid === undefined) {
          this.stderrBuf = Buffer.from(`could not start the VM process: ${e.message}`);
          ended(null, null);
        }
      });
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      const joined = Buffer.concat([this.stderrBuf, chunk]);
      this.stderrBuf = joined.subarray(Math.max(0, joined.length - STDERR_TAIL_BYTES));
    });
  }

  /** Connections to this VM's listener that were closed for not proving the secret. */
  get refusedConnections(): number {
    return this.gate.refused;
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get hasExited(): boolean {
    return this.exitInfo !== null;
  }

  stderrTail(): string {
    return this.stderrBuf.toString('utf8');
  }

  /** What to report when the VM ended without a result. */
  crash(): VmCrash {
    return { exitCode: this.exitInfo?.exitCode ?? null, signal: this.exitInfo?.signal ?? null, stderr: this.stderrTail() };
  }

  /** SIGTERM, then SIGKILL if the process is still there after `graceMs`. Resolves when it has exited. */
  async stop(graceMs: number): Promise<VmExit> {
    if (this.exitInfo) return this.exitInfo;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits up to `graceMs` for a voluntary exit, then stops the process. */
  async reap(graceMs: number): Promise<VmExit> {
    if (this.exitInfo) return this.exitInfo;
    return reapWithin(this, graceMs);
  }
}

/** Starts a VM process that will connect to a fresh private listener and prove a fresh secret. */
export async function launchVm(options: LaunchOptions): Promise<VmProcess> {
  // SANDBOX: refuse ('required') or warn ('best-effort') before anything exists; see src/host/sandbox/plan.ts.
  const sandbox = prepareSandbox(options.sandbox, options.transport, HOSTLINK_BIN);
  const { server, address } = await listen(options.transport);
  sandbox.grantSocket(address); // SANDBOX: only the VM's uid may connect
  const secret = options.secret ?? newVmSecret();
  // Default: Node from the VM's start-up snapshot when it is usable here, else `hostlink vm` (vm-entry.ts).
  const command = options.command ?? vmEntryCommand({ nodeFlags: VM_NODE_FLAGS }).command;
  const args = ['--host', formatAddress(address)];
  if (options.channel !== undefined) args.push('--channel', options.channel);
  let child: ChildProcess;
  try {
    child = spawnVm(sandbox, command, args, options.env ?? {}, secret);
  } catch (e) {
    server.close(); // a listener left open would keep the host process alive
    throw e;
  }
  const vm = new VmProcess(child, admitVm(server, secret, options.gate), address);
  reportLifecycle(vm, options.events, options.role);
  return vm;
}

/**
 * Spawns a VM process inside its sandbox: `command` then `args`, an environment of PATH plus `env` (plus the
 * sandbox's own variables) and nothing else from the node's, the secret written to its stdin pipe. Every local
 * launcher starts its VMs here. Throws HostlinkError('vm_crash') when the process cannot be spawned at all.
 */
export function spawnVm(sandbox: PreparedSandbox, command: readonly string[], args: readonly string[], env: Record<string, string>, secret: Uint8Array): ChildProcess {
  // SANDBOX: launcher, uid, cgroup, empty working directory around the same spawn. Stdin stays a pipe on fd 0:
  // the secret travels there, and the launcher closes every descriptor above stderr.
  let child: ChildProcess;
  try {
    child = sandbox.spawn(command[0]!, [...command.slice(1), ...args], {
      stdio: ['pipe', 'ignore', 'pipe'],
      // The VM needs nothing from the node's environment; keep secrets out of the sandbox.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...VM_ENVIRONMENT, ...env },
    });
  } catch (e) {
    throw new HostlinkError('vm_crash', `could not start the VM process: ${(e as Error).message}`);
  }
  child.on('error', () => undefined); // spawn failures surface as an exit (code null) and are reported as crashes
  // The secret goes through the stdin pipe, which only this child holds; the VM reads it to EOF before dialling.
  child.stdin?.on('error', () => undefined); // EPIPE when the VM died first: reported as its crash
  child.stdin?.end(`${Buffer.from(secret).toString('hex')}\n`);
  return child;
}

/** Reports vm.launched now and vm.exited when the VM ends. */
export function reportLifecycle(vm: VmProcess, events: HostEvents | undefined, role: 'pool' | 'oneshot' = 'pool'): void {
  if (events === undefined || vm.child.pid === undefined) return;
  const pid = vm.child.pid;
  const born = performance.now();
  events.emit('vm.launched', { pid, mode: role });
  void vm.exited.then((exit) => events.emit('vm.exited', { pid, mode: role, ...exit, lifetimeMs: performance.now() - born }));
}

/** The local-process launcher: each VM is a child process of this host, started by launchVm. */
export function processLauncher(options: Omit<LaunchOptions, 'role'>): Launcher {
  return { kind: 'process', launch: (role: VmRole) => launchVm(extend(options, { role })) };
}
