/**
 * `hostlink call --validators N` as a user runs it: a separate process, a data directory on disk, a local HTTP
 * server that answers one validator differently. Every vote is printed; an accepted call is applied.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { contract, contractPath, id32, tempDir, utf8 } from '../helpers.js';
import { openHost } from '../node/helpers.js';

const run = promisify(execFile);

async function hostlink(cwd: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [HOSTLINK_BIN, ...args], { cwd, encoding: 'utf8' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const f = e as { code: number; stdout: string; stderr: string };
    return { code: f.code, stdout: f.stdout, stderr: f.stderr };
  }
}

describe('hostlink call --validators', () => {
  const dir = tempDir();
  const oracle = contractPath('oracle');
  let server: Server;
  let origin: string;
  let requests = 0;
  before(async () => {
    // Request 1 is the leader's; one validator's request gets a price far off.
    server = createServer((_req, res) => {
      requests++;
      res.end(requests === 3 ? '500' : '100');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.close();
    server.closeAllConnections();
    dir.remove();
  });

  test('prints the leader, each vote and the decision, then applies the accepted call', async () => {
    const input = JSON.stringify({ url: `${origin}/price` });
    const r = await hostlink(dir.path, 'call', oracle, 'update_price', '--input', input, '--fetch-allow', origin, '--validators', '3', '--context', 'o', '--deadline', '120000');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^leader: Return; blocks \[Return\("100\.0"\)\]; execution hash [0-9a-f]{16}…$/);
    const votes = lines.filter((l) => l.startsWith('validator '));
    assert.equal(votes.length, 3);
    assert.equal(votes.filter((l) => / agree /.test(l)).length, 2);
    assert.equal(votes.filter((l) => / disagree \(block 0: /.test(l)).length, 1);
    assert.ok(lines.includes('decision: accepted (2 agree, 1 disagree, 0 timeout of 3)'), r.stdout);
    assert.equal(lines.at(-1), '100.0');
    const stored = await hostlink(dir.path, 'call', oracle, 'price', '--context', 'o');
    assert.equal(stored.stdout, '100.0\n');
  });

  test('a rejected call exits 1 and changes nothing; a bad count is a usage error', async () => {
    // The leader's reading (the first request) is the odd one out: every validator rejects it.
    let n = 0;
    const odd = createServer((_req, res) => res.end(String(++n === 1 ? 900 : 100)));
    await new Promise<void>((resolve) => odd.listen(0, '127.0.0.1', resolve));
    const o = `http://127.0.0.1:${(odd.address() as AddressInfo).port}`;
    try {
      const r = await hostlink(dir.path, 'call', oracle, 'update_price', '--input', JSON.stringify({ url: o }), '--fetch-allow', o, '--validators', '2', '--context', 'o2', '--deadline', '120000');
      assert.equal(r.code, 1);
      assert.match(r.stdout, /decision: rejected \(0 agree, 2 disagree, 0 timeout of 2\)/);
      const stored = await hostlink(dir.path, 'call', oracle, 'price', '--context', 'o2');
      assert.equal(stored.stdout, 'null\n');
    } finally {
      odd.close();
      odd.closeAllConnections();
    }
    const bad = await hostlink(dir.path, 'call', oracle, 'price', '--validators', '0');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--validators must be a whole number from 1 to 32/);
  });

  test('an accepted call is applied only as agreed: a sync replay that ends otherwise applies nothing', async () => {
    // One block (its methods log), then the main method logs 60 lines and writes 20,000 bytes. A sync replay runs
    // no block method, so it has the gas the blocks used on top of the leader's: with a gas limit between what
    // the leader needs and what the replay needs, the leader and every validator run out of gas and agree, and
    // the replay returned and applied the write nobody agreed on.
    const input = 'l_leave|v_leave|60|20000|3';
    const t = await openHost({ poolSize: 1, deadlineMs: 120_000 });
    let gas: bigint;
    try {
      const codeHash = await t.host.deploy(contract('nondet'));
      const base = { codeHash, method: 'nd_then', input: utf8(input), contextId: id32('calibrate'), gasLimit: 10_000_000_000n };
      const leader = await t.host.view(base);
      const replay = await t.host.view({ ...base, nondet: { leaderResults: leader.nondetResults, sync: true } });
      assert.ok(replay.gasUsed < leader.gasUsed, `replay ${replay.gasUsed}, leader ${leader.gasUsed}`);
      gas = (leader.gasUsed + replay.gasUsed) / 2n;
    } finally {
      await t.close();
    }
    const file = join(dir.path, 'nd-input.txt');
    writeFileSync(file, input);
    const r = await hostlink(dir.path, 'call', contractPath('nondet'), 'nd_then', '--input', `@${file}`, '--gas', String(gas), '--validators', '3', '--context', 'g', '--deadline', '120000');
    assert.match(r.stdout, /^leader: vm_error: out_of_gas; /m);
    assert.match(r.stdout, /decision: accepted \(3 agree, 0 disagree, 0 timeout of 3\)/);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /replay_diverged the call returned with execution hash [0-9a-f]{64}, not the accepted [0-9a-f]{64}: nothing was applied/);
    const state = await hostlink(dir.path, 'state', 'g');
    assert.equal(state.code, 0, state.stderr);
    assert.match(state.stdout, /\(empty\)/);
  });
});
