/**
 * The node's Runtime endpoint for remote workers: gRPC `Runtime.Initialize` (proto/runtime.proto) served over
 * TCP + TLS, where `hostlink worker` registers the address of its slot listener (`server_addr`) and its slot
 * count (metadata `hostlink-slots`).
 *
 * Credentials: a client certificate signed by the operator CA (mutual TLS), or, when the node has a token, the
 * token as `authorization: Bearer TOKEN` over TLS. Anything else is refused with gRPC status UNAUTHENTICATED
 * and a log line naming the peer (the first refusal on a connection; the rest are counted: refusalLog). A worker announcing a protocol version this node does not speak gets the
 * seed's answer, `InitializeResponse { error: ERROR_INCOMPATIBLE_PROTOCOL_VERSION }`, with the node's versions
 * in trailing metadata (`hostlink-node-protocol`) so the worker's error names both. The same answer refuses a
 * worker whose VMs run by another gas schedule or instrumentation (metadata `hostlink-vm-semantics`, absent
 * from releases before it): the protocol version does not change with them, and such a worker would fail every
 * call it is given, or, from before the messages named them, charge other gas. A registration that passes goes
 * into the remote launcher's slot table, tied to who made it (the client certificate's SHA-256 fingerprint, or
 * the token): one for an address a live registration of another identity holds is refused with gRPC status
 * PERMISSION_DENIED (the worker exits 4) and logged, so an authenticated worker cannot evict another. Served
 * with our own grpc.Server (not serveRuntime) because the credential check needs the call's TLS peer certificate.
 */
import * as grpc from '@grpc/grpc-js';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { HostlinkError } from '../errors.js';
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from '../protocol/generated.js';
import { semanticsMismatch, VM_SEMANTICS_TEXT } from '../protocol/vm-semantics.js';
import { runtimeServerOptions, runtimeService, type InitializeRequest, type InitializeResponse } from '../runtime/grpc.js';
import { parseAddress } from '../transport/address.js';
import { MAX_ADDRESSES_PER_IDENTITY, WorkerAddressesFull, WorkerAddressHeld, type RemoteLauncher } from './remote-launcher.js';
import { tokenMatches } from '../token.js';
import type { TlsMaterial } from './tls.js';
import { cutText, logText } from '../terminal-text.js';

/** Metadata keys a worker sends with Initialize. */
export const SLOTS_METADATA = 'hostlink-slots';
export const INSTANCE_METADATA = 'hostlink-worker-instance';
/** The gas schedule and instrumentation versions (VM_SEMANTICS_TEXT): sent by the worker, answered by the node. */
export const VM_SEMANTICS_METADATA = 'hostlink-vm-semantics';
/** Most slots one worker may announce (each is a VM process on that machine). */
export const MAX_WORKER_SLOTS = 1024;
/**
 * Connections held at once that have not registered a worker yet (TLS handshake, HTTP/2 set-up, a refused or
 * pending Initialize). Anyone who reaches the port can open them, and grpc-js alone kept every one for as long
 * as the peer liked: 20000 silent connections used up the node's descriptors and its HTTP API stopped
 * answering. When the set is full, its oldest member is closed to make room.
 */
export const MAX_UNREGISTERED_CONNECTIONS = 256;
/**
 * How long a connection may take to register a worker before it is closed, and then to register again (a worker
 * renews its registration every 2 s on the connection it keeps).
 */
export const REGISTER_WITHIN_MS = 10_000;
/**
 * Registered connections one identity (a certificate, or the token) may hold; past it, its oldest is closed. A
 * worker keeps one; the token's workers share the bound. Without it one certificate held a registered connection
 * per descriptor the node had (1,000 in 15 s), and the node could no longer open a file or a socket.
 */
export const MAX_CONNECTIONS_PER_IDENTITY = 2 * MAX_ADDRESSES_PER_IDENTITY;
/**
 * Refused registrations are logged once per connection: the first in full, the rest as a count (with the last
 * one's reason) when the connection closes, or every this often while it stays open. A line per refusal let one
 * stranger write 20,000 warnings (7 MB) in 10 s and stall the node's event loop for hundreds of ms.
 */
export const REFUSAL_SUMMARY_EVERY_MS = 60_000;

