/**
 * The execution hash: SHA-256 over everything consensus compares about one execution, so that nodes compare
 * 32 bytes instead of whole outcomes (docs/nondet.md, "Execution hash", is the definition).
 *
 * It is the SHA-256 of the calldata encoding (canonical: map keys sorted) of the map
 *   { version: 1, result, writes, events, xcalls, node_effects, artifact, root_hash, nondet_results }
 * Logs and gas_used are left out: logs are diagnostics, and a leader's and a validator's sub-instances run
 * different methods, so their gas differs while their agreed state does not. Private writes are left out of
 * node_effects because private storage is node-local by definition.
 */
import { createHash } from 'node:crypto';
import { streamCalldata, type CalldataMap, type CalldataValue } from './calldata.js';
import type { Effects } from './effects.js';
import { encodeNodeEffects } from './node-effects.js';
import { extend } from '../extend.js';

export const EXECUTION_HASH_VERSION = 1n;

export function executionHash(resultBytes: Uint8Array, effects: Effects): Uint8Array {
  const nodeEffects: CalldataMap = new Map();
  encodeNodeEffects(extend(effects, { privateWrites: [] }), nodeEffects);
  const map = new Map<string, CalldataValue>([
    ['version', EXECUTION_HASH_VERSION],
    ['result', resultBytes],
    ['writes', effects.writes.map(([k, v]) => [k, v])],
    ['events', effects.events.map((e) => new Map<string, CalldataValue>([['kind', e.kind], ['data', e.data], ['handler', e.handler]]))],
    ['xcalls', effects.xcalls.map((x) => new Map<string, CalldataValue>([['context_id', x.contextId], ['function', x.function], ['params', x.params]]))],
    ['node_effects', nodeEffects],
    ['artifact', effects.artifact],
    ['root_hash', effects.rootHash],
    ['nondet_results', effects.nondetResults],
  ]);
  // Hashed as it is encoded: a large result or write is read once, not copied into one buffer first.
  const hash = createHash('sha256');
  streamCalldata(map, (chunk) => hash.update(chunk));
  return Uint8Array.from(hash.digest());
}
