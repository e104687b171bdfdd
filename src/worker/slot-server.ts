/**
 * The worker's side of the data path: a TLS listener where the node opens one connection per VM slot.
 *
 * For each connection: check the node's credentials (a client certificate from the CA that carries the node's
 * name, or the token in the preamble), take a slot (at most `slots` at once; one more is answered "busy" and closed), start one VM
 * locally through the supervisor (full sandbox) with the secret the node sent, wait until that VM proved the
 * secret to the worker's own gate, answer ok, then relay bytes both ways: the VM's hello goes to the node,
 * which checks its proof again (end to end). When the node's connection ends, the VM gets SIGTERM, then
 * SIGKILL after the grace; when the VM ends, the node's connection is closed. A connection on which no byte
 * moves for `idleTimeoutMs` (a node that vanished without closing) is treated as ended: the worker's own
 * backstop, since no deadline from the node reaches it when the network is gone.
 */
import { isIP, type Socket } from 'node:net';
import { checkServerIdentity, createServer as createTlsServer, type PeerCertificate, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { HostlinkError } from '../errors.js';
import type { LaunchOptions, VmProcess } from '../host/supervisor.js';
import { launchVm } from '../host/supervisor.js';
import { encodeReply, parseRequest, readPreamble, SLOT_STATUS, type SlotRequest, type SlotStatus } from './preamble.js';
import { encodeData, encodeExit } from './relay.js';
import { tokenMatches } from '../token.js';
import type { TlsMaterial } from './tls.js';
import { extend } from '../extend.js';

/**
 * Connections held at once that have not proved themselves yet: still in the TLS handshake, and past it (without
 * the node's client certificate) but before a valid preamble. When either set is full, its oldest member is
 * closed to make room: a stranger parking connections then delays nobody, where refusing newcomers let 64 silent
 * ones lock the node out (its connection closed mid-preamble, the node dropped the worker: calls timed out).
 */
export const MAX_HANDSHAKING = 256;
export const MAX_PENDING = 64;

export interface SlotServerOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  tls: TlsMaterial;
  slots: number;
  /**
   * The name (or IP address) the node's certificate carries: a client certificate is the node's only when it
   * chains to the CA and carries it. The workers' certificates come from the same CA with clientAuth, so the CA
   * alone would let any worker take (and hold) another worker's slots.
   */
  nodeName: string;
  /** When set, a node without the node's client certificate may use the slots by sending this token. */
  token?: string;
  /** How VMs start here (transport, sandbox, command); the secret and role are set per connection. */
  launch: Omit<LaunchOptions, 'secret' | 'role'>;
  /** SIGTERM to SIGKILL. */
  killGraceMs: number;
  /** No byte either way for this long: the node is gone, the VM is stopped. */
  idleTimeoutMs: number;
  /** How long a node may take to send its preamble. */
  preambleTimeoutMs?: number;
  log: (line: string) => void;
}

export interface SlotServer {
  /** The address the listener is bound to (HOST:PORT). */
  readonly address: string;
  readonly port: number;
  /** Slots in use now. */
  readonly active: number;
  /** Process ids of the VMs running now. */
  pids(): number[];
  close(): Promise<void>;
}

