/**
 * The per-call effect limits (max_node_actions, max_storage_writes, max_effect_bytes; protocol/limits.json):
 * what one call may ask the host to apply. The VM stops an execution that exceeds them (VMError
 * NodeActionsOverflow at the host function, EffectsOverflow at the end) and the host checks every result it
 * receives again, because a compromised VM may send anything: over the limits is a protocol violation and
 * nothing is applied. Applying is then bounded by the gas-paid work of at most these many actions and bytes.
 */
import type { DecodeLimits } from './calldata.js';
import type { Effects } from './effects.js';
import type { ExecutionMessage, VmLimits } from './message.js';
import { NONDET_LIMITS } from './nondet.generated.js';
import type { NodeEffects } from './node-effects.js';
import type { ExecutionResult } from './result.js';
import { HANDED_TO_HOST_GAS, ROUND_TRIP_GAS } from '../vm/host-functions.generated.js';

export type EffectLimits = Pick<VmLimits, 'maxNodeActions' | 'maxStorageWrites' | 'maxEffectBytes'>;

/** Context mutations, proposals, approvals and blob announcements queued so far. */
export function nodeActionCount(e: Pick<NodeEffects, 'contextMutations' | 'proposals' | 'approvals' | 'blobAnnouncements'>): number {
  return e.contextMutations.length + e.proposals.length + e.approvals.length + e.blobAnnouncements.length;
}

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Bytes the effects carry: keys, values, texts, ids and payloads (the encoding's own framing not counted). */
export function effectBytes(e: Effects): number {
  let n = 0;
  for (const [k, v] of e.writes) n += k.length + (v?.length ?? 0);
  for (const [k, v] of e.privateWrites) n += k.length + (v?.length ?? 0);
  for (const l of e.logs) n += utf8Length(l);
  for (const ev of e.events) n += utf8Length(ev.kind) + ev.data.length + (ev.handler === null ? 0 : utf8Length(ev.handler));
  for (const x of e.xcalls) n += 32 + utf8Length(x.function) + x.params.length;
  for (const m of e.contextMutations) {
    n += 32;
    if (m.kind === 'create') n += utf8Length(m.protocol) + 32 + m.initArgs.length + (m.alias === null ? 0 : utf8Length(m.alias));
  }
  for (const p of e.proposals) n += 32 + p.actions.length;
  n += 32 * e.approvals.length + 64 * e.blobAnnouncements.length;
  n += (e.artifact?.length ?? 0) + (e.rootHash?.length ?? 0);
  return n;
}

/** Bytes of the non-deterministic blocks' results and of a validator's reason. */
export function nondetBytes(e: Pick<Effects, 'nondetResults' | 'nondetDisagreement'>): number {
  return e.nondetResults.reduce((n, r) => n + r.length, 0) + (e.nondetDisagreement === null ? 0 : utf8Length(e.nondetDisagreement.reason));
}

/** Bytes of a result's data: the returned byte string, or the error's message. */
export function resultDataBytes(r: ExecutionResult): number {
  if (r.code !== 'return') return utf8Length(r.message);
  return r.value instanceof Uint8Array ? r.value.length : 0;
}

/**
 * Every byte a call hands the host when it ends: its result's data, its effects and its blocks' results. The
 * VM charges handed_to_host gas for each (protocol/gas-costs.json), because the host decodes, hashes and applies
 * them on its event loop.
 */
export function handedBytes(r: ExecutionResult, e: Effects): number {
  return resultDataBytes(r) + effectBytes(e) + nondetBytes(e);
}

/**
 * Why the gas used does not pay for what was handed over and for the requests the host answered, or undefined: an
 * honest VM charges handed_to_host for every byte of the result's data and the effects (src/vm/runner.ts) on top of
 * the round_trip gas of its requests (`requests`), or, when the call cannot pay, uses its whole gas limit. A
 * compromised VM that reports less bills the caller less than the host's work costs; one that staged 50 MiB of
 * blobs and reported no gas at all had them stored.
 */
export function unpaidProblem(
  msg: Pick<ExecutionMessage, 'gasLimit'>,
  r: ExecutionResult,
  e: Effects,
  requests: GuestRequests = { count: 0, bytes: 0, keys: 0 },
): string | undefined {
  const bytes = handedBytes(r, e);
  const owed = BigInt(bytes) * BigInt(HANDED_TO_HOST_GAS.perByte) + roundTripGas(requests);
  const need = owed < msg.gasLimit ? owed : msg.gasLimit;
  if (e.gasUsed >= need) return undefined;
  if (requests.count === 0) return `gas_used ${e.gasUsed} does not pay for the ${bytes} bytes handed over (handed_to_host: at least ${need})`;
  return `gas_used ${e.gasUsed} does not pay for the ${bytes} bytes handed over and the ${requests.count} requests answered (handed_to_host and round_trip: at least ${need})`;
}

/**
 * The requests a VM sent on the guest's behalf during one execution, and their bytes both ways. An honest VM charges
 * round_trip gas for each (src/vm/metered-host.ts): the base and the request's bytes before sending it (a request it
 * cannot pay is never sent), the answer's bytes when it arrives (or its whole gas limit when it cannot pay them),
 * and per_key for every storage key it asks the host to look up (src/vm/runner.ts, hostStorage).
 */
export interface GuestRequests {
  count: number;
  bytes: number;
  /** Storage keys the requests asked the host to look up (round_trip.per_key each). */
  keys: number;
}

/**
 * The round_trip gas an honest VM charged for `requests`: base per request, per_byte both ways, per_key per key
 * looked up. The host checks it while the call runs (each request against the gas limit: session.ts) and with
 * the result (unpaidProblem), with this one formula.
 */
export function roundTripGas(requests: GuestRequests): bigint {
  return BigInt(requests.count) * BigInt(ROUND_TRIP_GAS.base) + BigInt(requests.bytes) * BigInt(ROUND_TRIP_GAS.perByte) + BigInt(requests.keys) * BigInt(ROUND_TRIP_GAS.perKey);
}

/** Bytes of answers `requests` may still receive before their round_trip gas passes `gasLimit`. */
export function answerBytesAffordable(requests: GuestRequests, gasLimit: bigint): number {
  const left = gasLimit - roundTripGas(requests);
  if (left <= 0n) return 0;
  const bytes = left / BigInt(ROUND_TRIP_GAS.perByte);
  return bytes > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(bytes);
}

/**
 * Why these effects break the call's limits, or undefined when they do not. The blocks' results and a validator's
 * reason count against max_effect_bytes with the rest: the VM checks this before it hands a result over, and the
 * host again on what it receives, with this one function.
 */
export function effectLimitProblem(limits: EffectLimits, e: Effects): string | undefined {
  const actions = nodeActionCount(e);
  if (actions > limits.maxNodeActions) return `${actions} node actions exceed max_node_actions ${limits.maxNodeActions}`;
  const writes = e.writes.length + e.privateWrites.length;
  if (writes > limits.maxStorageWrites) return `${writes} storage writes exceed max_storage_writes ${limits.maxStorageWrites}`;
  const nondet = nondetBytes(e);
  const bytes = effectBytes(e) + nondet;
  if (bytes > limits.maxEffectBytes) {
    const what = nondet === 0 ? 'effects' : 'effects and non-deterministic block results';
    return `${bytes} bytes of ${what} exceed max_effect_bytes ${limits.maxEffectBytes}`;
  }
  return undefined;
}

/** A result's integers (gas used, frame indices, block numbers) are 64-bit: ULEB128 of at most 10 bytes. */
const MAX_RESULT_INTEGER_BYTES = 10;

/**
 * Why a result's effects cannot come from an honest VM running this message, or undefined. The host asks this of
 * every result before it applies or reports anything: the gas used within the call's gas limit, the counts and
 * sizes the VM checks one item at a time as the guest queues logs, events and cross-context calls
 * (src/vm/imports/logging.ts), and the effect limits above. Per-write key and value sizes are not among them: they
 * bound the guest's storage_write, while the VM's own collection records may legitimately exceed them; writes
 * are bounded by max_storage_writes and max_effect_bytes. The message never echoes an offending value (a huge
 * integer would cost seconds to print).
 */
export function resultEffectsProblem(msg: Pick<ExecutionMessage, 'gasLimit' | 'limits'>, e: Effects): string | undefined {
  if (e.gasUsed > msg.gasLimit) return `gas_used exceeds the call's gas_limit ${msg.gasLimit}`;
  const l = msg.limits;
  if (e.logs.length > l.maxLogs) return `${e.logs.length} log lines exceed max_logs ${l.maxLogs}`;
  if (e.logs.some((line) => utf8Length(line) > l.maxLogSize)) return `a log line exceeds max_log_size ${l.maxLogSize}`;
  if (e.events.length > l.maxEvents) return `${e.events.length} events exceed max_events ${l.maxEvents}`;
  for (const ev of e.events) {
    if (utf8Length(ev.kind) > l.maxEventKindSize) return `an event kind exceeds max_event_kind_size ${l.maxEventKindSize}`;
    if (ev.data.length > l.maxEventDataSize) return `an event's data exceeds max_event_data_size ${l.maxEventDataSize}`;
    if (ev.handler !== null && utf8Length(ev.handler) > l.maxMethodNameLength) return `an event handler name exceeds max_method_name_length ${l.maxMethodNameLength}`;
  }
  if (e.xcalls.length > l.maxXcalls) return `${e.xcalls.length} xcalls exceed max_xcalls ${l.maxXcalls}`;
  for (const x of e.xcalls) {
    if (utf8Length(x.function) > l.maxXcallFunctionSize) return `an xcall function name exceeds max_xcall_function_size ${l.maxXcallFunctionSize}`;
    if (x.params.length > l.maxXcallParamsSize) return `an xcall's params exceed max_xcall_params_size ${l.maxXcallParamsSize}`;
  }
  return effectLimitProblem(l, e);
}

/**
 * What decoding a result's effects may build, from the call's limits: an honest VM's effects hold at most this
 * many values (a log line is one; an event or an xcall a map of three fields, 7; a write a pair, 3; a node
 * action at most a map of six fields, 13; a non-deterministic block's result one; rounded up, with room for the
 * top-level map), and no integer wider than 64 bits. A frame of millions of empty events is refused while it is
 * read, not after it has cost the event loop seconds and the heap gigabytes.
 */
export function effectDecodeLimits(l: VmLimits): DecodeLimits {
  return {
    maxValues: 64 + l.maxLogs + 8 * (l.maxEvents + l.maxXcalls) + 4 * l.maxStorageWrites + 16 * l.maxNodeActions + 2 * NONDET_LIMITS.maxNondetBlocks,
    maxIntegerBytes: MAX_RESULT_INTEGER_BYTES,
  };
}

/**
 * What decoding a result's data may build: an honest VM returns one value (bytes, or null) or an error map of a
 * message and a fingerprint, whose backtrace holds at most one frame per byte of max_stack_size.
 */
export function resultDecodeLimits(l: Pick<VmLimits, 'maxStackSize'>): DecodeLimits {
  return { maxValues: 16 + l.maxStackSize, maxIntegerBytes: MAX_RESULT_INTEGER_BYTES };
}
