/** Shared by the nondet tests: a Host on LMDB with real VM processes, the nondet test contract, and block results. */
import assert from 'node:assert/strict';
import type { Outcome } from '../../src/host/host.js';
import type { NondetRole } from '../../src/protocol/message.js';
import { encodeBlockResult } from '../../src/protocol/nondet.js';
import { contract, id32, text, utf8 } from '../helpers.js';
import { openHost, type TestHost } from '../node/helpers.js';

export interface NondetHost extends TestHost {
  code: Uint8Array;
  /** Calls `method` of the nondet contract with a text input, in the given role (default: leader). */
  run(method: string, input: string, nondet?: NondetRole, context?: string): Promise<Outcome>;
}

export async function openNondetHost(options: Parameters<typeof openHost>[0] = {}): Promise<NondetHost> {
  // Thousands of blocks in one call take seconds; a loaded machine must not turn them into a timeout.
  const t = await openHost({ deadlineMs: 120_000, ...options });
  const code = await t.host.deploy(contract('nondet'));
  return Object.assign(t, {
    code,
    run: (method: string, input: string, nondet?: NondetRole, context = 'nondet-ctx') =>
      t.host.call({ codeHash: code, method, input: utf8(input), contextId: id32(context), ...(nondet ? { nondet } : {}) }),
  });
}

/** Block results as a leader would propose them. */
export const ret = (s: string): Uint8Array => encodeBlockResult({ code: 'return', data: utf8(s) });
export const userErr = (s: string): Uint8Array => encodeBlockResult({ code: 'user_error', message: s });
export const vmErr = (s: string): Uint8Array => encodeBlockResult({ code: 'vm_error', message: s });

export function returned(o: Outcome): string {
  assert.equal(o.result.code, 'return', JSON.stringify(o.result));
  const v = (o.result as { value: unknown }).value;
  assert.ok(v instanceof Uint8Array);
  return text(v);
}

export function vmError(o: Outcome): string {
  assert.equal(o.result.code, 'vm_error', JSON.stringify(o.result));
  return (o.result as { message: string }).message;
}

export function userError(o: Outcome): string {
  assert.equal(o.result.code, 'user_error', JSON.stringify(o.result));
  return (o.result as { message: string }).message;
}

export const hexes = (list: Uint8Array[]): string[] => list.map((b) => Buffer.from(b).toString('hex'));