export async function startSlotServer(options: SlotServerOptions): Promise<SlotServer> {
  const running = new Set<VmProcess>();
  let active = 0;
  let closing = false;
  const sockets = new Set<Socket>();
  const preambleTimeoutMs = options.preambleTimeoutMs ?? 5000;
  const server: TlsServer = createTlsServer({
    // Node's default is 120 s: a silent TCP connection would hold a descriptor that long.
    handshakeTimeout: preambleTimeoutMs,
    cert: options.tls.cert,
    key: options.tls.key,
    ca: options.tls.ca,
    // Ask for a client certificate but do not insist at the TLS layer: a node may prove itself with the token
    // instead. The check below refuses a connection that has neither.
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
  });
  // A failed or timed-out handshake is only reported here: Node leaves the connection open, and silent ones were
  // held until the client went (200 of them a minute later). Close it.
  server.on('tlsClientError', (_e: Error, tls: TLSSocket) => tls.destroy());
  // Unproven connections, oldest first (a Set keeps insertion order), keyed by the TCP socket under the TLS one.
  const handshaking = new Set<Socket>();
  const pending = new Map<Socket, TLSSocket>();
  // A TLS socket is matched to its TCP socket by the connection's four addresses, which no two open connections
  // share. The remote address and port alone are shared by connections from one source port to two addresses of
  // this worker: one's TLS socket was then filed under the other's, and left the eviction order it belonged to.
  const peerKey = (s: Socket): string => `${s.remoteAddress ?? ''}|${s.remotePort ?? ''}|${s.localAddress ?? ''}|${s.localPort ?? ''}`;
  const rawByPeer = new Map<string, Socket>();
  server.on('connection', (raw: Socket) => {
    if (handshaking.size >= MAX_HANDSHAKING) {
      const oldest = handshaking.values().next().value as Socket;
      handshaking.delete(oldest);
      oldest.destroy();
    }
    const key = peerKey(raw);
    handshaking.add(raw);
    rawByPeer.set(key, raw);
    raw.once('close', () => {
      handshaking.delete(raw);
      pending.delete(raw);
      if (rawByPeer.get(key) === raw) rawByPeer.delete(key);
    });
  });
  const proven = (socket: TLSSocket): void => {
    const raw = rawByPeer.get(peerKey(socket));
    if (raw !== undefined) pending.delete(raw);
  };
  /** Why a connection's client certificate is not the node's, or undefined when it is. */
  const notTheNode = (socket: TLSSocket): string | undefined => {
    if (!socket.authorized) return 'no client certificate from the CA';
    if (!carriesName(socket.getPeerCertificate(), options.nodeName)) {
      return `the client certificate from the CA is not the node's (it does not carry the name ${options.nodeName} itself, as a subject alternative name)`;
    }
    return undefined;
  };
  server.on('secureConnection', (socket: TLSSocket) => {
    const raw = rawByPeer.get(peerKey(socket));
    if (raw !== undefined) handshaking.delete(raw);
    const notNode = notTheNode(socket);
    // The node's certificate proves the node already; anyone else must send a valid preamble first.
    if (notNode !== undefined && raw !== undefined) {
      if (pending.size >= MAX_PENDING) {
        const [oldRaw, oldTls] = pending.entries().next().value as [Socket, TLSSocket];
        pending.delete(oldRaw);
        oldTls.destroy();
      }
      pending.set(raw, socket);
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    void serveConnection(socket, notNode);
  });

  async function serveConnection(socket: TLSSocket, notNode: string | undefined): Promise<void> {
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const answer = (status: SlotStatus, message: string): void => {
      socket.end(encodeReply(status, 0, message));
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    let request: SlotRequest;
    try {
      request = await readPreamble(socket, parseRequest, preambleTimeoutMs);
    } catch (e) {
      options.log(`refused a connection from ${peer}: ${(e as Error).message}`);
      answer(SLOT_STATUS.refused, (e as Error).message);
      return;
    }
    if (notNode !== undefined && !tokenMatches(options.token, request.token)) {
      const why = options.token === undefined ? notNode : `${notNode} and no valid token`;
      options.log(`refused a connection from ${peer}: ${why}`);
      answer(SLOT_STATUS.refused, `the worker refused the node: ${why}`);
      return;
    }
    proven(socket);
    if (closing || active >= options.slots) {
      answer(SLOT_STATUS.busy, `all ${options.slots} slots of this worker are in use`);
      return;
    }
    active++;
    let nodeGone = false;
    socket.once('close', () => {
      nodeGone = true;
    });
    let vm: VmProcess;
    try {
      vm = await launchVm(extend(options.launch, { secret: request.secret, role: 'pool' }));
    } catch (e) {
      active--;
      options.log(`could not start a VM: ${(e as Error).message}`);
      answer(SLOT_STATUS.startFailed, `the worker could not start a VM: ${(e as Error).message}`);
      return;
    }
    running.add(vm);
    void vm.exited.then(() => {
      running.delete(vm);
      active--;
    });
    let vmSocket: Socket;
    try {
      vmSocket = await Promise.race([
        vm.connection,
        new Promise<never>((_, reject) => socket.once('close', () => reject(new HostlinkError('channel_closed', 'the node closed the connection')))),
      ]);
    } catch (e) {
      void vm.stop(options.killGraceMs);
      const tail = vm.stderrTail().trim().split('\n').pop() ?? '';
      if (!nodeGone) answer(SLOT_STATUS.startFailed, `the VM exited before connecting${tail ? `: ${tail}` : ''}`);
      else options.log(`a slot ended before its VM connected: ${(e as Error).message}`);
      return;
    }
    if (nodeGone) {
      vmSocket.destroy();
      void vm.stop(options.killGraceMs);
      return;
    }
    socket.write(encodeReply(SLOT_STATUS.ok, vm.pid));
    relay(socket, vmSocket, vm);
  }

  /**
   * Bytes both ways until either side ends; the VM is stopped when the node goes. Node -> VM is raw; VM -> node
   * goes in DATA frames, and once the VM's connection closed and its process was reaped, an EXIT frame with its
   * status and last stderr line follows, then the end of the connection (src/worker/relay.ts).
   */
  function relay(node: TLSSocket, vmSocket: Socket, vm: VmProcess): void {
    vmSocket.on('error', () => undefined);
    let idle: NodeJS.Timeout | undefined;
    const touch = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        options.log(`no traffic for ${options.idleTimeoutMs} ms on the slot of VM ${vm.pid}: stopping it`);
        node.destroy();
      }, options.idleTimeoutMs);
      idle.unref();
    };
    touch();
    node.on('data', touch);
    node.pipe(vmSocket);
    let draining = false;
    vmSocket.on('data', (chunk: Buffer) => {
      touch();
      let ok = true;
      for (const part of encodeData(chunk)) ok = node.write(part) && ok;
      if (!ok && !draining) {
        draining = true;
        vmSocket.pause();
        node.once('drain', () => {
          draining = false;
          vmSocket.resume();
        });
      }
    });
    node.once('close', () => {
      clearTimeout(idle);
      vmSocket.destroy();
      void vm.stop(options.killGraceMs);
    });
    vmSocket.once('close', () => {
      // Everything the VM wrote was written to the node first (its 'data' events come before 'close'). A VM
      // that closed its connection but lingers is stopped: the slot ends either way.
      const reaped = Promise.race([vm.exited, new Promise<null>((r) => setTimeout(() => r(null), options.killGraceMs).unref())]);
      void reaped
        .then((exit) => exit ?? vm.stop(options.killGraceMs))
        .then((exit) => {
          if (node.destroyed) return;
          node.end(encodeExit(extend(exit, { stderr: vm.stderrTail() })));
          setTimeout(() => node.destroy(), options.killGraceMs).unref();
        });
    });
    void vm.exited.then(() => {
      clearTimeout(idle);
      if (!vmSocket.destroyed) vmSocket.end();
    });
    vmSocket.resume();
    node.resume();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new HostlinkError('internal', 'the slot listener has no port');
  const address = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  return {
    address,
    port: bound.port,
    get active() {
      return active;
    },
    pids: () => [...running].map((vm) => vm.pid),
    async close() {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      await Promise.all([...running].map((vm) => vm.stop(options.killGraceMs)));
    },
  };
}

/**
 * Whether a certificate names the node: as TLS would check it (IP addresses exactly), and for a DNS name only
 * through a subject alternative name that is the name itself. A wildcard (`*.example.internal`) or a common name
 * without alternative names would pass TLS's check, and a worker whose certificate held one could take every
 * slot of every worker that knows the node by a name under it.
 */
export function carriesName(cert: PeerCertificate, name: string): boolean {
  if (checkServerIdentity(name, cert) !== undefined) return false;
  if (isIP(name) !== 0) return true;
  const want = dnsName(name);
  return (cert.subjectaltname ?? '').split(', ').some((entry) => entry.startsWith('DNS:') && dnsName(entry.slice('DNS:'.length)) === want);
}

const dnsName = (n: string): string => n.toLowerCase().replace(/\.$/, '');
