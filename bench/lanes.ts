/**
 * The load every executions bench drives: `lanes` concurrent callers, each awaiting its call before the next,
 * taking kv-store `set` calls from one shared counter until `calls` ran. Each caller has its own context, or
 * with `contexts` below `lanes` callers share them (lane i uses context i mod contexts): one context with 8
 * callers keeps 8 calls queued on it, as a block's transactions are.
 */
import { createHash } from 'node:crypto';
import type { Host } from '../src/host/host.js';

/** A 32-byte id named by a string (contexts of the benches). */
export const id = (s: string): Uint8Array => Uint8Array.from(createHash('sha256').update(s).digest());

/** Runs the calls; wall seconds of the run and how many calls did not return. */
export async function runLanes(host: Host, codeHash: Uint8Array, calls: number, lanes: number, input: (i: number) => Uint8Array, contexts = lanes): Promise<{ seconds: number; failures: number }> {
  let next = 0;
  let failures = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      while (next < calls) {
        const i = next++;
        const o = await host.call({ codeHash, method: 'set', input: input(i), contextId: id(`lane${lane % contexts}`) });
        if (o.result.code !== 'return') failures++;
      }
    }),
  );
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, failures };
}
