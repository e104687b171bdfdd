/**
 * The gRPC `Runtime` service (proto/runtime.proto), both ends: `serveRuntime` for the node (the engine), which
 * learns through Initialize which protocol version a VM speaks and where it serves, and `initialize` for a VM.
 *
 * The client accepts both shapes of answer that exist: ours (`InitializeResponse { error }`) and the production
 * system's (`google.protobuf.Empty` on success, a gRPC status error on a version mismatch). A success is an empty
 * message in both, the same bytes on the wire, so it decodes as `ERROR_UNSPECIFIED` here.
 *
 * Loaded only by the runtime launcher and by a VM started with the engine variable: the gRPC packages cost start-up
 * time that the other ways of running a VM should not pay.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HostlinkError } from '../errors.js';

/** proto/runtime.proto, from dist/src/runtime/ (compiled) or src/runtime/: both are three levels below the root. */
export const RUNTIME_PROTO_PATH = fileURLToPath(new URL('../../../proto/runtime.proto', import.meta.url));
export const RUNTIME_PACKAGE = 'hostlink.runtime.v1';
export const RUNTIME_SERVICE = `${RUNTIME_PACKAGE}.Runtime`;
/** The full method path, for clients that call it generically (`/hostlink.runtime.v1.Runtime/Initialize`). */
export const INITIALIZE_METHOD_PATH = `/${RUNTIME_SERVICE}/Initialize`;

export type RuntimeError = 'ERROR_UNSPECIFIED' | 'ERROR_INCOMPATIBLE_PROTOCOL_VERSION';

export interface InitializeRequest {
  protocol_version: number;
  server_addr: string;
}

export interface InitializeResponse {
  error: RuntimeError;
}

/** Where a Runtime endpoint listens: a TCP host and port (0: ephemeral) or a unix socket path. */
export type RuntimeListen = { tcp: { host: string; port: number } } | { unix: string };

/** What the engine answers one Initialize. Throwing instead answers a gRPC status error with its message. */
export interface InitializeAnswer {
  error?: 'ERROR_INCOMPATIBLE_PROTOCOL_VERSION';
}

export interface ServeRuntimeOptions {
  listen: readonly RuntimeListen[];
  /** Default: insecure (local launches; the VM's secret authenticates the connection that follows). */
  credentials?: grpc.ServerCredentials;
  onInitialize(request: InitializeRequest, metadata: grpc.Metadata): Promise<InitializeAnswer>;
}

export interface RuntimeServer {
  /** The bound addresses, in the order of `listen`, as gRPC targets: `HOST:PORT` or `unix:///path`. */
  readonly addresses: readonly string[];
  /** Stops accepting and ends the open calls. Idempotent. */
  close(): Promise<void>;
}

/**
 * Most bytes a server_addr may have: HOST:PORT (a DNS name is at most 253 bytes, an IPv6 literal 45, the port 5)
 * or unix:///path (a socket path is at most 107 bytes). Rounded up generously; a longer one dials nothing.
 */
export const MAX_SERVER_ADDR_BYTES = 512;
/**
 * Most bytes of one Initialize message a Runtime server reads: protocol_version (a uint32, at most 6 bytes with its
 * tag) and server_addr (at most MAX_SERVER_ADDR_BYTES, plus a 3-byte tag and length). grpc-js's default is 4 MiB,
 * buffered per stream before any handler (or credential check) runs: a stranger held gigabytes of the node with
 * a few hundred streams. A larger message is answered RESOURCE_EXHAUSTED as soon as its length prefix arrives.
 */
export const MAX_INITIALIZE_REQUEST_BYTES = 1024;
/**
 * Streams one connection may have open at once. grpc-js sets no limit; Initialize is one unary call that a
 * worker makes every heartbeat (a VM once), so a handful is plenty and more only multiplies what a peer holds.
 */
export const MAX_RUNTIME_STREAMS = 16;
/** Memory (MiB) one HTTP/2 session may hold: Node's own default, which grpc-js lifts to unlimited. */
const MAX_SESSION_MEMORY_MIB = 10;

