/**
 * Remote workers for a Host (HostOptions.workers): the Runtime endpoint where workers register, and the
 * remote launcher the pool starts its VMs through. Nothing listens unless the embedder configures this, and
 * then only on the address given, with TLS.
 */
import type { HostEvents } from '../host/events.js';
import type { HostLogger } from '../host/logger.js';
import type { WorkerEndpoint } from './endpoint.js';
import { remoteLauncher, type RemoteLauncher } from './remote-launcher.js';
import { readTokenFile } from '../token.js';
import { readTlsFiles, type TlsFiles, type TlsMaterial } from './tls.js';
import { HostlinkError } from '../errors.js';
import { parseListen } from './listen.js';

export interface RemoteWorkersOptions {
  /** Where the Runtime endpoint for workers listens, HOST:PORT (port 0: a free one). */
  listen: string;
  /** PEM files: the node's certificate and key, and the CA that signed the workers' certificates. */
  tls: TlsFiles;
  /** A file whose first line is the token workers may present instead of a client certificate. */
  tokenFile?: string;
  /** The name in the workers' certificates, when they are not issued for the addresses workers announce. */
  serverName?: string;
  /** How long a pool launch waits for a free remote slot (default 30 000 ms). */
  slotWaitMs?: number;
}

export interface RemoteWorkers {
  readonly launcher: RemoteLauncher;
  /** Resolves once the endpoint listens; rejects when it cannot (the address is in use, bad TLS files). */
  readonly ready: Promise<void>;
  /** The endpoint's bound address (HOST:PORT) once ready. */
  readonly address: string | undefined;
  close(): Promise<void>;
}

export function attachRemoteWorkers(options: RemoteWorkersOptions, logger: HostLogger, events?: HostEvents): RemoteWorkers {
  let tls: TlsMaterial;
  let token: string | undefined;
  try {
    tls = readTlsFiles(options.tls);
    token = options.tokenFile !== undefined ? readTokenFile(options.tokenFile) : undefined;
  } catch (e) {
    // Name the option: the embedder sees which part of HostOptions to fix.
    throw new HostlinkError('usage', `HostOptions.workers: ${(e as Error).message}`);
  }
  const listen = parseListen(options.listen, 'workers.listen');
  // Refusals and dropped workers are for the operator's attention; registrations are routine.
  const log = (line: string): void => (/^(refused|dropped)/.test(line) ? logger.warn(`workers: ${line}`) : logger.info(`workers: ${line}`));
  const launcher = remoteLauncher({
    tls,
    ...(token !== undefined ? { token } : {}),
    ...(options.serverName !== undefined ? { serverName: options.serverName } : {}),
    ...(options.slotWaitMs !== undefined ? { slotWaitMs: options.slotWaitMs } : {}),
    log,
    ...(events !== undefined ? { events } : {}),
  });
  let endpoint: WorkerEndpoint | undefined;
  // The gRPC packages are loaded only here: a Host without workers (every CLI command, every test) does not pay for them.
  const ready = import('./endpoint.js')
    .then(({ serveWorkerEndpoint }) => serveWorkerEndpoint({ host: listen.host, port: listen.port, tls, ...(token !== undefined ? { token } : {}), launcher, log }))
    .then((e) => {
    endpoint = e;
    logger.info('workers: Runtime endpoint listening', { address: e.address });
  });
  ready.catch(() => undefined); // Host.open awaits it and reports
  return {
    launcher,
    ready,
    get address() {
      return endpoint?.address;
    },
    async close() {
      await ready.catch(() => undefined);
      await endpoint?.close();
      await launcher.close();
    },
  };
}
