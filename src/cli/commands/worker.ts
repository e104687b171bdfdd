/** `hostlink worker`: run VM slots for a node on another machine (src/worker/worker.ts, docs/deploy.md). */
import { HostlinkError } from '../../errors.js';
import { parseAddress } from '../../transport/address.js';
import { isUnspecifiedHost } from '../../worker/address.js';
import { parseListen } from '../../worker/listen.js';
import { readTokenFile } from '../../token.js';
import { readTlsFiles } from '../../worker/tls.js';
import { startWorker, WORKER_EXIT } from '../../worker/worker.js';
import { cliSandbox, parse } from '../common.js';

export const DEFAULT_WORKER_LISTEN = '127.0.0.1:7420';

export const usage = `usage: hostlink worker --runtime HOST:PORT --slots N --cert FILE --key FILE --ca FILE
                       [--listen HOST:PORT] [--advertise HOST:PORT] [--token-file FILE] [--node-name NAME]

Runs up to N VMs at once for a node on another machine. The worker listens for the node's connections
(TLS) on --listen, then registers with the node's Runtime endpoint (--runtime, the node's
--workers-listen) over TLS, announcing its protocol version, the address to dial and N slots. For each
connection the node opens it starts one sandboxed VM here, with the secret the node sends, and relays the
VM's protocol connection; the node checks the VM's proof itself. When the node's connection ends the VM
gets SIGTERM, then SIGKILL after the grace. Registration is renewed every 2 s; when the node is down or
restarts the worker retries with a growing backoff and registers again. Stops on SIGTERM or SIGINT.

  --runtime HOST:PORT   the node's Runtime endpoint for workers
  --slots N             VMs this machine runs at once (each up to the per-VM memory limit)
  --cert/--key FILE     this worker's certificate and key (PEM), signed by the operator CA: the node
                        verifies it when it connects; it is also the client certificate for registering
  --ca FILE             the operator CA (PEM) that signed the node's and the workers' certificates
  --token-file FILE     a token (first line) to present instead of a client certificate the node's CA
                        signed, and to require of a node without the node's certificate
  --node-name NAME      the name (or IP address) in the node's certificate: only a client certificate from
                        the CA that carries it (or the token) gets this worker's slots, so another worker's
                        certificate does not (default: the host of --runtime, which the node's certificate
                        carries already)
  --listen HOST:PORT    where the node connects (default ${DEFAULT_WORKER_LISTEN}; port 0 picks one)
  --advertise HOST:PORT the address the node should dial: an address of this machine the node reaches
                        (default the --listen address; required when --listen is a wildcard such as
                        0.0.0.0 or [::]; never the wildcard itself, which the node refuses)
  --kill-grace MS       SIGTERM to SIGKILL (default 500)
  --idle-timeout MS     no byte from the node or the VM for this long ends the slot (default 300000;
                        keep it above the node's deadline and pool idle timeout)
  --transport unix|tcp  how each VM connects to this worker locally (default unix)
  --sandbox MODE        required|best-effort|off: the VMs' OS sandbox (as for hostlink serve)
  --protocol-version N  announce another protocol version (to check what a node of another release says)

exit codes: 0 stopped by a signal, 1 internal failure, 2 bad arguments, 3 the node is of another release
            (its protocol version, gas schedule or instrumentation differs), 4 the node refused this worker's
            credentials`;