export interface WorkerEndpointOptions {
  host: string;
  /** 0: an ephemeral port (tests). */
  port: number;
  tls: TlsMaterial;
  /** Accept workers that send this token instead of a client certificate. */
  token?: string;
  launcher: RemoteLauncher;
  log: (line: string) => void;
}

export interface WorkerEndpoint {
  /** HOST:PORT the endpoint is bound to. */
  readonly address: string;
  close(): Promise<void>;
}

/** TLS server credentials that ask for a client certificate without requiring one (the token is the other way in). */
export function workerServerCredentials(tls: TlsMaterial): grpc.ServerCredentials {
  // grpc-js registers its watcher after adding these listeners: an answer given synchronously would be lost.
  const provider: grpc.experimental.CertificateProvider = {
    addCaCertificateListener: (l) => setImmediate(() => l({ caCertificate: tls.ca })),
    removeCaCertificateListener: () => undefined,
    addIdentityCertificateListener: (l) => setImmediate(() => l({ certificate: tls.cert, privateKey: tls.key })),
    removeIdentityCertificateListener: () => undefined,
  };
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

/** A registration refused with a gRPC status (not an exception: it is answered, never thrown past the handler). */
interface Refusal {
  refused: grpc.status;
  why: string;
}

/** The node's protocol versions as text: `1` or `1..2`. */
export function nodeProtocolVersions(): string {
  return PROTOCOL_VERSION_MIN === PROTOCOL_VERSION_MAX ? `${PROTOCOL_VERSION_MAX}` : `${PROTOCOL_VERSION_MIN}..${PROTOCOL_VERSION_MAX}`;
}

/** Trailing metadata of a refused version: the node's versions, so the worker can name both. */
export const NODE_PROTOCOL_METADATA = 'hostlink-node-protocol';

/** Characters of a peer's address quoted in a refusal or a log line (the rest is cut, its length given). */
const MAX_QUOTED_CHARS = 256;

export async function serveWorkerEndpoint(options: WorkerEndpointOptions): Promise<WorkerEndpoint> {
  /** Checks one registration: the answer (the seed's enum for a version mismatch), or a refusal. */
  const check = (call: grpc.ServerUnaryCall<InitializeRequest, InitializeResponse>): InitializeResponse | Refusal => {
    const request = { protocol_version: Number(call.request.protocol_version) >>> 0, server_addr: String(call.request.server_addr ?? '') };
    const metadata = call.metadata;
    const who = call.getPeer();
    // What the peer sent is quoted cut and escaped: this runs before (and whether or not) it proved anything.
    const addr = logText(cutText(request.server_addr, MAX_QUOTED_CHARS));
    const log = (why: string): void => refusals.log(who, addr || 'no address', logText(cutText(why, 4 * MAX_QUOTED_CHARS)));
    const refuse = (status: grpc.status, why: string): Refusal => {
      log(why);
      return { refused: status, why: cutText(why, 4 * MAX_QUOTED_CHARS) };
    };
    const bearer = String(metadata.get('authorization')[0] ?? '');
    const token = bearer.startsWith('Bearer ') ? bearer.slice('Bearer '.length) : undefined;
    // grpc-js sets the peer certificate only when the TLS layer verified it against the CA.
    const certificate = call.getAuthContext()?.sslPeerCertificate;
    const certOk = certificate !== undefined;
    if (!certOk && !tokenMatches(options.token, token)) {
      return refuse(
        grpc.status.UNAUTHENTICATED,
        options.token === undefined
          ? "no client certificate signed by the node's CA: give the worker --cert/--key from that CA"
          : "no client certificate signed by the node's CA and no valid token: give the worker --cert/--key from that CA or the node's token (--token-file)",
      );
    }
    const v = request.protocol_version;
    if (v < PROTOCOL_VERSION_MIN || v > PROTOCOL_VERSION_MAX) {
      log(`protocol version mismatch: the node speaks ${nodeProtocolVersions()}, the worker ${v}: install the same Hostlink release on both`);
      return { error: 'ERROR_INCOMPATIBLE_PROTOCOL_VERSION' };
    }
    const announced = metadata.get(VM_SEMANTICS_METADATA)[0];
    const mismatch = semanticsMismatch(announced === undefined ? undefined : String(announced));
    if (mismatch !== undefined) {
      log(`VM rules mismatch: the node's VMs run ${mismatch.ours}, the worker's ${mismatch.theirs}: install the same Hostlink release on both`);
      return { error: 'ERROR_INCOMPATIBLE_PROTOCOL_VERSION' };
    }
    const slots = Number(String(metadata.get(SLOTS_METADATA)[0] ?? ''));
    if (!Number.isInteger(slots) || slots < 1 || slots > MAX_WORKER_SLOTS) {
      return refuse(grpc.status.INVALID_ARGUMENT, `metadata ${SLOTS_METADATA} must be an integer from 1 to ${MAX_WORKER_SLOTS}`);
    }
    let address;
    try {
      address = parseAddress(request.server_addr);
    } catch (e) {
      return refuse(grpc.status.INVALID_ARGUMENT, (e as Error).message);
    }
    if (address.kind !== 'tcp') return refuse(grpc.status.INVALID_ARGUMENT, `server_addr must be HOST:PORT reachable from the node (got ${addr})`);
    const instance = String(metadata.get(INSTANCE_METADATA)[0] ?? request.server_addr);
    // Workers that share a certificate (or the token) are one identity: give each its own key to tell them apart.
    const identity = certificate !== undefined ? `certificate sha256 ${certificate.fingerprint256}` : "the node's token";
    try {
      options.launcher.register({ addr: request.server_addr, slots, instance, identity });
    } catch (e) {
      if (e instanceof WorkerAddressHeld) return refuse(grpc.status.PERMISSION_DENIED, e.message);
      if (e instanceof WorkerAddressesFull) return refuse(grpc.status.RESOURCE_EXHAUSTED, e.message);
      if (e instanceof HostlinkError && e.code === 'usage') return refuse(grpc.status.INVALID_ARGUMENT, e.message);
      throw e;
    }
    registered(who, identity);
    return { error: 'ERROR_UNSPECIFIED' };
  };

  const refusals = refusalLog(options.log);
  const handler: grpc.handleUnaryCall<InitializeRequest, InitializeResponse> = (call, callback) => {
    let answer: InitializeResponse | Refusal;
    try {
      answer = check(call);
    } catch (e) {
      answer = { refused: grpc.status.INTERNAL, why: (e as Error).message };
    }
    if ('refused' in answer) {
      callback({ code: answer.refused, details: answer.why });
      return;
    }
    const trailer = new grpc.Metadata();
    trailer.set(NODE_PROTOCOL_METADATA, nodeProtocolVersions());
    trailer.set(VM_SEMANTICS_METADATA, VM_SEMANTICS_TEXT);
    callback(null, answer, trailer);
  };

  // Bounded (message size, streams per connection, session memory): credentials are checked only once a whole
  // message arrived, so whatever grpc-js buffers before that, any stranger who reaches the port can make it hold.
  const server = new grpc.Server(runtimeServerOptions());
  server.addService(runtimeService(), { Initialize: handler });
  // Our own listener admits each connection and hands it to grpc-js (which does TLS and HTTP/2), so that the
  // connections of peers that never register are bounded.
  const injector = server.createConnectionInjector(workerServerCredentials(options.tls));
  /** An open connection: its grpc-js peer, its deadline to register (again), and who registered on it. */
  interface Connection {
    socket: Socket;
    peer: string;
    timer: NodeJS.Timeout | undefined;
    identity: string | undefined;
  }
  const byPeer = new Map<string, Connection>(); // every open connection
  const unregistered = new Set<Connection>(); // oldest first
  const byIdentity = new Map<string, Set<Connection>>(); // registered ones, oldest first
  const all = new Set<Socket>();
  const peerOf = (socket: Socket): string => `${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`; // as grpc-js's getPeer()
  /** (Re)starts the connection's deadline to register. */
  const closeUnlessRegistered = (c: Connection): void => {
    clearTimeout(c.timer);
    c.timer = setTimeout(() => c.socket.destroy(), REGISTER_WITHIN_MS);
    c.timer.unref();
  };
  const forget = (c: Connection): void => {
    clearTimeout(c.timer);
    if (byPeer.get(c.peer) === c) byPeer.delete(c.peer);
    unregistered.delete(c);
    const mine = c.identity === undefined ? undefined : byIdentity.get(c.identity);
    mine?.delete(c);
    if (mine?.size === 0) byIdentity.delete(c.identity!);
  };
  const close = (c: Connection): void => {
    forget(c);
    c.socket.destroy();
  };
  function registered(peer: string, identity: string): void {
    const c = byPeer.get(peer);
    if (c === undefined) return;
    closeUnlessRegistered(c); // until it registers again
    if (c.identity !== undefined) return;
    unregistered.delete(c);
    c.identity = identity;
    const mine = byIdentity.get(identity) ?? new Set<Connection>();
    byIdentity.set(identity, mine);
    mine.add(c);
    if (mine.size > MAX_CONNECTIONS_PER_IDENTITY) close(mine.values().next().value as Connection);
  }
  const front = createServer((socket) => {
    socket.on('error', () => undefined);
    const peer = peerOf(socket);
    // grpc-js names a connection by its remote address and port only: a second connection from the same ones to
    // another address of this node would take the first one's place in the tables and leave it uncounted.
    if (byPeer.has(peer)) return void socket.destroy();
    if (unregistered.size >= MAX_UNREGISTERED_CONNECTIONS) close(unregistered.values().next().value as Connection);
    const c: Connection = { socket, peer, timer: undefined, identity: undefined };
    closeUnlessRegistered(c);
    byPeer.set(peer, c);
    unregistered.add(c);
    all.add(socket);
    socket.once('close', () => {
      all.delete(socket);
      forget(c);
      refusals.closed(peer);
    });
    injector.injectConnection(socket);
  });
  const target = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => {
      injector.destroy();
      reject(new HostlinkError('usage', `cannot serve the worker endpoint on ${target}: ${err.message}`));
    };
    front.once('error', failed);
    front.listen(options.port, options.host, () => {
      front.off('error', failed);
      resolve();
    });
  });
  front.on('error', (err) => options.log(`the worker endpoint's listener failed: ${err.message}`));
  const port = (front.address() as AddressInfo).port;
  const address = options.host.includes(':') ? `[${options.host}]:${port}` : `${options.host}:${port}`;
  let closed: Promise<void> | undefined;
  return {
    address,
    close() {
      closed ??= new Promise((resolve) => {
        front.close();
        for (const socket of all) socket.destroy();
        for (const c of byPeer.values()) clearTimeout(c.timer);
        byPeer.clear();
        unregistered.clear();
        byIdentity.clear();
        refusals.closeAll();
        injector.destroy();
        server.forceShutdown();
        resolve();
      });
      return closed;
    },
  };
}

