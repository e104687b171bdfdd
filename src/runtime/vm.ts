/**
 * The VM's side of the runtime handshake: `hostlink vm` started with the engine variable and no `--host`.
 *
 *   1. listen: loopback TCP, or `vm.sock` beside the engine's socket when the engine is a unix path (that
 *      directory is the VM's own: the host creates it for this VM alone);
 *   2. call Initialize(protocol version, that address) on the engine, 5 s deadline;
 *   3. accept the host's connection: the first one whose opening 32 bytes prove the VM's secret
 *      (host-proof.ts); anyone else is closed unanswered and the listener keeps waiting;
 *   4. hand that socket to the VM loop, which says hello first with its own proof, as over `--host`.
 *
 * All of this happens before the VM installs its seccomp filter (src/vm/sandbox.ts), which refuses new sockets,
 * bind, listen and accept: the listener and the gRPC channel are closed by then, the accepted socket is all the
 * VM keeps.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { HostlinkError } from '../errors.js';
import { PROTOCOL_VERSION_MAX, RUNTIME_ENGINE_ADDR_ENV } from '../protocol/generated.js';
import { formatAddress, parseAddress, type HostAddress } from '../transport/address.js';
import type { HostChannel } from '../transport/channel.js';
import { adoptJs } from '../transport/js-channel.js';
import { initialize } from './grpc.js';
import { HOST_PROOF_BYTES, checkHostProof } from './host-proof.js';

/** The Initialize call's deadline, connecting included, and then the wait for the host's connection. */
export const VM_RUNTIME_DEADLINE_MS = 5000;
/** Connections that have not proved the host yet, held at once; a new one over the cap evicts the oldest. */
const MAX_PENDING = 16;

const failed = (code: HostlinkError['code'], why: string): HostlinkError => new HostlinkError(code, `failed to initialize vm runtime: ${why}`);

export interface RuntimeVmOptions {
  deadlineMs?: number;
}

/**
 * Runs steps 1-3 and returns the channel to the host. Throws HostlinkError 'usage' (bad engine address, no
 * secret), 'incompatible_version' (the engine refused our version, in either shape), 'timeout' or
 * 'channel_closed' (engine unreachable, or it never connected), each message starting "failed to initialize vm
 * runtime: ".
 */
export async function connectThroughRuntime(engineAddr: string, secret: Uint8Array | undefined, options: RuntimeVmOptions = {}): Promise<HostChannel> {
  const deadlineMs = options.deadlineMs ?? VM_RUNTIME_DEADLINE_MS;
  let engine: HostAddress;
  try {
    engine = parseAddress(engineAddr);
  } catch (e) {
    throw failed('usage', `${RUNTIME_ENGINE_ADDR_ENV}: ${(e as Error).message}`);
  }
  if (secret === undefined) {
    throw failed('usage', 'no VM secret on stdin: the host that sets the engine address writes it there, and only a host that proves it gets an answer');
  }
  const { server, address } = await listen(engine);
  const announced = formatAddress(address);
  const acceptor = acceptHost(server, secret, announced);
  let socket: Socket;
  try {
    let outcome;
    try {
      outcome = await initialize(engineAddr, { protocol_version: PROTOCOL_VERSION_MAX, server_addr: announced }, { deadlineMs });
    } catch (e) {
      throw failed(e instanceof HostlinkError && e.code === 'timeout' ? 'timeout' : 'channel_closed', (e as Error).message);
    }
    if (!outcome.ok) {
      throw failed(
        'incompatible_version',
        `the engine at ${engineAddr} refused protocol version ${PROTOCOL_VERSION_MAX} (${outcome.detail}); upgrade the host or this VM (hostlink) so that both speak the same protocol version`,
      );
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(failed('timeout', `the engine accepted Initialize but did not connect to ${announced} within ${deadlineMs} ms`)), deadlineMs);
    });
    try {
      socket = await Promise.race([acceptor.connection, late]);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    acceptor.close();
  }
  // One turn of the event loop lets libuv release the listener's descriptor before the VM seals itself in.
  await new Promise((resolve) => setImmediate(resolve));
  return adoptJs(socket);
}

function listen(engine: HostAddress): Promise<{ server: Server; address: HostAddress }> {
  const address: HostAddress =
    engine.kind === 'unix' ? { kind: 'unix', path: join(dirname(engine.path), 'vm.sock') } : { kind: 'tcp', host: engine.host === '::1' ? '::1' : '127.0.0.1', port: 0 };
  return new Promise((resolve, reject) => {
    const server = createServer({ noDelay: true });
    server.once('error', (e) => reject(failed('channel_closed', `cannot listen on ${formatAddress(address)}: ${e.message}`)));
    const ready = (): void => {
      const a = server.address();
      if (address.kind === 'unix' || a === null || typeof a === 'string') return resolve({ server, address });
      resolve({ server, address: { kind: 'tcp', host: address.host, port: a.port } });
    };
    if (address.kind === 'unix') server.listen(address.path, ready);
    else server.listen(0, address.host, ready);
  });
}

/** The listener's gate: the first connection whose first 32 bytes are the host proof wins; the listener then closes. */
function acceptHost(server: Server, secret: Uint8Array, announced: string): { connection: Promise<Socket>; close(): void } {
  const pending = new Map<Socket, NodeJS.Timeout>();
  let settled = false;
  let admit!: (socket: Socket) => void;
  const connection = new Promise<Socket>((resolve) => {
    admit = resolve;
  });
  const drop = (socket: Socket): void => {
    clearTimeout(pending.get(socket));
    pending.delete(socket);
    socket.destroy();
  };
  const close = (): void => {
    if (settled) return;
    settled = true;
    server.close();
    for (const socket of [...pending.keys()]) drop(socket);
  };
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => undefined);
    if (settled) return void socket.destroy();
    if (pending.size >= MAX_PENDING) drop(pending.keys().next().value!); // the oldest: an intruder parking connections cannot lock the host out
    pending.set(socket, setTimeout(() => drop(socket), VM_RUNTIME_DEADLINE_MS));
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk]);
      if (seen.length < HOST_PROOF_BYTES) return;
      // The host sends its proof and then waits for our hello: anything more, or a wrong proof, is not the host.
      if (seen.length !== HOST_PROOF_BYTES || !checkHostProof(secret, announced, seen)) return drop(socket);
      if (settled) return drop(socket);
      socket.off('data', onData);
      socket.pause();
      (socket as unknown as { _handle?: { readStop?: () => number } })._handle?.readStop?.();
      clearTimeout(pending.get(socket));
      pending.delete(socket);
      close();
      admit(socket);
    };
    socket.on('data', onData);
  });
  return { connection, close };
}
