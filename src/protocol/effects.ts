/**
 * The effects of an execution, sent with the result in consume_result: a calldata map (canonical, so the
 * same execution always produces the same bytes). docs/protocol.md, section "Effects", is the reference.
 *
 * The host validates the shape strictly: a VM that sends anything else has broken the protocol.
 */
import { HostlinkError } from '../errors.js';
import { decodeCalldata, encodeCalldata, type CalldataMap, type CalldataValue, type DecodeLimits } from './calldata.js';
import { NONDET_LIMITS } from './nondet.generated.js';
import { decodeNodeEffects, emptyNodeEffects, encodeNodeEffects, NODE_EFFECT_KEYS, onlyKeys, type NodeEffects } from './node-effects.js';

export interface EmittedEvent {
  kind: string;
  data: Uint8Array;
  /** Method the host calls after a successful execution (emit_with_handler), or null. */
  handler: string | null;
}

/** A cross-context call queued by xcall, run by the host after a successful execution. */
export interface CrossCall {
  contextId: Uint8Array;
  function: string;
  params: Uint8Array;
}

/** The node-side effects (private writes, context mutations, blobs, proposals) come from node-effects.ts. */
export interface Effects extends NodeEffects {
  gasUsed: bigint;
  logs: string[];
  events: EmittedEvent[];
  xcalls: CrossCall[];
  /** Storage changes, sorted by key bytes; null removes the key. */
  writes: [Uint8Array, Uint8Array | null][];
  /** The CRDT artifact (docs/crdt.md) from flush_delta or commit; null when there is none. */
  artifact: Uint8Array | null;
  /** The 32-byte root hash the guest gave to commit; null when it did not commit. */
  rootHash: Uint8Array | null;
  /** Results of the execution's non-deterministic blocks, one per call_no, block encoding (nondet.ts). */
  nondetResults: Uint8Array[];
  /** The first block whose validator did not accept the leader's proposal; null when none. */
  nondetDisagreement: NondetDisagreement | null;
}

/** Why a validator run ended with validator_disagrees: the block and what the validator method answered. */
export interface NondetDisagreement {
  callNo: number;
  reason: string;
}

export function emptyEffects(): Effects {
  return { gasUsed: 0n, logs: [], events: [], xcalls: [], writes: [], artifact: null, rootHash: null, nondetResults: [], nondetDisagreement: null, ...emptyNodeEffects() };
}

export function encodeEffects(e: Effects): Uint8Array {
  const map: CalldataMap = new Map<string, CalldataValue>([
    ['gas_used', e.gasUsed],
    ['logs', e.logs],
    ['events', e.events.map((ev) => new Map<string, CalldataValue>([['kind', ev.kind], ['data', ev.data], ['handler', ev.handler]]))],
    ['xcalls', e.xcalls.map((x) => new Map<string, CalldataValue>([['context_id', x.contextId], ['function', x.function], ['params', x.params]]))],
    ['writes', e.writes.map(([k, v]) => [k, v])],
  ]);
  // Present only when set, so an execution without an artifact encodes as before.
  if (e.artifact !== null) map.set('artifact', e.artifact);
  if (e.rootHash !== null) map.set('root_hash', e.rootHash);
  if (e.nondetResults.length) map.set('nondet_results', e.nondetResults);
  if (e.nondetDisagreement !== null) {
    map.set('nondet_disagreement', new Map<string, CalldataValue>([['call_no', BigInt(e.nondetDisagreement.callNo)], ['reason', e.nondetDisagreement.reason]]));
  }
  encodeNodeEffects(e, map);
  return encodeCalldata(map);
}

const bad = (what: string): HostlinkError => new HostlinkError('protocol', `invalid effects: ${what}`);

function field(m: CalldataMap, name: string): CalldataValue {
  if (!m.has(name)) throw bad(`missing '${name}'`);
  return m.get(name)!;
}

function asList(v: CalldataValue, what: string): CalldataValue[] {
  if (!Array.isArray(v)) throw bad(`${what} must be an array`);
  return v;
}

function asMap(v: CalldataValue, what: string): CalldataMap {
  if (!(v instanceof Map)) throw bad(`${what} must be a map`);
  return v;
}

function asBytes(v: CalldataValue, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw bad(`${what} must be bytes`);
  return v;
}

function asString(v: CalldataValue, what: string): string {
  if (typeof v !== 'string') throw bad(`${what} must be a string`);
  return v;
}

