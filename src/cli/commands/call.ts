/** `hostlink call (FILE.wasm|HASH) METHOD`: run a contract method through a VM process and apply the outcome. */
import { existsSync } from 'node:fs';
import { HostlinkError } from '../../errors.js';
import { DEFAULT_LIMITS, parseLimitOverrides, type VmLimits } from '../../protocol/message.js';
import { isMethodName, methodNameRule } from '../../protocol/method-name.js';
import type { CallFinished } from '../../host/events.js';
import type { ConsensusReport } from '../../host/consensus.js';
import type { Host, Outcome } from '../../host/host.js';
import { round3 } from '../../host/call-trace.js';
import { decodeBlockResult, describeBlockResult } from '../../protocol/nondet.js';
import { cliHintContext, hex, HOST_OPTIONS, HOST_OPTIONS_HELP, hostOptions, ID_HELP, namingFile, outcomeJson, parse, parseDeadline, parseGas, parseId, parseInput, printJson, printOutcome, readContractArg, withHost } from '../common.js';
import { printOutcomeJson, RemoteNode, SERVER_HELP, SERVER_OPTION, serverOf } from '../remote.js';
import { logText } from '../../terminal-text.js';
import { datetimeToNanos, DEFAULT_GAS_LIMIT } from '../../protocol/message.js';

/** The options call and view share (view has no --validators and no --view). */
export const RUN_OPTIONS_HELP = `  --input JSON|@file    the call input: JSON text, or @path for raw bytes (default: empty)
  --context ID          context to run in (default: the name "default")
  --executor ID         executor public key (default: 32 zero bytes)
  --gas N               gas limit (default ${DEFAULT_GAS_LIMIT})
  --limit NAME=VALUE    override a VM limit for this call, e.g. --limit max_logs=10 (repeatable;
                        names in docs/message.md)
${SERVER_HELP}
  --trace               print the outcome as JSON with a "trace": every call run (this one and its
                        follow-ups) with its protocol requests in order, sizes and timings, its message
                        and its storage reads (enough to replay it; docs/metrics.md)`;

export const LOCAL_RUN_OPTIONS_HELP = `  --fetch-allow ORIGIN  let the contract's fetch reach ORIGIN, e.g. http://127.0.0.1:8080 (repeatable)
  --datetime TIME       block time the contract sees (RFC 3339, e.g. 2025-01-01T00:00:00Z)
  --seed ID             seed of random_bytes (an ID as below; default: none)`;

export const usage = `usage: hostlink call (FILE.wasm|HASH) METHOD [--input JSON|@file] [--context ID] [--executor ID] [--gas N]
                     [--validators N] [--fetch-allow ORIGIN]

Runs METHOD of a contract in a VM process and applies the result to the context's state
(a Return commits its storage changes; any error changes nothing). A FILE.wasm is deployed first.
Exit code 0 when the method returned, 1 when it failed (the error is printed).

${RUN_OPTIONS_HELP}
  --validators N        run the call as a leader and N validators, each on its own copy of the state,
                        print every vote and the decision, and apply the call only when a strict
                        majority agrees (a sync replay of the leader's results; docs/nondet.md)
${LOCAL_RUN_OPTIONS_HELP}
  --view                run without applying anything (the same as hostlink view)
  (--validators, --fetch-allow, --datetime and --seed run on this machine: not with --server)

${ID_HELP}

${HOST_OPTIONS_HELP}`;

export const OPTIONS = {
  ...HOST_OPTIONS,
  input: { type: 'string' },
  context: { type: 'string' },
  executor: { type: 'string' },
  gas: { type: 'string' },
  limit: { type: 'string', multiple: true },
  trace: { type: 'boolean' },
  ...SERVER_OPTION,
  validators: { type: 'string' },
  'fetch-allow': { type: 'string', multiple: true },
  datetime: { type: 'string' },
  seed: { type: 'string' },
  view: { type: 'boolean' },
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
  const hashMatch = /^(?:0x)?([0-9a-fA-F]{64})$/.exec(target);
  if (hashMatch && !existsSync(target)) {
    const hash = Uint8Array.from(Buffer.from(hashMatch[1]!, 'hex'));
    if (!host.hasCode(hash)) throw new HostlinkError('not_found', `no contract with hash ${hashMatch[1]}: deploy it first (hostlink codes lists the deployed ones)`);
    return hash;
  }
  return namingFile(target, host.deploy(readContractArg(target)));
}

