/**
 * The runtime launcher: VMs that announce themselves through the gRPC Runtime handshake (docs/runtime.md).
 *
 * Per launch the host serves Runtime on an ephemeral loopback TCP port (or, for the unix transport, a socket in a
 * fresh directory that becomes the VM's own), spawns the VM through the same sandboxed spawn as every local VM
 * (supervisor.ts spawnVm: PATH plus ONE variable, the engine address; the secret on stdin) and waits for
 * Initialize within the handshake deadline:
 *   - a protocol version this host does not speak: ERROR_INCOMPATIBLE_PROTOCOL_VERSION, and the launch fails
 *     with an error naming both versions and what to upgrade;
 *   - else the host dials the announced address (loopback, or a unix socket in the VM's directory: nothing
 *     else), sends its host proof (host-proof.ts) and admits the connection only if the VM's hello proves the
 *     secret (vm-gate.ts proveConnection). Initialize itself carries no credential, so any local process can
 *     call it: a forged one pointing elsewhere gets an answer and a connection that proves nothing, and the
 *     host keeps waiting for the real VM until the deadline;
 *   - nothing proven by the deadline: the VM is stopped and the launch fails with exactly
 *     "handshake failed: vm process not found".
 * The connection is then handed on like any VM's: protocol v1, hello first.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { isIPv4, connect as netConnect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { HostlinkError } from '../errors.js';
import type { Launcher, VmRole } from '../host/launcher.js';
import { prepareSandbox } from '../host/sandbox/plan.js';
import { HOSTLINK_BIN, VM_NODE_FLAGS, VmProcess, reportLifecycle, spawnVm, vmSocketDir, type LaunchOptions } from '../host/supervisor.js';
import { proveConnection, type Gate } from '../host/vm-gate.js';
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, RUNTIME_ENGINE_ADDR_ENV } from '../protocol/generated.js';
import { newVmSecret } from '../protocol/hello-proof.js';
import { parseAddress, type HostAddress } from '../transport/address.js';
import { HOSTLINK_VERSION } from '../version.js';
import { serveRuntime, type InitializeAnswer, type InitializeRequest, type RuntimeListen, type RuntimeServer } from './grpc.js';
import { hostProof } from './host-proof.js';
import { extend } from '../extend.js';

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
/** The exact failure when no VM proved itself in time (the production system's words). */
export const HANDSHAKE_NOT_FOUND = 'handshake failed: vm process not found';
/** Initialize calls one launch follows up with a connection; more are refused (a local process flooding it). */
const MAX_DIALS = 16;
/** How long a refused VM may take to read its answer and exit by itself before it is stopped. */
const REFUSED_EXIT_GRACE_MS = 2000;

/** `handshakeTimeoutMs`: how long the VM has to call Initialize and prove its connection, from its spawn. Default 5000 ms. */
export type RuntimeLaunchOptions = Omit<LaunchOptions, 'channel' | 'launcher'>;

let launches = 0;

/** A Launcher of kind 'runtime' (src/host/launcher.ts) over launchRuntimeVm. */
export function runtimeLauncher(options: RuntimeLaunchOptions): Launcher {
  return { kind: 'runtime', launch: (role: VmRole) => launchRuntimeVm(extend(options, { role })) };
}