/** Every key of an effects map (docs/protocol.md, "Effects"); any other is refused. */
const EFFECT_KEYS = ['gas_used', 'logs', 'events', 'xcalls', 'writes', 'artifact', 'root_hash', 'nondet_results', 'nondet_disagreement', ...NODE_EFFECT_KEYS];

/** `limits` bounds what decoding may build (effect-limits.ts effectDecodeLimits): the host passes the call's. */
export function decodeEffects(bytes: Uint8Array, limits?: DecodeLimits): Effects {
  const m = asMap(decodeCalldata(bytes, limits), 'effects');
  onlyKeys(m, EFFECT_KEYS, 'effects');
  const gas = field(m, 'gas_used');
  if (typeof gas !== 'bigint' || gas < 0n) throw bad('gas_used must be a non-negative integer');
  const logs = asList(field(m, 'logs'), 'logs').map((l, i) => asString(l, `logs[${i}]`));
  const events = asList(field(m, 'events'), 'events').map((raw, i) => {
    const ev = asMap(raw, `events[${i}]`);
    onlyKeys(ev, ['kind', 'data', 'handler'], `events[${i}]`);
    const handler = field(ev, 'handler');
    return {
      kind: asString(field(ev, 'kind'), `events[${i}].kind`),
      data: asBytes(field(ev, 'data'), `events[${i}].data`),
      handler: handler === null ? null : asString(handler, `events[${i}].handler`),
    };
  });
  const xcalls = asList(field(m, 'xcalls'), 'xcalls').map((raw, i) => {
    const x = asMap(raw, `xcalls[${i}]`);
    onlyKeys(x, ['context_id', 'function', 'params'], `xcalls[${i}]`);
    const contextId = asBytes(field(x, 'context_id'), `xcalls[${i}].context_id`);
    if (contextId.length !== 32) throw bad(`xcalls[${i}].context_id must be 32 bytes`);
    return { contextId, function: asString(field(x, 'function'), `xcalls[${i}].function`), params: asBytes(field(x, 'params'), `xcalls[${i}].params`) };
  });
  let previous: Buffer | null = null;
  const writes = asList(field(m, 'writes'), 'writes').map((raw, i): [Uint8Array, Uint8Array | null] => {
    const pair = asList(raw, `writes[${i}]`);
    if (pair.length !== 2) throw bad(`writes[${i}] must be [key, value]`);
    const key = asBytes(pair[0]!, `writes[${i}] key`);
    const k = Buffer.from(key);
    // Sorted and unique: one canonical delta per execution, and no key applied twice.
    if (previous !== null && Buffer.compare(previous, k) >= 0) throw bad(`writes are not sorted by key at index ${i}`);
    previous = k;
    return [key, pair[1] === null ? null : asBytes(pair[1]!, `writes[${i}] value`)];
  });
  const artifact = m.has('artifact') ? asBytes(m.get('artifact')!, 'artifact') : null;
  const rootHash = m.has('root_hash') ? asBytes(m.get('root_hash')!, 'root_hash') : null;
  if (rootHash !== null && rootHash.length !== 32) throw bad('root_hash must be 32 bytes');
  const nondetResults = m.has('nondet_results')
    ? asList(m.get('nondet_results')!, 'nondet_results').map((r, i) => asBytes(r, `nondet_results[${i}]`))
    : [];
  if (m.has('nondet_results') && nondetResults.length === 0) throw bad('nondet_results is present but empty (omit it instead)');
  if (nondetResults.length > NONDET_LIMITS.maxNondetBlocks) throw bad(`nondet_results has more than ${NONDET_LIMITS.maxNondetBlocks} entries`);
  let nondetDisagreement: NondetDisagreement | null = null;
  if (m.has('nondet_disagreement')) {
    const d = asMap(m.get('nondet_disagreement')!, 'nondet_disagreement');
    onlyKeys(d, ['call_no', 'reason'], 'nondet_disagreement');
    const callNo = field(d, 'call_no');
    if (typeof callNo !== 'bigint' || callNo < 0n || callNo >= BigInt(NONDET_LIMITS.maxNondetBlocks)) throw bad('nondet_disagreement.call_no out of range');
    nondetDisagreement = { callNo: Number(callNo), reason: asString(field(d, 'reason'), 'nondet_disagreement.reason') };
  }
  return { gasUsed: gas, logs, events, xcalls, writes, artifact, rootHash, nondetResults, nondetDisagreement, ...decodeNodeEffects(m) };
}
