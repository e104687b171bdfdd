/**
 * Launching and stopping VM processes.
 *
 * Each VM process gets its own listener (a fresh unix socket path or an ephemeral TCP port on loopback), so a
 * connection always belongs to exactly one process and no handshake is needed to match them. Waiting for the
 * connection always races the child's exit: a VM that dies before it dials is a crash, never a hang in accept().
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostlinkError } from '../errors.js';
import { formatAddress, type HostAddress } from '../transport/address.js';
import type { ChannelImpl } from '../transport/connect.js';
import type { VmCrash } from './job.js';
import { prepareSandbox, type SandboxSetting } from './sandbox/plan.js';

export type Transport = 'unix' | 'tcp';

/** The `hostlink` launcher of this installation (bin/hostlink.js). */
export const HOSTLINK_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'hostlink.js');

/** Node flags for VM processes: a bounded heap, so a runaway VM fails fast instead of swapping the node. */
export const VM_NODE_FLAGS: readonly string[] = ['--max-old-space-size=2048'];

export interface LaunchOptions {
  transport: Transport;
  /** One-shot message; omit for a pool VM. */
  message?: string;
  /** Command that starts a VM; `--host ADDR [--message JSON]` are appended. Default: this installation's `hostlink vm`. */
  command?: readonly string[];
  channel?: ChannelImpl;
  /** Extra environment for the VM (the VM otherwise gets a minimal environment). */
  env?: Record<string, string>;
  /** The VM's OS sandbox (src/host/sandbox/plan.ts); default HOSTLINK_SANDBOX or 'required'. */
  sandbox?: SandboxSetting;
}

const STDERR_TAIL_BYTES = 8 * 1024;
let socketDir: string | undefined;
let socketCounter = 0;

/** A private directory for this host process's VM sockets, removed at exit. */
function socketPath(): string {
  if (socketDir === undefined) {
    socketDir = mkdtempSync(join(tmpdir(), 'hostlink-'));
    const dir = socketDir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return join(socketDir, `vm-${++socketCounter}.sock`);
}

function listen(transport: Transport): Promise<{ server: Server; address: HostAddress }> {
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

export interface VmExit {
  exitCode: number | null;
  signal: string | null;
}

/** A running VM process and its (single) connection. */
export class VmProcess {
  readonly exited: Promise<VmExit>;
  /** Resolves with the VM's socket once it connects; rejects with a crash error if it exits first. */
  readonly connection: Promise<Socket>;
  private stderrBuf = Buffer.alloc(0);
  private exitInfo: VmExit | null = null;

  constructor(
    readonly child: ChildProcess,
    private readonly server: Server,
    readonly address: HostAddress,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (exitCode, signal) => {
        this.exitInfo = { exitCode, signal };
        this.server.close();
        resolve(this.exitInfo);
      });
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      const joined = Buffer.concat([this.stderrBuf, chunk]);
      this.stderrBuf = joined.subarray(Math.max(0, joined.length - STDERR_TAIL_BYTES));
    });
    this.connection = new Promise<Socket>((resolve, reject) => {
      server.once('connection', (socket: Socket) => {
        server.close(); // one connection per VM: stop listening, the socket stays open
        socket.setNoDelay(true);
        resolve(socket);
      });
      void this.exited.then(() => reject(new HostlinkError('vm_crash', 'the VM exited before connecting')));
    });
    this.connection.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection
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
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), graceMs);
    });
    const first = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    return first === 'timeout' ? this.stop(graceMs) : first;
  }
}

/** Starts a VM process that will connect to a fresh private listener. */
export async function launchVm(options: LaunchOptions): Promise<VmProcess> {
  // SANDBOX: refuse ('required') or warn ('best-effort') before anything exists; see src/host/sandbox/plan.ts.
  const sandbox = prepareSandbox(options.sandbox, options.transport, HOSTLINK_BIN);
  const { server, address } = await listen(options.transport);
  sandbox.grantSocket(address); // SANDBOX: only the VM's uid may connect
  const command = options.command ?? [process.execPath, ...VM_NODE_FLAGS, HOSTLINK_BIN, 'vm'];
  const args = [...command.slice(1), '--host', formatAddress(address)];
  if (options.message !== undefined) args.push('--message', options.message);
  if (options.channel !== undefined) args.push('--channel', options.channel);
  // SANDBOX: launcher, uid, cgroup, empty working directory around the same spawn.
  const child = sandbox.spawn(command[0]!, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    // The VM needs nothing from the node's environment; keep secrets out of the sandbox.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
  });
  child.on('error', () => undefined); // spawn failures surface as an exit (code null) and are reported as crashes
  return new VmProcess(child, server, address);
}
