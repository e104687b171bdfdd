/** `hostlink serve`: a long-running node over one data directory, with an HTTP API, /metrics and the studio. */
import { readFileSync } from 'node:fs';
import { HostlinkError } from '../../errors.js';
import { Host } from '../../host/host.js';
import { isLogLevel, jsonLogger } from '../../host/logger.js';
import { Access, parseListen } from '../../server/access.js';
import { NodeServer, SERVE_DEFAULTS } from '../../server/server.js';
import { DEFAULT_DATA_DIR, HOST_OPTIONS, hostOptions, parse } from '../common.js';

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
  --max-calls N         calls and deploys in flight at once; more get 503 (default ${SERVE_DEFAULTS.maxInFlight})
  --max-body BYTES      largest request body (default ${SERVE_DEFAULTS.maxBodyBytes})
  --method-labels N     contract method names with their own metric label (default 32)
  --log-level LEVEL     debug, info, warn or error (default info); JSON lines on stderr
  --data-dir DIR        where code and state live (default ./${DEFAULT_DATA_DIR})
  --transport unix|tcp  how VM processes connect (default unix)
  --mode pool|oneshot   warm VM pool, or one VM process per call (default pool)
  --deadline MS         wall-clock limit of one execution, and the most a request may ask for (default 10000)`;

const OPTIONS = {
  ...HOST_OPTIONS,
  listen: { type: 'string' },
  'token-file': { type: 'string' },
  'pool-size': { type: 'string' },
  'max-calls': { type: 'string' },
  'max-body': { type: 'string' },
  'method-labels': { type: 'string' },
  'log-level': { type: 'string' },
} as const;

function count(value: string | undefined, name: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new HostlinkError('usage', `--${name} must be a whole number >= ${min} (got '${value}')`);
  return n;
}

function token(file: string | undefined): string | undefined {
  if (file !== undefined) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (e) {
      throw new HostlinkError('usage', `--token-file ${file}: ${(e as Error).message}`);
    }
  }
  const env = process.env['HOSTLINK_TOKEN'];
  return env === undefined || env === '' ? undefined : env;
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
  const t = token(values['token-file']);
  const maxInFlight = count(values['max-calls'], 'max-calls');
  const maxBodyBytes = count(values['max-body'], 'max-body');
  const methodLabels = count(values['method-labels'], 'method-labels', 0);
  new Access(listen, t); // refuses a listen address beyond loopback without a token before anything is opened
  const host = await Host.open({ ...options, logger, ...(poolSize !== undefined ? { poolSize } : {}) });
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
  process.stdout.write(`hostlink serve: listening on ${node.url} (data dir ${options.dataDir}); open ${node.url} for the studio\n`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  logger.info('signal received', { signal });
  await node.stop();
  return 0;
}
