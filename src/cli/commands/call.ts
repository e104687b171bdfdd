/** `hostlink call (FILE.wasm|HASH) METHOD`: run a contract method through a VM process and apply the outcome. */
import { existsSync, readFileSync } from 'node:fs';
import { HostlinkError } from '../../errors.js';
import { parseLimitOverrides, type VmLimits } from '../../protocol/message.js';
import type { CallFinished } from '../../host/events.js';
import type { Host } from '../../host/host.js';
import { round3 } from '../../host/call-trace.js';
import { hex, HOST_OPTIONS, HOST_OPTIONS_HELP, hostOptions, outcomeJson, parse, parseId, parseInput, printOutcome, withHost } from '../common.js';
import { printOutcomeJson, RemoteNode, SERVER_HELP, SERVER_OPTION, serverOf } from '../remote.js';

export const usage = `usage: hostlink call (FILE.wasm|HASH) METHOD [--input JSON|@file] [--context ID] [--executor ID] [--gas N]

Runs METHOD of a contract in a VM process and applies the result to the context's state
(a Return commits its storage changes; any error changes nothing). A FILE.wasm is deployed first.
IDs are 64 hex characters or a name (the id is then SHA-256 of the name). Exit code 0 when the
method returned, 1 when it failed (the error is printed).

  --input JSON|@file    the call input: JSON text, or @path for raw bytes (default: empty)
  --context ID          context to run in (default: the name "default")
  --executor ID         executor public key (default: 32 zero bytes)
  --gas N               gas limit (default 1000000000)
  --limit NAME=VALUE    override a VM limit for this call, e.g. --limit max_logs=10 (repeatable;
                        names in docs/message.md)
${SERVER_HELP}
  --trace               print the outcome as JSON with a "trace": every call run (this one and its
                        follow-ups) with its protocol requests in order, sizes and timings, its message
                        and its storage reads (enough to replay it; docs/metrics.md)

${HOST_OPTIONS_HELP}`;

const OPTIONS = {
  ...HOST_OPTIONS,
  input: { type: 'string' },
  context: { type: 'string' },
  executor: { type: 'string' },
  gas: { type: 'string' },
  limit: { type: 'string', multiple: true },
  trace: { type: 'boolean' },
  ...SERVER_OPTION,
} as const;

/** `--limit max_logs=10` (repeatable) → { max_logs: '10' } (the message's names, as the node's API takes them). */
function rawLimits(items: string[] | undefined): Record<string, string> {
  const raw: Record<string, string> = {};
  for (const item of items ?? []) {
    const m = /^([a-z_]+)=(.*)$/.exec(item);
    if (!m) throw new HostlinkError('usage', `--limit takes NAME=VALUE (got '${item}')`);
    raw[m[1]!] = m[2]!;
  }
  return raw;
}