/** Starts one VM through the handshake. Rejects only when nothing could be started; handshake failures reject `connection`. */
export async function launchRuntimeVm(options: RuntimeLaunchOptions): Promise<VmProcess> {
  const sandbox = prepareSandbox(options.sandbox, options.transport, HOSTLINK_BIN);
  const secret = newVmSecret();
  let dir: string | undefined;
  let listen: RuntimeListen;
  if (options.transport === 'unix') {
    dir = join(vmSocketDir(), `runtime-${process.pid}-${++launches}`);
    mkdirSync(dir, { mode: 0o700 });
    listen = { unix: join(dir, 'engine.sock') };
  } else {
    listen = { tcp: { host: '127.0.0.1', port: 0 } };
  }
  const removeDir = (): void => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  };
  const handshake = new Handshake(secret, dir, options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, options.gate?.helloTimeoutMs);
  // (armed once the VM exists: the deadline runs from its spawn)
  let runtime: RuntimeServer;
  try {
    runtime = await serveRuntime({ listen: [listen], onInitialize: (req) => handshake.onInitialize(req) });
    if (dir !== undefined && 'unix' in listen) {
      sandbox.grantSocket({ kind: 'unix', path: listen.unix }); // SANDBOX: only the VM's uid may connect
      sandbox.grantDir(dir); // and only it may create its own socket beside it
    }
  } catch (e) {
    handshake.close(new HostlinkError('internal', 'the launch did not start'));
    removeDir();
    throw e;
  }
  const engineAddr = runtime.addresses[0]!;
  const command = options.command ?? [process.execPath, ...VM_NODE_FLAGS, HOSTLINK_BIN, 'vm'];
  let child: ChildProcess;
  try {
    child = spawnVm(sandbox, command, [], extend(options.env ?? {}, { [RUNTIME_ENGINE_ADDR_ENV]: engineAddr }), secret);
  } catch (e) {
    handshake.close(new HostlinkError('internal', 'the launch did not start'));
    await runtime.close();
    removeDir();
    throw e;
  }
  const vm = new RuntimeVm(child, handshake, parseAddress(engineAddr));
  handshake.arm(
    (e) => void (e.code === 'incompatible_version' ? vm.reap(REFUSED_EXIT_GRACE_MS) : vm.stop(REFUSED_EXIT_GRACE_MS)),
    // After a success the VM has read its answer (it says hello only then); after a refusal it must still read
    // it, so the endpoint stays until the VM is gone.
    (ok) => void (ok ? runtime.close() : undefined),
  );
  void vm.exited.then(() => {
    void runtime.close();
    removeDir();
  });
  reportLifecycle(vm, options.events, options.role);
  return vm;
}

/** A VmProcess whose stderr tail ends with the handshake's failure, so crash reports and pool errors name it. */
class RuntimeVm extends VmProcess {
  constructor(
    child: ChildProcess,
    private readonly handshake: Handshake,
    address: HostAddress,
  ) {
    super(child, handshake, address);
  }

  override stderrTail(): string {
    const tail = super.stderrTail();
    const failure = this.handshake.failure;
    if (failure === undefined) return tail;
    return `${tail}${tail === '' || tail.endsWith('\n') ? '' : '\n'}${failure.message}`;
  }
}

/** The handshake of one launch, as the Gate VmProcess waits on. */
class Handshake implements Gate {
  readonly connection: Promise<Socket>;
  failure: HostlinkError | undefined;
  private onFailure: (e: HostlinkError) => void = () => undefined;
  private onSettled: (ok: boolean) => void = () => undefined;
  private settled = false;
  private refusedCount = 0;
  private dials = 0;
  private readonly dialing = new Set<Socket>();
  private timer: NodeJS.Timeout | undefined;
  private deadline = Infinity;
  private admit!: (socket: Socket) => void;
  private reject!: (e: HostlinkError) => void;

  constructor(
    private readonly secret: Uint8Array,
    /** The VM's own directory (unix transport): the only place a unix server_addr may be. */
    private readonly vmDir: string | undefined,
    private readonly timeoutMs: number,
    private readonly helloTimeoutMs: number | undefined,
  ) {
    this.connection = new Promise((resolve, reject) => {
      this.admit = resolve;
      this.reject = reject;
    });
    this.connection.catch(() => undefined); // observed by whoever awaits it
  }

  /** Starts the deadline, once the VM is spawned; `onFailure` stops it, `onSettled` follows either outcome. */
  arm(onFailure: (e: HostlinkError) => void, onSettled: (ok: boolean) => void): void {
    this.onFailure = onFailure;
    this.onSettled = onSettled;
    if (this.settled) return;
    this.deadline = Date.now() + this.timeoutMs;
    this.timer = setTimeout(() => this.fail(new HostlinkError('timeout', HANDSHAKE_NOT_FOUND)), this.timeoutMs);
  }

