/**
 * Cost of non-deterministic blocks and sandboxes, measured in one run next to a plain call of the same contract
 * (test/contracts/nondet) on one warm VM: a block as leader, as validator, replayed by sync, a sandbox, and the
 * in-VM cost of one more block (1000 blocks in one call against none).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host, type CallRequest } from '../src/host/host.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface NondetRow {
  what: string;
  msPerCall: number;
  /** Against the plain call of the same run. */
  ratio: number;
}

export async function benchNondet(calls: number): Promise<{ rows: NondetRow[]; usPerBlock: number }> {
  const host = await Host.open({ poolSize: 1, deadlineMs: 60_000 });
  try {
    const codeHash = await host.deploy(Uint8Array.from(readFileSync(join(ROOT, 'test/contracts/nondet/build/nondet.wasm'))));
    const contextId = Uint8Array.from(createHash('sha256').update('bench-nondet').digest());
    const req = (method: string, input: string, extra: Partial<CallRequest> = {}): CallRequest => ({ codeHash, method, input: Buffer.from(input), contextId, ...extra });
    const leader = await host.call(req('nd', 'l_ret|v_same|x'));
    const cases: [string, CallRequest][] = [
      ['plain call (l_ret)', req('l_ret', 'x')],
      ['one block, leader', req('nd', 'l_ret|v_same|x')],
      ['one block, validator', req('nd', 'l_ret|v_same|x', { nondet: { leaderResults: leader.nondetResults } })],
      ['one block, sync', req('nd', 'l_ret|v_same|x', { nondet: { leaderResults: leader.nondetResults, sync: true } })],
      ['one sandbox', req('sb', 's_ret|x')],
    ];
    const timed = async (r: CallRequest, n: number): Promise<number> => {
      for (let i = 0; i < 3; i++) await host.call(r); // warm: compile every policy variant
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await host.call(r);
      return Number(process.hrtime.bigint() - t0) / 1e6 / n;
    };
    // Rounds interleave the cases and each keeps its best round: the machine is shared, so noise only adds.
    const rounds = 5;
    const ms = cases.map(() => Infinity);
    let many = Infinity;
    let none = Infinity;
    for (let round = 0; round < rounds; round++) {
      for (const [i, [, r]] of cases.entries()) ms[i] = Math.min(ms[i]!, await timed(r, Math.ceil(calls / rounds)));
      many = Math.min(many, await timed(req('nd_many', 'x|x|1000'), 2));
      none = Math.min(none, await timed(req('nd_many', 'x|x|0'), 2));
    }
    return {
      rows: cases.map(([what], i) => ({ what, msPerCall: ms[i]!, ratio: ms[i]! / ms[0]! })),
      usPerBlock: ((many - none) * 1000) / 1000,
    };
  } finally {
    await host.close();
  }
}

export function printNondet(r: { rows: NondetRow[]; usPerBlock: number }): string {
  const lines = ['what                    ms/call   vs plain'];
  for (const row of r.rows) lines.push(`${row.what.padEnd(22)} ${row.msPerCall.toFixed(3).padStart(8)}   ${row.ratio.toFixed(2)}x`);
  lines.push(`one more block inside a call (1000 vs 0 blocks): ${r.usPerBlock.toFixed(0)} us per block (leader)`);
  return lines.join('\n');
}