/**
 * The refusal lines of the endpoint, per connection (keyed by its peer, HOST:PORT as grpc-js's getPeer()): the
 * first refusal is logged in full; later ones on the same connection are counted, and the count, with the last
 * one's reason, is logged when the connection closes (or every REFUSAL_SUMMARY_EVERY_MS while it stays open).
 */
function refusalLog(log: (line: string) => void): { log(peer: string, addr: string, why: string): void; closed(peer: string): void; closeAll(): void } {
  const held = new Map<string, { more: number; last: string; timer: NodeJS.Timeout | undefined }>();
  const summarize = (peer: string): void => {
    const entry = held.get(peer);
    if (entry === undefined || entry.more === 0) return;
    log(`refused ${entry.more} more worker registration(s) from ${peer} on the same connection (the last: ${entry.last})`);
    entry.more = 0;
  };
  return {
    log(peer, addr, why) {
      const entry = held.get(peer);
      if (entry === undefined) {
        held.set(peer, { more: 0, last: '', timer: undefined });
        log(`refused worker registration from ${peer} (${addr}): ${why}`);
        return;
      }
      entry.more++;
      entry.last = `${addr}: ${why}`;
      if (entry.timer === undefined) {
        entry.timer = setInterval(() => summarize(peer), REFUSAL_SUMMARY_EVERY_MS);
        entry.timer.unref();
      }
    },
    closed(peer) {
      summarize(peer);
      clearInterval(held.get(peer)?.timer);
      held.delete(peer);
    },
    closeAll() {
      for (const peer of [...held.keys()]) this.closed(peer);
    },
  };
}
