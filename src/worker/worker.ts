/**
 * `hostlink worker`: a machine that runs VMs for a node elsewhere.
 *
 * It listens for the node's slot connections (TLS, src/worker/slot-server.ts), then registers with the node's
 * Runtime endpoint (gRPC `Runtime.Initialize` over TLS: its protocol version, the address it serves, and its
 * slot count in metadata `hostlink-slots`, plus `authorization: Bearer TOKEN` when it has a token). It calls
 * Initialize again every heartbeat: a node that restarted (empty slot table) learns about the worker again
 * within one heartbeat, and the node drops a worker it has not heard from. It also announces the gas schedule and
 * instrumentation its VMs run by (metadata `hostlink-vm-semantics`), which a node of another release refuses. When
 * the node cannot be reached the worker retries with a growing backoff and says so. A version mismatch or a
 * credential refusal is final: the worker prints why, naming both versions for a mismatch, and exits non-zero.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from '../protocol/generated.js';
import { semanticsMismatch, VM_SEMANTICS_TEXT } from '../protocol/vm-semantics.js';
import { MAX_SERVER_ADDR_BYTES, runtimeService, type InitializeRequest, type InitializeResponse } from '../runtime/grpc.js';
import type { LaunchOptions } from '../host/supervisor.js';
import { HostlinkError } from '../errors.js';
import { parseAddress } from '../transport/address.js';
import { isUnspecifiedHost, unspecifiedWorkerAddress } from './address.js';
import { INSTANCE_METADATA, NODE_PROTOCOL_METADATA, SLOTS_METADATA, VM_SEMANTICS_METADATA } from './endpoint.js';
import { startSlotServer, type SlotServer } from './slot-server.js';
import type { TlsMaterial } from './tls.js';

export const WORKER_EXIT = { ok: 0, failure: 1, usage: 2, incompatibleVersion: 3, refused: 4 } as const;

export interface WorkerOptions {
  /** The node's Runtime endpoint, HOST:PORT. */
  runtime: string;
  slots: number;
  listen: { host: string; port: number };
  /**
   * The address the node should dial (server_addr), never the unspecified address (0.0.0.0 or ::, however
   * written); default the listen address, which must then not be it.
   */
  advertise?: string;
  tls: TlsMaterial;
  token?: string;
  /**
   * The name (or IP address) the node's certificate carries; only that certificate (or the token) gets a slot.
   * Default: the host part of `runtime`, which the node's certificate carries already (registration checks it).
   */
  nodeName?: string;
  /** The protocol version announced; default this build's. Only to check what a node answers another release. */
  protocolVersion?: number;
  /** How often registration is renewed. Default 2000 ms (the node drops a worker after 15 s of silence). */
  heartbeatMs?: number;
  killGraceMs?: number;
  idleTimeoutMs?: number;
  launch: Omit<LaunchOptions, 'secret' | 'role'>;
  log: (line: string) => void;
}

export interface RunningWorker {
  readonly slots: SlotServer;
  /** The address announced to the node. */
  readonly advertised: string;
  /** Resolves with the exit code: a final refusal, or WORKER_EXIT.ok after stop(). */
  readonly done: Promise<number>;
  stop(): Promise<void>;
}

const MAX_BACKOFF_MS = 10_000;

/**
 * Why a node answered ERROR_INCOMPATIBLE_PROTOCOL_VERSION, from the versions in its trailing metadata: the
 * protocol version, the VMs' gas schedule and instrumentation, or both. A node of a release before the VM rules
 * were announced sends none of them back, and is named by its protocol versions alone.
 */
export function mismatchReason(announced: number, trailer: grpc.Metadata): string {
  const nodeProtocol = trailer.get(NODE_PROTOCOL_METADATA)[0];
  const nodeRules = trailer.get(VM_SEMANTICS_METADATA)[0];
  const reasons: string[] = [];
  const [min, max] = nodeProtocol === undefined ? [PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX] : String(nodeProtocol).split('..').map(Number);
  const nodeSpeaks = (v: number): boolean => v >= (min ?? NaN) && v <= (max ?? min ?? NaN);
  if (nodeProtocol === undefined || !nodeSpeaks(announced)) {
    reasons.push(`protocol version mismatch: the node speaks ${nodeProtocol === undefined ? 'another version' : String(nodeProtocol)}, this worker ${announced}`);
  }
  const rules = nodeRules === undefined ? undefined : semanticsMismatch(String(nodeRules));
  if (rules !== undefined) reasons.push(`VM rules mismatch: the node's VMs run ${rules.theirs}, this worker's ${rules.ours}`);
  return reasons.length > 0 ? reasons.join('; ') : `the node refused this worker's versions (protocol ${announced}, ${VM_SEMANTICS_TEXT})`;
}
const CALL_DEADLINE_MS = 5000;

