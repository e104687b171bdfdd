/**
 * The demo's third part: the oracle example agreed by a panel of validators. A local HTTP server plays the
 * web: it quotes a price that moves a little on every request, and one of the requests gets a price far off,
 * so one node's validator disagrees while the majority accepts. The accepted call is then applied to the
 * demo's own state with a sync replay of the leader's results.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { HostlinkError } from '../../errors.js';
import type { SandboxMode } from '../../host/sandbox/plan.js';
import { runConsensus, type ConsensusReport } from '../../host/consensus.js';
import type { Host } from '../../host/host.js';
import { HOSTLINK_BIN } from '../../host/supervisor.js';
import { decodeBlockResult, describeBlockResult } from '../../protocol/nondet.js';
import { hex, parseId, showBytes } from '../common.js';

/** Quotes 100 plus a small move per request; request number `outlier` gets 180 instead. */
function startQuoteServer(outlier: number): Promise<Server> {
  let n = 0;
  const server = createServer((req, res) => {
    n++;
    if (req.url === '/price') res.end(n === outlier ? '180.00' : (100 + (n % 5) * 0.1).toFixed(2));
    else if (req.url === '/page') res.end('Hostlink oracle page, the same for everyone');
    else res.writeHead(404).end('not found');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function showReport(say: (s: string) => void, what: string, report: ConsensusReport): void {
  const blocks = report.leader.nondetResults.map((b) => {
    const r = decodeBlockResult(b);
    return typeof r === 'string' ? r : describeBlockResult(r);
  });
  say(`  ${what}: leader proposed ${blocks.join(', ')}`);
  for (const v of report.votes) say(`    validator ${v.node}: ${v.vote.padEnd(8)} ${v.reason}`);
  const t = report.tally;
  say(`    decision: ${report.decision} (${t.agree} agree, ${t.disagree} disagree, ${t.timeout} timeout)`);
}

export async function runOracleDemo(host: Host, say: (s: string) => void, sandbox: SandboxMode): Promise<void> {
  const wasm = join(HOSTLINK_BIN, '..', '..', 'examples', 'oracle', 'build', 'oracle.wasm');
  if (!existsSync(wasm)) throw new HostlinkError('not_found', `${wasm} is missing: run npm install (it builds the examples)`);
  // Request 1 is the leader's; the outlier lands on one of the five validators (requests 2..6).
  const server = await startQuoteServer(4);
  try {
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const codeHash = await host.deploy(Uint8Array.from(readFileSync(wasm)));
    const contextId = parseId('demo-oracle');
    say(`  deployed oracle.wasm as ${hex(codeHash).slice(0, 16)}…; a local quote server at ${origin}`);
    const nodes = { validators: 5, hostOptions: { fetch: { allow: [origin] }, sandbox } };
    for (const [method, path] of [['update_price', '/price'], ['update_page', '/page']] as const) {
      const request = { codeHash, method, input: Uint8Array.from(Buffer.from(JSON.stringify({ url: origin + path }))), contextId };
      const report = await runConsensus(host, request, nodes);
      showReport(say, method, report);
      if (report.decision !== 'accepted') continue;
      const applied = await host.call({ ...request, nondet: { leaderResults: report.leader.nondetResults, sync: true }, acceptedExecutionHash: report.leader.executionHash });
      const value = applied.result.code === 'return' && applied.result.value instanceof Uint8Array ? showBytes(applied.result.value) : applied.result.code;
      say(`    applied here by sync replay (no fetch): ${value}; same execution hash as the leader: ${Buffer.compare(applied.executionHash, report.leader.executionHash) === 0}`);
    }
  } finally {
    server.close();
  }
}
