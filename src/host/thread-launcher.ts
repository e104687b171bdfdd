/**
 * The thread launcher (HostOptions.launcher 'thread'): each VM is a worker_threads Worker of the host process
 * running the same VM loop as `hostlink vm` (src/vm/thread-main.ts). It dials a fresh private listener and proves
 * a fresh secret through admitVm exactly like a VM process; the secret travels in workerData. The executor
 * treats it like any other VmHandle.
 *
 * No OS sandbox: a VM thread shares the host's process, its memory, descriptors and privileges, so a V8 escape
 * in a contract owns the node. It is for embedding and tests where that isolation is not needed; the Host
 * refuses it unless `sandbox: 'off'` (docs/security.md). What it does bound: the thread's V8 heap
 * (resourceLimits, as VM_NODE_FLAGS bound a VM process), stdin (never given), stdout/stderr (captured, not the
 * host's), its environment (PATH only), and process.exit (ends only the thread). Signals go to the host's main
 * thread, never to handlers a VM thread could install.
 *
 * pid: a thread has none of its own; its handle reports the host's pid (and so do events and busyPids()).
 * stop(grace) terminates the thread (V8 TerminateExecution, which also ends a WebAssembly infinite loop) and
 * closes the host's end of its connection, so a thread blocked reading that socket wakes up and ends too.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { HostlinkError } from '../errors.js';
import { newVmSecret } from '../protocol/hello-proof.js';
import { formatAddress } from '../transport/address.js';
import { THREAD_VM_SPARE, type ThreadVmData } from '../vm/thread-data.js';
import type { HostEvents } from './events.js';
import type { VmCrash } from './job.js';
import { reapWithin, type Launcher, type VmExit, type VmHandle, type VmRole } from './launcher.js';
import { listen, WASM_BASELINE_ONLY_FLAG, type Transport } from './supervisor.js';
import { admitVm, type Gate, type GateOptions } from './vm-gate.js';

/** The VM thread's V8 old-generation bound, in MiB: the same as a VM process's --max-old-space-size (VM_NODE_FLAGS). */
export const VM_THREAD_HEAP_MB = 2048;

const STDERR_TAIL_BYTES = 8 * 1024;
const THREAD_MAIN = new URL('../vm/thread-main.js', import.meta.url);

export interface ThreadLaunchOptions {
  transport: Transport;
  gate?: GateOptions;
  events?: HostEvents;
  /** The worker's module; default the VM loop (src/vm/thread-main.ts). Tests substitute a misbehaving VM here. */
  entry?: URL;
  /** Default VM_THREAD_HEAP_MB. */
  heapMb?: number;
  /** Keep a spare thread with the VM's modules loaded (default true; never with `entry`). */
  spare?: boolean;
}

export class ThreadVm implements VmHandle {
  readonly pid = process.pid;
  readonly connection: Promise<Socket>;
  readonly exited: Promise<VmExit>;
  private exitInfo: VmExit | null = null;
  private stderrBuf = Buffer.alloc(0);
  private socket: Socket | null = null;

  constructor(
    private readonly worker: Worker,
    private readonly gate: Gate,
  ) {
    this.connection = gate.connection;
    void this.connection.then((s) => (this.socket = s), () => undefined);
    worker.stdout.resume(); // a VM has nothing to say on stdout; never the host's
    worker.stderr.on('data', (chunk: Buffer) => this.keep(chunk));
    // An uncaught error ends the thread with exit code 1: its message is what the VM "wrote" last.
    worker.on('error', (e: Error) => this.keep(Buffer.from(`${e.message}\n`)));
    this.exited = new Promise((resolve) => {
      worker.once('exit', (exitCode: number) => {
        this.exitInfo = { exitCode, signal: null };
        this.gate.close(new HostlinkError('vm_crash', 'the VM thread ended before connecting'));
        resolve(this.exitInfo);
      });
    });
  }

  private keep(chunk: Buffer): void {
    const joined = Buffer.concat([this.stderrBuf, chunk]);
    this.stderrBuf = joined.subarray(Math.max(0, joined.length - STDERR_TAIL_BYTES));
  }

  get hasExited(): boolean {
    return this.exitInfo !== null;
  }

  get threadId(): number {
    return this.worker.threadId;
  }

  stderrTail(): string {
    return this.stderrBuf.toString('utf8');
  }

  crash(): VmCrash {
    return { exitCode: this.exitInfo?.exitCode ?? null, signal: null, stderr: this.stderrTail() };
  }

