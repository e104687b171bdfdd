/** `hostlink call (FILE.wasm|HASH) METHOD`: run a contract method through a VM process and apply the outcome. */
import { existsSync, readFileSync } from 'node:fs';
import { HostlinkError } from '../../errors.js';
import { parseLimitOverrides, type VmLimits } from '../../protocol/message.js';
import { runConsensus, type ConsensusReport } from '../../host/consensus.js';
import type { Host, Outcome } from '../../host/host.js';
import { decodeBlockResult, describeBlockResult } from '../../protocol/nondet.js';
import { HOST_OPTIONS, HOST_OPTIONS_HELP, hostOptions, parse, parseId, parseInput, printOutcome, withHost } from '../common.js';

export const usage = `usage: hostlink call (FILE.wasm|HASH) METHOD [--input JSON|@file] [--context ID] [--executor ID] [--gas N]
                     [--validators N] [--fetch-allow ORIGIN]

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
  --validators N        run the call as a leader and N validators, each on its own copy of the state,
                        print every vote and the decision, and apply the call only when a strict
                        majority agrees (a sync replay of the leader's results; docs/nondet.md)
  --fetch-allow ORIGIN  let the contract's fetch reach ORIGIN, e.g. http://127.0.0.1:8080 (repeatable)

${HOST_OPTIONS_HELP}`;

const OPTIONS = {
  ...HOST_OPTIONS,
  input: { type: 'string' },
  context: { type: 'string' },
  executor: { type: 'string' },
  gas: { type: 'string' },
  limit: { type: 'string', multiple: true },
  validators: { type: 'string' },
  'fetch-allow': { type: 'string', multiple: true },
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
  if (/^[0-9a-fA-F]{64}$/.test(target)) {
    const hash = Uint8Array.from(Buffer.from(target, 'hex'));
    if (!host.hasCode(hash)) throw new HostlinkError('not_found', `no contract with hash ${target}: deploy it first`);
    return hash;
  }
  if (!existsSync(target)) throw new HostlinkError('not_found', `${target} is neither a file nor a 64-character code hash`);
  return host.deploy(Uint8Array.from(readFileSync(target)));
}

const resultLine = (o: Outcome): string => (o.result.code === 'return' ? 'Return' : `${o.result.code}: ${o.result.message}`);

function printConsensus(report: ConsensusReport, json: boolean): void {
  const blocks = report.leader.nondetResults.map((b) => {
    const r = decodeBlockResult(b);
    return typeof r === 'string' ? `malformed (${r})` : describeBlockResult(r);
  });
  if (json) {
    const votes = report.votes.map((v) => ({ node: v.node, vote: v.vote, reason: v.reason }));
    process.stdout.write(JSON.stringify({ consensus: { decision: report.decision, tally: report.tally, leader_blocks: blocks, votes } }) + '\n');
    return;
  }
  const hash = (o: Outcome): string => Buffer.from(o.executionHash).toString('hex').slice(0, 16);
  process.stdout.write(`leader: ${resultLine(report.leader)}; blocks [${blocks.join(', ')}]; execution hash ${hash(report.leader)}…\n`);
  for (const v of report.votes) process.stdout.write(`validator ${v.node}: ${v.vote} (${v.reason})\n`);
  const { agree, disagree, timeout } = report.tally;
  process.stdout.write(`decision: ${report.decision} (${agree} agree, ${disagree} disagree, ${timeout} timeout of ${report.votes.length})\n`);
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
  let validators: number | undefined;
  if (values.validators !== undefined) {
    validators = Number(values.validators);
    if (!/^[0-9]+$/.test(values.validators) || validators < 1 || validators > 32) {
      throw new HostlinkError('usage', '--validators must be a whole number from 1 to 32');
    }
  }
  const options = hostOptions(values);
  if (values['fetch-allow'] !== undefined) options.fetch = { allow: values['fetch-allow'] };
  const outcome = await withHost(options, async (host) => {
    const codeHash = await resolveCode(host, target);
    const request = { codeHash, method, input, contextId, executorId, limits, ...(gasLimit !== undefined ? { gasLimit } : {}) };
    if (validators === undefined) return host.call(request);
    const { dataDir: _dir, ...nodeOptions } = options;
    const report = await runConsensus(host.store, request, { validators, hostOptions: nodeOptions });
    printConsensus(report, values.json === true);
    if (report.decision !== 'accepted') return null;
    // Accepted: this node applies the leader's results without running the blocks again.
    return host.call({ ...request, nondet: { leaderResults: report.leader.nondetResults, sync: true } });
  });
  if (outcome === null) return 1;
  printOutcome(outcome, contextId, values.json === true);
  if (!values.json && outcome.crash) process.stderr.write(`  VM stderr:\n${outcome.crash.stderr}\n`);
  return outcome.result.code === 'return' ? 0 : 1;
}