/** Options for every Runtime server (serveRuntime and the node's endpoint for workers): what a peer can make it hold. */
export function runtimeServerOptions(): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': MAX_INITIALIZE_REQUEST_BYTES,
    'grpc.max_concurrent_streams': MAX_RUNTIME_STREAMS,
    'grpc-node.max_session_memory': MAX_SESSION_MEMORY_MIB,
  };
}

let loaded: grpc.ServiceDefinition | undefined;

/** The Runtime service definition, loaded once from the shipped .proto. */
export function runtimeService(): grpc.ServiceDefinition {
  if (loaded) return loaded;
  const definition = protoLoader.loadSync(RUNTIME_PROTO_PATH, { keepCase: true, enums: String, longs: Number, defaults: true });
  const service = definition[RUNTIME_SERVICE];
  if (service === undefined || !('Initialize' in service)) {
    throw new HostlinkError('internal', `${RUNTIME_PROTO_PATH} does not define ${RUNTIME_SERVICE}.Initialize`);
  }
  loaded = service as grpc.ServiceDefinition;
  return loaded;
}

function target(listen: RuntimeListen): string {
  if ('unix' in listen) return `unix://${listen.unix}`;
  const { host, port } = listen.tcp;
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function bind(server: grpc.Server, listen: RuntimeListen, credentials: grpc.ServerCredentials): Promise<string> {
  return new Promise((resolve, reject) => {
    server.bindAsync(target(listen), credentials, (err, port) => {
      if (err) return reject(new HostlinkError('usage', `cannot serve the Runtime endpoint on ${target(listen)}: ${err.message}`));
      if ('unix' in listen) return resolve(`unix://${listen.unix}`);
      const host = listen.tcp.host;
      resolve(`${host.includes(':') ? `[${host}]` : host}:${port}`);
    });
  });
}

/** Serves Runtime on every `listen` address; rejects (and binds nothing) when one cannot be bound. */
export async function serveRuntime(options: ServeRuntimeOptions): Promise<RuntimeServer> {
  // Any local process can reach the loopback port: bounded like the node's endpoint for workers.
  const server = new grpc.Server(runtimeServerOptions());
  const handler: grpc.handleUnaryCall<InitializeRequest, InitializeResponse> = (call, callback) => {
    const request = { protocol_version: call.request.protocol_version >>> 0, server_addr: String(call.request.server_addr) };
    options.onInitialize(request, call.metadata).then(
      // A success leaves `error` unset: zero bytes on the wire, exactly google.protobuf.Empty (proto3 omits defaults,
      // but protobufjs would write an explicitly set 0).
      (answer) => callback(null, answer.error === undefined ? ({} as InitializeResponse) : { error: answer.error }),
      (e: unknown) => {
        // INVALID_ARGUMENT: the request is refused (its address, a call too many); never read as a version mismatch.
        const code = e instanceof HostlinkError && e.code === 'incompatible_version' ? grpc.status.FAILED_PRECONDITION : grpc.status.INVALID_ARGUMENT;
        callback({ code, details: e instanceof Error ? e.message : String(e) });
      },
    );
  };
  server.addService(runtimeService(), { Initialize: handler });
  const credentials = options.credentials ?? grpc.ServerCredentials.createInsecure();
  const addresses: string[] = [];
  try {
    for (const listen of options.listen) addresses.push(await bind(server, listen, credentials));
  } catch (e) {
    server.forceShutdown();
    throw e;
  }
  let closed: Promise<void> | undefined;
  return {
    addresses,
    close() {
      // forceShutdown: a pending Initialize must not hold a launch (or the host's exit) open.
      closed ??= new Promise((resolve) => {
        server.forceShutdown();
        resolve();
      });
      return closed;
    },
  };
}

export interface InitializeOptions {
  /** Default: insecure. */
  credentials?: grpc.ChannelCredentials;
  metadata?: grpc.Metadata;
  /** The whole call, connecting included. */
  deadlineMs: number;
}

export type InitializeOutcome =
  | { ok: true }
  /** The engine refused the version: our shape (error = 1) or the production shape (a status error). */
  | { ok: false; reason: 'incompatible_version'; detail: string };

/**
 * Calls Initialize on the engine at `engineAddr` (`HOST:PORT` or `unix:///path`). Resolves `{ ok: true }` for a
 * success in either shape, `{ ok: false }` for a refusal in either shape; throws HostlinkError for an engine that
 * cannot be reached in time ('timeout', 'channel_closed') or that does not serve Runtime ('protocol').
 */
export function initialize(engineAddr: string, request: InitializeRequest, options: InitializeOptions): Promise<InitializeOutcome> {
  const Client = grpc.makeGenericClientConstructor(runtimeService(), 'Runtime');
  const client = new Client(engineAddr, options.credentials ?? grpc.credentials.createInsecure());
  const call = client['Initialize'] as unknown as (
    req: InitializeRequest,
    metadata: grpc.Metadata,
    callOptions: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, res?: InitializeResponse) => void,
  ) => grpc.ClientUnaryCall;
  return new Promise<InitializeOutcome>((resolve, reject) => {
    call.call(client, request, options.metadata ?? new grpc.Metadata(), { deadline: Date.now() + options.deadlineMs }, (err, res) => {
      if (err === null) {
        if (res?.error === 'ERROR_INCOMPATIBLE_PROTOCOL_VERSION') {
          return resolve({ ok: false, reason: 'incompatible_version', detail: 'the engine answered ERROR_INCOMPATIBLE_PROTOCOL_VERSION' });
        }
        if (res !== undefined && res.error !== 'ERROR_UNSPECIFIED') {
          // An enum value this build does not know: a refusal all the same, never a success.
          return reject(new HostlinkError('protocol', `the engine answered Initialize with unknown error ${String(res.error)}`));
        }
        return resolve({ ok: true });
      }
      const failure = statusFailure(err, engineAddr, options.deadlineMs);
      if (failure !== undefined) return reject(failure);
      resolve({ ok: false, reason: 'incompatible_version', detail: err.details || grpc.status[err.code] || String(err.code) });
    });
  }).finally(() => client.close());
}