const resultLine = (o: Outcome): string => (o.result.code === 'return' ? 'Return' : `${o.result.code}: ${logText(o.result.message)}`);

function printConsensus(report: ConsensusReport, json: boolean): void {
  const blocks = report.leader.nondetResults.map((b) => {
    const r = decodeBlockResult(b);
    return typeof r === 'string' ? `malformed (${r})` : describeBlockResult(r);
  });
  if (json) {
    const votes = report.votes.map((v) => ({ node: v.node, vote: v.vote, reason: v.reason }));
    printJson({ consensus: { decision: report.decision, tally: report.tally, leader_blocks: blocks, votes } });
    return;
  }
  const hash = (o: Outcome): string => Buffer.from(o.executionHash).toString('hex').slice(0, 16);
  process.stdout.write(`leader: ${resultLine(report.leader)}; blocks [${blocks.join(', ')}]; execution hash ${hash(report.leader)}…\n`);
  for (const v of report.votes) process.stdout.write(`validator ${v.node}: ${v.vote} (${logText(v.reason)})\n`);
  const { agree, disagree, timeout } = report.tally;
  process.stdout.write(`decision: ${report.decision} (${agree} agree, ${disagree} disagree, ${timeout} timeout of ${report.votes.length})\n`);
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
  const gasLimit = parseGas(values.gas);
  const limits = parseLimits(values.limit);
  // The VM would refuse it after starting (a vm_error, exit 1, gas charged); a node refuses it as a bad request.
  const nameLength = limits.maxMethodNameLength ?? DEFAULT_LIMITS.maxMethodNameLength;
  if (!isMethodName(method, nameLength)) {
    throw new HostlinkError('usage', `METHOD ${JSON.stringify(method.length > 80 ? `${method.slice(0, 80)}…` : method)} is not a method name: ${methodNameRule(nameLength)}; hostlink inspect CONTRACT lists a contract's methods`);
  }
  let validators: number | undefined;
  if (values.validators !== undefined) {
    validators = Number(values.validators);
    if (!/^[0-9]+$/.test(values.validators) || validators < 1 || validators > 32) {
      throw new HostlinkError('usage', '--validators must be a whole number from 1 to 32');
    }
  }
  if (validators !== undefined && values.view) throw new HostlinkError('usage', '--validators applies the call when a majority agrees; it cannot be combined with --view');
  const server = serverOf(values);
  if (server !== undefined) {
    const local = [validators !== undefined && '--validators', values['fetch-allow'] !== undefined && '--fetch-allow', values.datetime !== undefined && '--datetime', seed !== undefined && '--seed'].filter((o): o is string => o !== false);
    if (local.length > 0) {
      throw new HostlinkError('usage', `${local.join(', ')} ${local.length === 1 ? 'runs' : 'run'} only on this machine, not through a node: drop --server (or HOSTLINK_SERVER) to use ${local.length === 1 ? 'it' : 'them'}`);
    }
    const deadline = values.deadline === undefined ? undefined : parseDeadline(values.deadline);
    const body = {
      method, input_hex: hex(input), context: hex(contextId), executor: hex(executorId), limits: rawLimits(values.limit),
      ...(gasLimit !== undefined ? { gas: gasLimit.toString() } : {}),
      ...(deadline !== undefined ? { deadline_ms: deadline } : {}),
      ...(values.mode !== undefined ? { mode: values.mode } : {}),
    };
    return callRemote(new RemoteNode(server), target, body, { json: values.json === true, trace: values.trace === true, view: values.view === true, gasLimit, deadlineMs: deadline });
  }
  const options = { ...hostOptions(values), ...(values.trace ? { traceReads: true } : {}) };
  if (values['fetch-allow'] !== undefined) options.fetch = { allow: values['fetch-allow'] };
  const traced: CallFinished[] = [];
  const outcome = await withHost(options, async (host) => {
    const codeHash = await resolveCode(host, target);
    if (values.trace) host.events.on('call.finished', (e) => traced.push(e));
    const request = {
      codeHash, method, input, contextId, executorId, limits,
      ...(gasLimit !== undefined ? { gasLimit } : {}),
      ...(values.datetime !== undefined ? { datetime: values.datetime } : {}),
      ...(seed !== undefined ? { seed } : {}),
    };
    if (validators === undefined) return values.view ? host.view(request) : host.call(request);
    const { dataDir: _dir, ...nodeOptions } = options;
    // Loaded only here: it brings the Host (and the store's native module), which withHost loads once it opens one.
    const { runConsensus } = await import('../../host/consensus.js');
    const report = await runConsensus(host, request, { validators, hostOptions: nodeOptions });
    printConsensus(report, values.json === true);
    if (report.decision !== 'accepted') return null;
    // Accepted: this node applies the leader's results without running the blocks again.
    return host.call({ ...request, nondet: { leaderResults: report.leader.nondetResults, sync: true }, acceptedExecutionHash: report.leader.executionHash });
    // A view of a deployed HASH only reads; a FILE is deployed first, which writes.
  }, values.view && !existsSync(target) ? 'read' : 'write');
  if (outcome === null) return 1;
  if (values.trace) {
    printJson({ ...outcomeJson(outcome, contextId), trace: { calls: traced.map(traceOf) } });
    return callExitCode(outcome);
  }
  printOutcome(outcome, contextId, values.json === true, values.view === true, cliHintContext(gasLimit, options.deadlineMs));
  // A crashed VM's stderr is its own text (a compromised VM writes what it likes): each line shown escaped.
  if (!values.json && outcome.crash) process.stderr.write(`  VM stderr:\n${outcome.crash.stderr.split('\n').map(logText).join('\n')}\n`);
  return callExitCode(outcome);
}

