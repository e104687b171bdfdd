/** `hostlink call (FILE.wasm|HASH) METHOD`: run a contract method through a VM process and apply the outcome. */
import { existsSync, readFileSync } from 'node:fs';
import { HostlinkError } from '../../errors.js';
import { parseLimitOverrides, type VmLimits } from '../../protocol/message.js';
import type { Host } from '../../host/host.js';
import { HOST_OPTIONS, HOST_OPTIONS_HELP, hostOptions, ID_HELP, parse, parseId, parseInput, printOutcome, withHost } from '../common.js';
import { datetimeToNanos } from '../../protocol/message.js';

export const usage = `usage: hostlink call (FILE.wasm|HASH) METHOD [--input JSON|@file] [--context ID] [--executor ID] [--gas N]

Runs METHOD of a contract in a VM process and applies the result to the context's state
(a Return commits its storage changes; any error changes nothing). A FILE.wasm is deployed first.
Exit code 0 when the method returned, 1 when it failed (the error is printed).

  --input JSON|@file    the call input: JSON text, or @path for raw bytes (default: empty)
  --context ID          context to run in (default: the name "default")
  --executor ID         executor public key (default: 32 zero bytes)
  --gas N               gas limit (default 1000000000)
  --limit NAME=VALUE    override a VM limit for this call, e.g. --limit max_logs=10 (repeatable;
                        names in docs/message.md)
  --datetime TIME       block time the contract sees (RFC 3339, e.g. 2025-01-01T00:00:00Z)
  --seed ID             seed of random_bytes (an ID as below; default: none)
  --view                run without applying anything (the same as hostlink view)

${ID_HELP}

${HOST_OPTIONS_HELP}`;

const OPTIONS = {
  ...HOST_OPTIONS,
  input: { type: 'string' },
  context: { type: 'string' },
  executor: { type: 'string' },
  gas: { type: 'string' },
  limit: { type: 'string', multiple: true },
  datetime: { type: 'string' },
  seed: { type: 'string' },
  view: { type: 'boolean' },
} as const;

/** `--limit max_logs=10` (repeatable) → { maxLogs: 10 }, checked by the message's own limit parser. */
function parseLimits(items: string[] | undefined): Partial<VmLimits> {
  const raw: Record<string, string> = {};
  for (const item of items ?? []) {
    const m = /^([a-z_]+)=(.*)$/.exec(item);
    if (!m) throw new HostlinkError('usage', `--limit takes NAME=VALUE (got '${item}')`);
    raw[m[1]!] = m[2]!;
  }
  try {
    return parseLimitOverrides(raw);
  } catch (e) {
    throw new HostlinkError('usage', `--limit: ${(e as Error).message.replace(/^invalid message: field /, '')}`);
  }
}
async function resolveCode(host: Host, target: string): Promise<Uint8Array> {
  const hashMatch = /^(?:0x)?([0-9a-fA-F]{64})$/.exec(target);
  if (hashMatch && !existsSync(target)) {
    const hash = Uint8Array.from(Buffer.from(hashMatch[1]!, 'hex'));
    if (!host.hasCode(hash)) throw new HostlinkError('not_found', `no contract with hash ${hashMatch[1]}: deploy it first (hostlink codes lists the deployed ones)`);
    return hash;
  }
  if (!existsSync(target)) throw new HostlinkError('not_found', `${target} is neither a file nor a 64-character code hash`);
  return host.deploy(Uint8Array.from(readFileSync(target)));
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, usage);
  if (positionals.length !== 2) throw new HostlinkError('usage', `expected a contract and a METHOD\n${usage}`);
  const [target, method] = positionals as [string, string];
  const input = parseInput(values.input);
  const contextId = parseId(values.context ?? 'default', '--context');
  const executorId = values.executor === undefined ? new Uint8Array(32) : parseId(values.executor, '--executor');
  const seed = values.seed === undefined ? undefined : parseId(values.seed, '--seed');
  if (values.datetime !== undefined) {
    try {
      datetimeToNanos(values.datetime, '--datetime');
    } catch (e) {
      throw new HostlinkError('usage', `${(e as Error).message.replace(/^invalid message: field /, '')} (write e.g. 2025-01-01T00:00:00Z)`);
    }
  }
  let gasLimit: bigint | undefined;
  if (values.gas !== undefined) {
    if (!/^[0-9]+$/.test(values.gas)) throw new HostlinkError('usage', '--gas must be a whole number');
    gasLimit = BigInt(values.gas);
  }
  const limits = parseLimits(values.limit);
  const outcome = await withHost(hostOptions(values), async (host) => {
    const codeHash = await resolveCode(host, target);
    const request = {
      codeHash, method, input, contextId, executorId, limits,
      ...(gasLimit !== undefined ? { gasLimit } : {}),
      ...(values.datetime !== undefined ? { datetime: values.datetime } : {}),
      ...(seed !== undefined ? { seed } : {}),
    };
    return values.view ? host.view(request) : host.call(request);
  });
  printOutcome(outcome, contextId, values.json === true, values.view === true);
  if (!values.json && outcome.crash) process.stderr.write(`  VM stderr:\n${outcome.crash.stderr}\n`);
  return outcome.result.code === 'return' ? 0 : 1;
}
