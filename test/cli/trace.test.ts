/**
 * `hostlink call --trace` as a user runs it (a separate process, a data directory, real VMs): the JSON trace
 * lists every call run with its protocol requests in order, and carries enough to replay the execution
 * without the store: the message and every storage read. The replay here runs the same VM code in-process
 * against a backend that knows only the recorded reads, and must give the same result bytes and gas.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { runInProcess } from '../../src/host/in-process.js';
import type { SessionBackend } from '../../src/host/methods.js';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { contractPath, tempDir } from '../helpers.js';

interface TracedCall {
  call_id: number;
  parent_call_id: number | null;
  method: string;
  result: string;
  round_trips: number;
  host_calls: Record<string, { count: number; requestBytes: number; responseBytes: number }>;
  requests: { method: string; requestBytes: number; responseBytes: number; atMs: number; hostMs: number }[];
  message: Record<string, unknown>;
  reads: { key: string; value: string | null }[];
  reads_complete: boolean;
}

function hostlink(cwd: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [HOSTLINK_BIN, ...args], { encoding: 'utf8', cwd });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A backend that answers only what the trace recorded; any other read fails the replay loudly. */
function replayBackend(code: Uint8Array, reads: TracedCall['reads']): SessionBackend {
  const known = new Map(reads.map((r) => [r.key, r.value]));
  return {
    getCode: () => code,
    readState: (_ctx, key) => {
      const k = Buffer.from(key).toString('hex');
      if (!known.has(k)) throw new Error(`the replay read ${k}, which the trace does not have`);
      const v = known.get(k);
      return v === null || v === undefined ? undefined : Uint8Array.from(Buffer.from(v, 'hex'));
    },
  };
}

test('call --trace: requests in order with sizes and timings, and a replay from the recorded reads gives the same result', () => {
  const dir = tempDir();
  try {
    const kv = contractPath('kv-store');
    assert.equal(hostlink(dir.path, 'call', kv, 'set', '--input', '{"key":"a","value":"first"}', '--context', 'trace').code, 0);
    const r = hostlink(dir.path, 'call', kv, 'set', '--input', '{"key":"a","value":"second"}', '--context', 'trace', '--trace');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { result: string; value: string; gas_used: string; state_root: string; trace: { calls: TracedCall[] } };
    assert.equal(out.result, 'return');
    assert.equal(out.trace.calls.length, 1);
    const call = out.trace.calls[0]!;
    assert.deepEqual([call.method, call.result, call.parent_call_id], ['set', 'return', null]);
    assert.equal(call.requests.length, call.round_trips);
    assert.equal(call.requests.at(-1)!.method, 'consume_result');
    assert.equal(call.requests.filter((q) => q.method === 'storage_read').length, call.host_calls['storage_read']?.count ?? 0);
    assert.ok(call.reads.length >= 1 && call.reads_complete);
    assert.ok(call.reads.some((x) => Buffer.from(x.key, 'hex').toString() === 'e:a' && Buffer.from(x.value ?? '', 'hex').toString() === 'first'), 'the read of the old value');

    // Replay: same code, the recorded message and reads; nothing else.
    const end = runInProcess(replayBackend(Uint8Array.from(readFileSync(kv)), call.reads), JSON.stringify(call.message));
    assert.equal(end.kind, 'result');
    if (end.kind !== 'result') return;
    assert.equal(end.result.code, 'return');
    assert.equal(end.result.code === 'return' && Buffer.from(end.result.value as Uint8Array).toString(), out.value);
    assert.equal(end.effects.gasUsed.toString(), out.gas_used);
    assert.ok(end.effects.writes.some(([k, v]) => Buffer.from(k).toString() === 'e:a' && Buffer.from(v ?? []).toString() === 'second'));

    // Follow-ups are traced too, each naming its parent.
    const f = hostlink(dir.path, 'call', contractPath('followups'), 'emit_handled', '--input', '"x"', '--context', 'trace-f', '--trace');
    const calls = (JSON.parse(f.stdout) as { trace: { calls: TracedCall[] } }).trace.calls;
    assert.deepEqual(calls.map((c) => [c.method, c.parent_call_id]), [['emit_handled', null], ['on_event', calls[0]!.call_id]]);
  } finally {
    dir.remove();
  }
});
