/** Shared by the node-function tests: a Host on LMDB in a temp dir with real VM processes, and JSON calls. */
import assert from 'node:assert/strict';
import { Host, type CallRequest, type HostOptions, type Outcome } from '../../src/host/host.js';
import { tempDir, text, utf8 } from '../helpers.js';

export interface TestHost {
  host: Host;
  dataDir: string;
  close(): Promise<void>;
}

export async function openHost(options: HostOptions = {}): Promise<TestHost> {
  const dir = tempDir('hostlink-node-');
  const t: TestHost = {
    host: await Host.open({ dataDir: dir.path, poolSize: 2, ...options }),
    dataDir: dir.path,
    async close() {
      await this.host.close();
      dir.remove();
    },
  };
  return t;
}

/** Calls a method with a JSON input; returns the outcome. */
export function callJson(host: Host, codeHash: Uint8Array, method: string, input: unknown, extra: Partial<CallRequest> & { contextId: Uint8Array }): Promise<Outcome> {
  return host.call({ codeHash, method, input: utf8(JSON.stringify(input)), ...extra });
}

/** The JSON value a call returned (asserting it returned). */
export function jsonOf(o: Outcome): unknown {
  assert.equal(o.result.code, 'return', JSON.stringify(o.result));
  const v = (o.result as { value: unknown }).value;
  return JSON.parse(v instanceof Uint8Array ? text(v) : String(v));
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const fromHex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