  /** Terminates the thread at once (a thread has no polite stop); `graceMs` is not needed. */
  async stop(_graceMs: number): Promise<VmExit> {
    if (this.exitInfo) return this.exitInfo;
    void this.worker.terminate();
    // Termination takes effect when the thread runs JavaScript or WebAssembly: one blocked in a read of its
    // connection is woken by closing our end.
    this.socket?.destroy();
    return this.exited;
  }

  async reap(graceMs: number): Promise<VmExit> {
    if (this.exitInfo) return this.exitInfo;
    return reapWithin(this, graceMs);
  }
}

/** Worker options of every VM thread: nothing of the host's but PATH, a bounded heap, stdio captured. */
function workerOptions(options: ThreadLaunchOptions, workerData: unknown): WorkerOptions {
  return {
    workerData,
    argv: [],
    execArgv: [],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdin: false,
    stdout: true,
    stderr: true,
    resourceLimits: { maxOldGenerationSizeMb: options.heapMb ?? VM_THREAD_HEAP_MB },
  };
}

/**
 * Starts one VM thread behind a fresh listener and secret. With `spare` (a thread of the default entry that
 * has loaded its modules and waits), the data goes to it in a message instead of starting a thread.
 */
export async function launchThreadVm(options: ThreadLaunchOptions, role: VmRole, spare?: Worker): Promise<ThreadVm> {
  const { server, address } = await listen(options.transport);
  const secret = newVmSecret();
  const data: ThreadVmData = { host: formatAddress(address), secret };
  let worker: Worker;
  try {
    if (spare !== undefined) {
      worker = spare;
      worker.ref();
      worker.postMessage(data);
    } else {
      worker = new Worker(options.entry ?? THREAD_MAIN, workerOptions(options, data));
    }
  } catch (e) {
    server.close();
    throw new HostlinkError('vm_crash', `could not start the VM thread: ${(e as Error).message}`);
  }
  const vm = new ThreadVm(worker, admitVm(server, secret, options.gate));
  const events = options.events;
  if (events !== undefined) {
    const born = performance.now();
    events.emit('vm.launched', { pid: vm.pid, mode: role });
    void vm.exited.then((exit) => events.emit('vm.exited', { pid: vm.pid, mode: role, ...exit, lifetimeMs: performance.now() - born }));
  }
  return vm;
}

/**
 * The thread launcher: VMs as worker threads of this process. For embedding and tests; no OS sandbox. It keeps
 * one spare thread of the default entry with the VM's modules loaded (a worker cannot start from the VM's
 * start-up snapshot, and loading the modules is most of a cold call), so a launch hands the next VM its data
 * and starts the next spare behind it. The spare is unreferenced (it never keeps the host alive) and ends at close.
 */
export function threadLauncher(options: ThreadLaunchOptions): Launcher {
  // V8's flags are the process's: VM threads compile WebAssembly as VM processes do (VM_NODE_FLAGS), and so does
  // the rest of the host process from now on (it runs no WebAssembly of its own).
  setFlagsFromString(WASM_BASELINE_ONLY_FLAG);
  let spare: { worker: Worker; gone: boolean } | null = null;
  let closed = false;
  const startSpare = (): void => {
    if (closed || options.entry !== undefined || options.spare === false) return;
    try {
      const worker = new Worker(THREAD_MAIN, workerOptions(options, THREAD_VM_SPARE));
      const entry = { worker, gone: false };
      // Unreferenced, and its stdout left unread until it is taken (a flowing stdio stream would hold the host
      // open): an idle spare never keeps the host alive.
      worker.unref();
      worker.on('error', () => undefined); // a spare that fails is replaced at the next launch
      worker.once('exit', () => (entry.gone = true));
      spare = entry;
    } catch {
      spare = null; // the next launch starts its thread itself, and reports why if that fails too
    }
  };
  return {
    kind: 'thread',
    launch: async (role: VmRole) => {
      if (closed) throw new HostlinkError('vm_crash', 'the thread launcher is closed');
      const taken = spare !== null && !spare.gone ? spare.worker : undefined;
      if (taken !== undefined) {
        // The spare's error handler was for its wait; the VM's handle installs its own (and reads its stderr).
        taken.removeAllListeners('error');
      }
      spare = null;
      const vm = launchThreadVm(options, role, taken);
      startSpare();
      return vm;
    },
    close: async () => {
      closed = true;
      const last = spare;
      spare = null;
      if (last !== null && !last.gone) await last.worker.terminate();
    },
  };
}