type Registration =
  | { kind: 'ok' }
  | { kind: 'mismatch'; why: string }
  | { kind: 'refused'; message: string }
  | { kind: 'unreachable'; message: string };

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const runtime = parseAddress(options.runtime);
  if (runtime.kind !== 'tcp') throw new HostlinkError('usage', `runtime must be HOST:PORT (got ${options.runtime})`);
  const nodeName = options.nodeName ?? runtime.host;
  if (nodeName === '') throw new HostlinkError('usage', 'the node name must not be empty');
  // Checked before anything listens: the node refuses the unspecified address, so announcing it would only end
  // in a refusal after the slot listener had started.
  if (options.advertise !== undefined) {
    const a = parseAddress(options.advertise);
    if (a.kind !== 'tcp') throw new HostlinkError('usage', `advertise must be HOST:PORT (got ${options.advertise})`);
    // The node reads no longer Initialize message: such a worker would retry registering for ever.
    if (Buffer.byteLength(options.advertise) > MAX_SERVER_ADDR_BYTES) {
      throw new HostlinkError('usage', `advertise must be at most ${MAX_SERVER_ADDR_BYTES} bytes (a host name is at most 253)`);
    }
    if (isUnspecifiedHost(a.host)) throw new HostlinkError('usage', unspecifiedWorkerAddress(options.advertise));
  } else if (isUnspecifiedHost(options.listen.host)) {
    throw new HostlinkError(
      'usage',
      `the worker listens on ${options.listen.host}, every address of its machine, which is no address to dial: say with --advertise HOST:PORT where the node reaches it`,
    );
  }
  const slots = await startSlotServer({
    host: options.listen.host,
    port: options.listen.port,
    tls: options.tls,
    slots: options.slots,
    nodeName,
    ...(options.token !== undefined ? { token: options.token } : {}),
    launch: options.launch,
    killGraceMs: options.killGraceMs ?? 500,
    idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
    log: options.log,
  });
  const host = options.listen.host;
  const advertised = options.advertise ?? (host.includes(':') ? `[${host}]:${slots.port}` : `${host}:${slots.port}`);
  const version = options.protocolVersion ?? PROTOCOL_VERSION_MAX;
  const instance = randomUUID();
  const Client = grpc.makeGenericClientConstructor(runtimeService(), 'Runtime');
  const client = new Client(options.runtime, grpc.credentials.createSsl(options.tls.ca, options.tls.key, options.tls.cert));

  let current: grpc.ClientUnaryCall | undefined;
  const register = (): Promise<Registration> =>
    new Promise((resolve) => {
      const metadata = new grpc.Metadata();
      metadata.set(SLOTS_METADATA, String(options.slots));
      metadata.set(INSTANCE_METADATA, instance);
      metadata.set(VM_SEMANTICS_METADATA, VM_SEMANTICS_TEXT);
      if (options.token !== undefined) metadata.set('authorization', `Bearer ${options.token}`);
      let response: InitializeResponse | undefined;
      const request: InitializeRequest = { protocol_version: version, server_addr: advertised };
      const call = (
        client['Initialize'] as unknown as (
          req: InitializeRequest,
          md: grpc.Metadata,
          o: grpc.CallOptions,
          cb: (err: grpc.ServiceError | null, res?: InitializeResponse) => void,
        ) => grpc.ClientUnaryCall
      ).call(client, request, metadata, { deadline: Date.now() + CALL_DEADLINE_MS }, (_err, res) => {
        response = res;
      });
      current = call;
      call.on('status', (status: grpc.StatusObject) => {
        current = undefined;
        if (status.code === grpc.status.OK) {
          if (response?.error === 'ERROR_INCOMPATIBLE_PROTOCOL_VERSION') {
            return resolve({ kind: 'mismatch', why: mismatchReason(version, status.metadata) });
          }
          return resolve({ kind: 'ok' });
        }
        if (status.code === grpc.status.UNAUTHENTICATED || status.code === grpc.status.PERMISSION_DENIED || status.code === grpc.status.INVALID_ARGUMENT) {
          return resolve({ kind: 'refused', message: status.details });
        }
        resolve({ kind: 'unreachable', message: status.details || grpc.status[status.code] || String(status.code) });
      });
    });

  let stopped = false;
  let wakeUp: (() => void) | undefined;
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });

  const loop = async (): Promise<number> => {
    let registered = false;
    let backoff = 500;
    while (!stopped) {
      const r = await register();
      if (stopped) break;
      if (r.kind === 'mismatch') {
        options.log(`the node at ${options.runtime} refused this worker: ${r.why}: install the same Hostlink release on the node and the worker`);
        return WORKER_EXIT.incompatibleVersion;
      }
      if (r.kind === 'refused') {
        options.log(`the node at ${options.runtime} refused this worker: ${r.message}`);
        return WORKER_EXIT.refused;
      }
      if (r.kind === 'ok') {
        if (!registered) options.log(`registered with the node at ${options.runtime}: ${options.slots} slots at ${advertised}`);
        registered = true;
        backoff = 500;
        await sleep(options.heartbeatMs ?? 2000);
        continue;
      }
      if (registered) options.log(`lost the node at ${options.runtime} (${r.message}): registering again`);
      registered = false;
      options.log(`could not register with the node at ${options.runtime} (${r.message}): retrying in ${(backoff / 1000).toFixed(1)} s`);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
    return WORKER_EXIT.ok;
  };

  const done = loop().then(async (code) => {
    stopped = true;
    client.close();
    await slots.close();
    return code;
  });

  return {
    slots,
    advertised,
    done,
    async stop() {
      stopped = true;
      wakeUp?.();
      current?.cancel();
      await done;
    },
  };
}
