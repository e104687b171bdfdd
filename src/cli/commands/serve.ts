/** `hostlink serve`: a long-running node over one data directory, with an HTTP API, /metrics and the studio. */
import { HostlinkError } from '../../errors.js';
import { Host } from '../../host/host.js';
import { isLogLevel, jsonLogger } from '../../host/logger.js';
import { MAX_COMMIT_GROUP_MS } from '../../host/options.js';
import { Access, parseListen } from '../../server/access.js';
import { NodeServer, SERVE_DEFAULTS } from '../../server/server.js';
import { checkToken, readTokenFile } from '../../token.js';
import type { RemoteWorkersOptions } from '../../worker/attach.js';
import { DEFAULT_DATA_DIR, HOST_OPTIONS, hostOptions, parse } from '../common.js';
import { writeServeNote } from '../serve-note.js';

export const DEFAULT_LISTEN = '127.0.0.1:7411';

export const usage = `usage: hostlink serve [--data-dir DIR] [--listen HOST:PORT] [--token-file FILE]

Runs a node over one data directory until SIGTERM or SIGINT: an HTTP API (docs/serve.md) to deploy,
call and inspect, server-sent events of outcomes, Prometheus /metrics, /healthz, and the studio at /.
On SIGTERM it stops accepting requests, lets calls in flight finish (each bounded by its deadline),
closes the VMs and the store, and exits 0.

  --listen HOST:PORT    where to listen (default ${DEFAULT_LISTEN}; port 0 picks a free one)
  --token-file FILE     bearer token clients must send (or set HOSTLINK_TOKEN); required when HOST is
                        not a loopback address
  --pool-size N         warm VM processes (default 2)
  --commit-group MS     the longest a finished call's write waits for the calls running beside it, so that
                        their writes share one durable commit (default 4; 0: off)
  --max-calls N         calls and deploys in flight at once; more get 503 (default ${SERVE_DEFAULTS.maxInFlight})
  --max-body BYTES      largest request body (default ${SERVE_DEFAULTS.maxBodyBytes})
  --method-labels N     contract method names with their own metric label (default 32)
  --log-level LEVEL     debug, info, warn or error (default info); JSON lines on stderr
  --data-dir DIR        where code and state live (default ./${DEFAULT_DATA_DIR})
  --transport unix|tcp  how VM processes connect (default unix)
  --mode pool|oneshot   warm VM pool, or one VM process per call (default pool)
  --deadline MS         wall-clock limit of one execution, and the most a request may ask for (default 10000)

remote workers (docs/deploy.md): pool VMs run on \`hostlink worker\` machines instead of here
  --workers-listen HOST:PORT   the TLS Runtime endpoint where workers register (nothing listens without it)
  --workers-cert/--workers-key FILE   this node's certificate and key (PEM), from the operator CA
  --workers-ca FILE            the operator CA: workers must present a certificate it signed, or the token
  --workers-token-file FILE    a token (first line) workers may present instead of a client certificate
  --workers-name NAME          the name in the workers' certificates (default: each worker's address)
  (set --pool-size to the total slots of the workers)`;

const OPTIONS = {
  ...HOST_OPTIONS,
  listen: { type: 'string' },
  'token-file': { type: 'string' },
  'pool-size': { type: 'string' },
  'commit-group': { type: 'string' },
  'max-calls': { type: 'string' },
  'max-body': { type: 'string' },
  'method-labels': { type: 'string' },
  'log-level': { type: 'string' },
  'workers-listen': { type: 'string' },
  'workers-cert': { type: 'string' },
  'workers-key': { type: 'string' },
  'workers-ca': { type: 'string' },
  'workers-token-file': { type: 'string' },
  'workers-name': { type: 'string' },
} as const;

function count(value: string | undefined, name: string, min = 1, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new HostlinkError('usage', `--${name} must be a whole number >= ${min} (got '${value}')`);
  if (n > max) throw new HostlinkError('usage', `--${name} must be at most ${max} (got '${value}')`);
  return n;
}