/**
 * A version refusal in the production shape: a plain error from the engine's handler, which gRPC carries as
 * UNKNOWN (FAILED_PRECONDITION: a typed one). Transport failures (UNAVAILABLE, DEADLINE_EXCEEDED, ...) decided
 * nothing, and INVALID_ARGUMENT refuses the request itself (e.g. its address), not the version.
 */
function isRefusal(err: grpc.ServiceError): boolean {
  return err.code === grpc.status.UNKNOWN || err.code === grpc.status.FAILED_PRECONDITION;
}

/** The HostlinkError for a status that is not a refusal; undefined for a refusal (the caller resolves instead). */
function statusFailure(err: grpc.ServiceError, engineAddr: string, deadlineMs: number): HostlinkError | undefined {
  if (isRefusal(err)) return undefined;
  if (err.code === grpc.status.DEADLINE_EXCEEDED) {
    return new HostlinkError('timeout', `the engine at ${engineAddr} did not answer Initialize within ${deadlineMs} ms`);
  }
  if (err.code === grpc.status.INVALID_ARGUMENT || err.code === grpc.status.PERMISSION_DENIED) {
    return new HostlinkError('protocol', `the engine at ${engineAddr} refused Initialize: ${err.details}`);
  }
  if (err.code === grpc.status.UNIMPLEMENTED) {
    return new HostlinkError('protocol', `the engine at ${engineAddr} does not serve ${RUNTIME_SERVICE}: ${err.details}`);
  }
  return new HostlinkError('channel_closed', `the engine at ${engineAddr} could not be reached: ${err.details || grpc.status[err.code]}`);
}