/**
 * 0: the method returned and every follow-up ran; 1: the method failed; 3: it returned, but a follow-up ended by
 * a node failure and the ones after it did not run, so this node's state for the call is incomplete.
 */
function callExitCode(outcome: Outcome): number {
  if (outcome.result.code !== 'return') return 1;
  return outcome.halted === undefined ? 0 : 3;
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

/** The same call through a running node's API: deploy the file if one is given, call (or view), print as locally. */
async function callRemote(
  node: RemoteNode,
  target: string,
  body: Record<string, unknown>,
  o: { json: boolean; trace: boolean; view: boolean; gasLimit: bigint | undefined; deadlineMs: number | undefined },
): Promise<number> {
  let code = target;
  if (!/^[0-9a-fA-F]{64}$/.test(target)) {
    const wasm = readContractArg(target);
    code = (await namingFile(target, node.post<{ code_hash: string }>('api/codes', wasm, 'application/wasm', 'deploying again is safe once the node answers (a contract is stored by its hash)'))).code_hash;
  }
  const context = String(body['context']);
  // A view applies nothing: losing its answer loses nothing, so it is simply run again.
  const record = o.view
    ? await node.post<RemoteRecord>('api/views', { ...body, code }, 'application/json', 'a view applies nothing: run it again once the node answers')
    : await node.post<RemoteRecord>(
        'api/calls',
        { ...body, code },
        'application/json',
        `whether the call was applied is unknown: before calling again, check context ${context} once the node answers (hostlink state ${context} --server ${node.url}, or the node's recent calls: GET ${node.url}api/calls)`,
      );
  // As callExitCode: 3 when the call returned but its follow-ups halted.
  const ok = record.outcome['result'] !== 'return' ? 1 : record.outcome['follow_ups_halted'] === undefined ? 0 : 3;
  if (!o.trace) {
    // Without --deadline the node's own deadline applies, which this side does not know.
    const local = cliHintContext(o.gasLimit, o.deadlineMs);
    const hints = o.deadlineMs !== undefined ? local : { gasLimit: local.gasLimit, gasOption: local.gasOption, deadlineOption: "--deadline MS (up to the node's own hostlink serve --deadline)" };
    printOutcomeJson(record.outcome, o.json, o.view, hints);
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
  printJson({ ...record.outcome, trace: { calls } });
  return ok;
}