/** `--limit max_logs=10` (repeatable) → { maxLogs: 10 }, checked by the message's own limit parser. */
function parseLimits(items: string[] | undefined): Partial<VmLimits> {
  const raw = rawLimits(items);
  try {
    return parseLimitOverrides(raw);
  } catch (e) {
    throw new HostlinkError('usage', `--limit: ${(e as Error).message.replace(/^invalid message: field /, '')}`);
  }
}
async function resolveCode(host: Host, target: string): Promise<Uint8Array> {
  if (/^[0-9a-fA-F]{64}$/.test(target)) {
    const hash = Uint8Array.from(Buffer.from(target, 'hex'));
    if (!host.hasCode(hash)) throw new HostlinkError('not_found', `no contract with hash ${target}: deploy it first`);
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
  const contextId = parseId(values.context ?? 'default');
  const executorId = values.executor === undefined ? new Uint8Array(32) : parseId(values.executor);
  let gasLimit: bigint | undefined;
  if (values.gas !== undefined) {
    if (!/^[0-9]+$/.test(values.gas)) throw new HostlinkError('usage', '--gas must be a whole number');
    gasLimit = BigInt(values.gas);
  }
  const limits = parseLimits(values.limit);
  const server = serverOf(values);
  if (server !== undefined) {
    const body = { method, input_hex: hex(input), context: hex(contextId), executor: hex(executorId), limits: rawLimits(values.limit), ...(gasLimit !== undefined ? { gas: gasLimit.toString() } : {}) };
    return callRemote(new RemoteNode(server), target, body, values.json === true, values.trace === true);
  }
  const traced: CallFinished[] = [];
  const outcome = await withHost({ ...hostOptions(values), ...(values.trace ? { traceReads: true } : {}) }, async (host) => {
    const codeHash = await resolveCode(host, target);
    if (values.trace) host.events.on('call.finished', (e) => traced.push(e));
    return host.call({ codeHash, method, input, contextId, executorId, limits, ...(gasLimit !== undefined ? { gasLimit } : {}) });
  });
  if (values.trace) {
    process.stdout.write(JSON.stringify({ ...outcomeJson(outcome, contextId), trace: { calls: traced.map(traceOf) } }) + '\n');
    return outcome.result.code === 'return' ? 0 : 1;
  }
  printOutcome(outcome, contextId, values.json === true);
  if (!values.json && outcome.crash) process.stderr.write(`  VM stderr:\n${outcome.crash.stderr}\n`);
  return outcome.result.code === 'return' ? 0 : 1;
}

/** One call of a `--trace`: which call, its timings, and its protocol requests in order. */
function traceOf(e: CallFinished): Record<string, unknown> {
  const d = e.durations;
  return {
    call_id: e.callId,
    parent_call_id: e.parentCallId,
    method: e.method,
    context: hex(e.contextId),
    result: e.result,
    durations_ms: { queue: round3(d.queueMs), vm: round3(d.vmMs), apply: round3(d.applyMs), total: round3(d.totalMs) },
    round_trips: e.roundTrips,
    host_calls: e.hostCalls,
    requests: e.trace,
    dropped: e.traceDropped,
    // What a replay needs besides the code: the message, and every storage read with its answer.
    message: JSON.parse(e.messageJson) as unknown,
    reads: (e.reads ?? []).map((r) => ({ key: hex(r.key), value: r.value === null ? null : hex(r.value) })),
    reads_complete: e.readsComplete,
  };
}

interface RemoteRecord {
  call_id: number;
  outcome: Record<string, unknown>;
  follow_ups: { call_id?: number; follow_ups?: RemoteRecord['follow_ups'] }[];
}

/** The same call through a running node's API: deploy the file if one is given, call, print as locally. */
async function callRemote(node: RemoteNode, target: string, body: Record<string, unknown>, json: boolean, trace: boolean): Promise<number> {
  let code = target;
  if (!/^[0-9a-fA-F]{64}$/.test(target)) {
    if (!existsSync(target)) throw new HostlinkError('not_found', `${target} is neither a file nor a 64-character code hash`);
    code = (await node.post<{ code_hash: string }>('api/codes', Uint8Array.from(readFileSync(target)), 'application/wasm')).code_hash;
  }
  const record = await node.post<RemoteRecord>('api/calls', { ...body, code });
  const ok = record.outcome['result'] === 'return' ? 0 : 1;
  if (!trace) {
    printOutcomeJson(record.outcome, json);
    return ok;
  }
  // The node keeps each call's trace (not its reads: it does not record them); follow-ups are calls of their own.
  const ids: number[] = [];
  const walk = (r: { call_id?: number; follow_ups?: RemoteRecord['follow_ups'] }): void => {
    if (r.call_id !== undefined) ids.push(r.call_id);
    for (const f of r.follow_ups ?? []) walk(f);
  };
  walk(record);
  const calls = await Promise.all(ids.map((id) => node.get<Record<string, unknown>>(`api/calls/${id}`)));
  process.stdout.write(JSON.stringify({ ...record.outcome, trace: { calls } }) + '\n');
  return ok;
}