const OPTIONS = {
  runtime: { type: 'string' },
  slots: { type: 'string' },
  listen: { type: 'string' },
  advertise: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
  'token-file': { type: 'string' },
  'node-name': { type: 'string' },
  'kill-grace': { type: 'string' },
  'idle-timeout': { type: 'string' },
  transport: { type: 'string' },
  sandbox: { type: 'string' },
  'protocol-version': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function integer(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = /^[0-9]{1,10}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new HostlinkError('usage', `--${name} must be a whole number from ${min} to ${max} (got '${value}')`);
  return n;
}

function required(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new HostlinkError('usage', `--${name} is required: run hostlink worker --help`);
  return value;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, usage);
  if (values.help) {
    process.stdout.write(usage + '\n');
    return 0;
  }
  if (positionals.length !== 0) throw new HostlinkError('usage', `unexpected argument '${positionals[0]}': run hostlink worker --help`);
  const runtime = required(values.runtime, 'runtime');
  if (parseAddress(runtime).kind !== 'tcp') throw new HostlinkError('usage', `--runtime must be HOST:PORT (got ${runtime})`);
  const slots = integer(required(values.slots, 'slots'), 'slots', 1, 1024)!;
  const listen = parseListen(values.listen ?? DEFAULT_WORKER_LISTEN, '--listen');
  // The advertised address is where the node dials; the unspecified address (0.0.0.0, ::, 0, [::ffff:0.0.0.0] …)
  // names no machine, and the node refuses it.
  if (isUnspecifiedHost(listen.host) && values.advertise === undefined) {
    throw new HostlinkError('usage', `--listen ${values.listen} is a wildcard (every address), which is no address to dial: say with --advertise HOST:PORT where the node reaches this worker`);
  }
  if (values.advertise !== undefined) {
    const advertise = parseAddress(values.advertise);
    if (advertise.kind !== 'tcp') throw new HostlinkError('usage', `--advertise must be HOST:PORT (got ${values.advertise})`);
    if (isUnspecifiedHost(advertise.host)) {
      throw new HostlinkError('usage', `--advertise ${values.advertise} is the unspecified address (0.0.0.0 or ::), which names no machine to dial: give an address of this machine that the node can reach`);
    }
  }
  const tls = readTlsFiles({ cert: required(values.cert, 'cert'), key: required(values.key, 'key'), ca: required(values.ca, 'ca') });
  const token = values['token-file'] !== undefined ? readTokenFile(values['token-file']) : undefined;
  const nodeName = values['node-name']?.replace(/^\[(.*)\]$/, '$1'); // an IPv6 address may come in brackets
  if (nodeName !== undefined && !/^[^\s/[\]]+$/.test(nodeName)) throw new HostlinkError('usage', `--node-name must be a host name or an IP address (got '${nodeName}')`);
  const transport = values.transport ?? 'unix';
  if (transport !== 'unix' && transport !== 'tcp') throw new HostlinkError('usage', '--transport must be unix or tcp');
  const killGraceMs = integer(values['kill-grace'], 'kill-grace', 0, 600_000) ?? 500;
  const idleTimeoutMs = integer(values['idle-timeout'], 'idle-timeout', 1000, 2_147_483_647) ?? 300_000;
  const protocolVersion = integer(values['protocol-version'], 'protocol-version', 0, 0xffffffff);
  const log = (line: string): void => {
    process.stderr.write(`hostlink worker: ${line}\n`);
  };
  // gRPC sets the TLS server name to the node's address when --runtime is an IP, and Node warns (DEP0123) that
  // SNI ignores IPs. Harmless here (the node's certificate is checked against its IP SAN): keep it off the log.
  const emitWarning = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (rest.includes('DEP0123') || (typeof rest[0] === 'object' && (rest[0] as { code?: string } | null)?.code === 'DEP0123')) return;
    (emitWarning as (w: string | Error, ...r: unknown[]) => void)(warning, ...rest);
  }) as typeof process.emitWarning;
  const worker = await startWorker({
    runtime,
    slots,
    listen: { host: listen.host, port: listen.port },
    ...(values.advertise !== undefined ? { advertise: values.advertise } : {}),
    tls,
    ...(token !== undefined ? { token } : {}),
    ...(nodeName !== undefined ? { nodeName } : {}),
    ...(protocolVersion !== undefined ? { protocolVersion } : {}),
    killGraceMs,
    idleTimeoutMs,
    launch: { transport, sandbox: cliSandbox(values.sandbox) },
    log,
  }).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new HostlinkError('usage', `${values.listen ?? DEFAULT_WORKER_LISTEN} is in use: pick another --listen port`);
    throw e;
  });
  log(`serving ${slots} slots on ${worker.slots.address} (announced as ${worker.advertised})`);
  const onSignal = (): void => {
    log('signal received: stopping the VMs');
    void worker.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const code = await worker.done;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return code === WORKER_EXIT.ok ? 0 : code;
}