  get refused(): number {
    return this.refusedCount;
  }

  close(reason: HostlinkError): void {
    if (!this.settled) this.settle(reason);
  }

  async onInitialize(req: InitializeRequest): Promise<InitializeAnswer> {
    if (this.settled) throw new HostlinkError('usage', 'this VM launch has already completed its handshake');
    const v = req.protocol_version;
    if (v < PROTOCOL_VERSION_MIN || v > PROTOCOL_VERSION_MAX) {
      const speaks = PROTOCOL_VERSION_MIN === PROTOCOL_VERSION_MAX ? `${PROTOCOL_VERSION_MAX}` : `${PROTOCOL_VERSION_MIN}..${PROTOCOL_VERSION_MAX}`;
      const upgrade = v < PROTOCOL_VERSION_MIN ? 'upgrade the VM (its hostlink installation)' : 'upgrade this host (hostlink)';
      this.fail(
        new HostlinkError(
          'incompatible_version',
          `handshake failed: protocol version mismatch: this host (hostlink ${HOSTLINK_VERSION}) speaks protocol version ${speaks}, the VM speaks ${v}; ${upgrade} so that both speak the same version`,
        ),
      );
      return { error: 'ERROR_INCOMPATIBLE_PROTOCOL_VERSION' };
    }
    const target = this.checkAddress(req.server_addr);
    if (++this.dials > MAX_DIALS) throw new HostlinkError('usage', `more than ${MAX_DIALS} Initialize calls for one VM launch: refused`);
    this.dial(target, req.server_addr);
    return {};
  }

  /** Loopback or the VM's own directory: a local launch never makes the host connect anywhere else. */
  private checkAddress(text: string): HostAddress {
    let address: HostAddress;
    try {
      address = parseAddress(text);
    } catch (e) {
      throw new HostlinkError('usage', `server_addr: ${(e as Error).message}`);
    }
    if (address.kind === 'tcp') {
      const loopback = address.host === '::1' || (isIPv4(address.host) && address.host.startsWith('127.'));
      if (!loopback) throw new HostlinkError('usage', `server_addr ${text} refused: a local VM must serve on a loopback address (127.0.0.0/8 or [::1])`);
    } else if (this.vmDir === undefined || dirname(address.path) !== this.vmDir) {
      throw new HostlinkError('usage', `server_addr ${text} refused: a local VM's unix socket must be in the directory beside the engine's socket`);
    }
    return address;
  }

  private dial(target: HostAddress, announced: string): void {
    const socket = target.kind === 'unix' ? netConnect({ path: target.path }) : netConnect({ host: target.host, port: target.port });
    this.dialing.add(socket);
    socket.once('connect', () => socket.write(hostProof(this.secret, announced)));
    const helloTimeoutMs = Math.max(1, Math.min(this.helloTimeoutMs ?? Infinity, this.deadline - Date.now()));
    proveConnection(socket, this.secret, { helloTimeoutMs }).then(
      (proven) => {
        this.dialing.delete(proven);
        if (this.settled) return void proven.destroy();
        this.settle(proven);
      },
      () => {
        this.dialing.delete(socket);
        this.refusedCount++; // an address that does not prove the secret: keep waiting for the real VM
      },
    );
  }

  private fail(e: HostlinkError): void {
    if (this.settled) return;
    this.settle(e);
  }

  private settle(outcome: Socket | HostlinkError): void {
    this.settled = true;
    clearTimeout(this.timer);
    for (const s of this.dialing) s.destroy();
    this.dialing.clear();
    if (outcome instanceof HostlinkError) {
      this.failure = outcome;
      this.reject(outcome);
      this.onSettled(false);
      this.onFailure(outcome);
    } else {
      this.admit(outcome);
      this.onSettled(true);
    }
  }
}