function token(file: string | undefined): string | undefined {
  if (file !== undefined) return readTokenFile(file);
  const env = process.env['HOSTLINK_TOKEN'];
  return env === undefined || env === '' ? undefined : checkToken(env.trim(), 'HOSTLINK_TOKEN');
}

/** HostOptions.workers from the --workers-* flags; all three TLS files are required with --workers-listen. */
function workersOption(values: Record<string, string | boolean | undefined>): RemoteWorkersOptions | undefined {
  const get = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const listen = get('workers-listen');
  if (listen === undefined) {
    const stray = ['workers-cert', 'workers-key', 'workers-ca', 'workers-token-file', 'workers-name'].find((k) => get(k) !== undefined);
    if (stray !== undefined) throw new HostlinkError('usage', `--${stray} needs --workers-listen HOST:PORT`);
    return undefined;
  }
  const need = (k: string): string => {
    const v = get(k);
    if (v === undefined) throw new HostlinkError('usage', `--workers-listen needs --${k} FILE (TLS is required for remote workers; docs/deploy.md)`);
    return v;
  };
  const token = get('workers-token-file');
  const name = get('workers-name');
  return {
    listen,
    tls: { cert: need('workers-cert'), key: need('workers-key'), ca: need('workers-ca') },
    ...(token !== undefined ? { tokenFile: token } : {}),
    ...(name !== undefined ? { serverName: name } : {}),
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, usage);
  if (positionals.length !== 0) throw new HostlinkError('usage', `unexpected argument '${positionals[0]}'\n${usage}`);
  const level = values['log-level'] ?? 'info';
  if (!isLogLevel(level)) throw new HostlinkError('usage', '--log-level must be debug, info, warn or error');
  const logger = jsonLogger(level);
  const listen = parseListen(values.listen ?? DEFAULT_LISTEN);
  const options = hostOptions(values);
  const poolSize = count(values['pool-size'], 'pool-size');
  const commitGroupMs = count(values['commit-group'], 'commit-group', 0, MAX_COMMIT_GROUP_MS);
  const t = token(values['token-file']);
  const maxInFlight = count(values['max-calls'], 'max-calls');
  const maxBodyBytes = count(values['max-body'], 'max-body');
  const methodLabels = count(values['method-labels'], 'method-labels', 0);
  new Access(listen, t); // refuses a listen address beyond loopback without a token before anything is opened
  const workers = workersOption(values);
  const host = await Host.open({ ...options, logger, ...(poolSize !== undefined ? { poolSize } : {}), ...(commitGroupMs !== undefined ? { commitGroupMs } : {}), ...(workers !== undefined ? { workers } : {}) });
  if (host.remote?.address !== undefined) process.stdout.write(`hostlink serve: workers register at ${host.remote.address} (TLS)\n`);
  let node: NodeServer;
  try {
    node = await NodeServer.start(host, {
      listen,
      logger,
      ...(t !== undefined ? { token: t } : {}),
      ...(maxInFlight !== undefined ? { maxInFlight } : {}),
      ...(maxBodyBytes !== undefined ? { maxBodyBytes } : {}),
      ...(methodLabels !== undefined ? { methodLabels } : {}),
      ...(options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}),
    });
  } catch (e) {
    await host.close();
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new HostlinkError('usage', `${listen.host}:${listen.port} is in use: pick another --listen port`);
    throw e;
  }
  // Other commands on this data directory are refused while it runs: the note lets them name this URL.
  const removeNote = writeServeNote(options.dataDir!, node.url);
  process.stdout.write(`hostlink serve: listening on ${node.url} (data dir ${options.dataDir}); open ${node.url} for the studio\n`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  logger.info('signal received', { signal });
  await node.stop();
  removeNote();
  return 0;
}
