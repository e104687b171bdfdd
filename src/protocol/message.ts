/**
 * The execution message: the JSON given to `hostlink vm --message` (one-shot) or returned by next_message
 * (pool mode). It holds everything an execution may observe besides code and state, so the same message on the
 * same state gives the same result everywhere.
 *
 * Fields follow GenVM's message schema (contract_address, sender_address, origin_address, chain_id, value,
 * is_init, datetime) plus Hostlink's own (code_hash, method, input, context_id, executor_id, gas_limit, limits,
 * seed, and the host's gas_schedule_version and instrumentation_version: src/protocol/vm-semantics.ts). Unknown
 * fields are ignored. docs/message.md is the reference.
 */
import { HostlinkError } from '../errors.js';
import { NONDET_LIMITS } from './nondet.generated.js';
import { MAX_INPUT_BYTES } from './bounds.generated.js';
import { DEFAULT_LIMITS, LIMIT_CEILINGS, LIMIT_JSON_NAMES, type VmLimits } from './limits.generated.js';
import { semanticsRefusal, VM_SEMANTICS } from './vm-semantics.js';

// The limits, their defaults and the most a message may ask for are protocol data (protocol/limits.json).
export { DEFAULT_LIMITS, LIMIT_CEILINGS, LIMIT_JSON_NAMES, type VmLimits } from './limits.generated.js';
/** Largest max_stack_size a message may ask for (protocol/limits.json; kept under its older name). */
export { MAX_STACK_SIZE_LIMIT } from './limits.generated.js';

/** How the VM treats floating-point instructions: canonicalise NaN results, or reject modules that use floats. */
export type FloatPolicy = 'canonicalize' | 'reject';

export const DEFAULT_GAS_LIMIT = 1_000_000_000n;
export const DEFAULT_DATETIME = '2024-11-26T06:42:42.424242Z';

export interface ExecutionMessage {
  codeHash: Uint8Array;
  method: string;
  input: Uint8Array;
  contextId: Uint8Array;
  executorId: Uint8Array;
  gasLimit: bigint;
  limits: VmLimits;
  floats: FloatPolicy;
  /** RFC 3339 block time; time_now returns it in Unix nanoseconds. */
  datetime: string;
  datetimeNanos: bigint;
  /** 32 bytes feeding random_bytes; defaults to a hash of the other fields (see docs/message.md). */
  seed: Uint8Array | null;
  contractAddress: Uint8Array | null;
  senderAddress: Uint8Array | null;
  originAddress: Uint8Array | null;
  chainId: bigint;
  value: bigint;
  isInit: boolean;
  /**
   * The role in non-deterministic blocks (docs/nondet.md): null = leader; a list of proposals (one per call_no,
   * block encoding) = validator; the list with `sync` = sync replay.
   */
  leaderResults: Uint8Array[] | null;
  sync: boolean;
}

/** The nondet part of a call: absent or without leaderResults = leader. */
export interface NondetRole {
  leaderResults?: readonly Uint8Array[];
  sync?: boolean;
}

/** What a caller supplies to build a message (the rest has defaults). */
export interface MessageInit {
  codeHash: Uint8Array;
  method: string;
  input?: Uint8Array;
  contextId: Uint8Array;
  executorId?: Uint8Array;
  gasLimit?: bigint;
  limits?: Partial<VmLimits>;
  floats?: FloatPolicy;
  datetime?: string;
  seed?: Uint8Array;
  contractAddress?: Uint8Array;
  senderAddress?: Uint8Array;
  originAddress?: Uint8Array;
  chainId?: bigint;
  value?: bigint;
  isInit?: boolean;
  nondet?: NondetRole;
}

const bad = (field: string, why: string): HostlinkError =>
  new HostlinkError('invalid_message', `invalid message: field '${field}' ${why}`);

/** Decodes 32 bytes given as 64 hex characters or 44 base64 characters. */
export function parseId32(text: unknown, field: string): Uint8Array {
  if (typeof text !== 'string') throw bad(field, 'must be a string of 64 hex or 44 base64 characters');
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Uint8Array.from(Buffer.from(text, 'hex'));
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return Uint8Array.from(Buffer.from(text, 'base64'));
  throw bad(field, `must be 32 bytes as 64 hex or 44 base64 characters (got ${JSON.stringify(text).slice(0, 80)})`);
}

/** Standard base64 with padding, checked in one pass (a regex over a multi-megabyte input overflowed the stack). */
function isBase64(text: string): boolean {
  const n = text.length;
  if (n % 4 !== 0) return false;
  const pad = n === 0 ? 0 : text.charCodeAt(n - 1) !== 61 ? 0 : text.charCodeAt(n - 2) === 61 ? 2 : 1;
  for (let i = 0; i < n - pad; i++) {
    const c = text.charCodeAt(i);
    const ok = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47;
    if (!ok) return false;
  }
  return true;
}

function parseBase64(text: unknown, field: string, length?: number, maxBytes?: number): Uint8Array {
  if (typeof text !== 'string' || !isBase64(text)) throw bad(field, 'must be a base64 string');
  if (maxBytes !== undefined && (text.length / 4) * 3 > maxBytes + 2) throw bad(field, `must be at most ${maxBytes} bytes (max_input_bytes)`);
  const bytes = Uint8Array.from(Buffer.from(text, 'base64'));
  if (maxBytes !== undefined && bytes.length > maxBytes) throw bad(field, `must be at most ${maxBytes} bytes (max_input_bytes)`);
  if (length !== undefined && bytes.length !== length) throw bad(field, `must be ${length} bytes (got ${bytes.length})`);
  return bytes;
}

function parseUint(text: unknown, field: string, max: bigint): bigint {
  let v: bigint;
  if (typeof text === 'number' && Number.isSafeInteger(text) && text >= 0) v = BigInt(text);
  else if (typeof text === 'string' && /^(0|[1-9][0-9]*)$/.test(text)) v = BigInt(text);
  else throw bad(field, 'must be a non-negative integer (a number or a decimal string)');
  if (v > max) throw bad(field, `must be at most ${max}`);
  return v;
}

/** RFC 3339 to Unix nanoseconds, exactly (no floating point), or an error naming the field. */
export function datetimeToNanos(text: string, field = 'datetime'): bigint {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) throw bad(field, `must be an RFC 3339 date-time such as ${DEFAULT_DATETIME}`);
  const [, y, mo, d, h, mi, s, frac = '', tz] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms) || new Date(ms).getUTCDate() !== Number(d)) throw bad(field, 'is not a valid calendar date');
  let offsetMin = 0;
  if (tz !== 'Z' && tz !== 'z') offsetMin = (tz!.startsWith('-') ? -1 : 1) * (Number(tz!.slice(1, 3)) * 60 + Number(tz!.slice(4, 6)));
  const nanos = BigInt(ms - offsetMin * 60_000) * 1_000_000n + BigInt(frac.padEnd(9, '0'));
  if (nanos < 0n) throw bad(field, 'must not be before 1970');
  return nanos;
}

/** VmLimits field of each snake_case name: built once (every message the host builds is parsed again). */
const LIMIT_BY_JSON_NAME: ReadonlyMap<string, keyof VmLimits> = new Map(Object.entries(LIMIT_JSON_NAMES).map(([k, j]) => [j, k as keyof VmLimits]));

/**
 * Why `value` may not be limit `key`, or undefined when it may: an integer from 0 to the limit's most
 * (protocol/limits.json). One rule for every limit, for messages, Host options and call options alike: a limit
 * past its most would let a call hold more than some VM can, so its outcome would depend on the node.
 */
export function limitProblem(key: keyof VmLimits, value: unknown): string | undefined {
  const most = LIMIT_CEILINGS[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) return `must be an integer from 0 to ${most}`;
  if (value > most) return `must be at most ${most} (${LIMIT_JSON_NAMES[key]}_limit: the most a message may ask for, what every VM can hold; docs/bounds.md says why)`;
  return undefined;
}

/**
 * Limit overrides by snake_case name (`{"max_logs": 10}`, numbers or decimal strings) to VmLimits fields.
 * Throws HostlinkError('invalid_message') naming the field; the message lists the known names.
 */
export function parseLimitOverrides(raw: Record<string, unknown>): Partial<VmLimits> {
  const byJson = LIMIT_BY_JSON_NAME;
  const limits: Partial<VmLimits> = {};
  for (const [name, value] of Object.entries(raw)) {
    const key = byJson.get(name);
    if (key === undefined) throw bad(`limits.${name}`, `is not a known limit (known: ${[...byJson.keys()].join(', ')})`);
    const n = Number(parseUint(value, `limits.${name}`, BigInt(Number.MAX_SAFE_INTEGER)));
    const problem = limitProblem(key, n);
    if (problem !== undefined) throw bad(`limits.${name}`, problem);
    limits[key] = n;
  }
  return limits;
}

function parseLimits(raw: unknown): VmLimits {
  if (raw === undefined || raw === null) return { ...DEFAULT_LIMITS };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw bad('limits', 'must be an object');
  return { ...DEFAULT_LIMITS, ...parseLimitOverrides(raw as Record<string, unknown>) };
}

/** Parses and validates a message. Throws HostlinkError('invalid_message') naming the field. */
export function parseMessage(json: string): ExecutionMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new HostlinkError('invalid_message', `invalid message: not JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new HostlinkError('invalid_message', 'invalid message: expected a JSON object');
  }
  const o = raw as Record<string, unknown>;
  const need = (k: string): unknown => {
    if (o[k] === undefined || o[k] === null) throw bad(k, 'is required');
    return o[k];
  };
  const method = need('method');
  if (typeof method !== 'string' || method.length === 0) throw bad('method', 'must be a non-empty string');
  const limits = parseLimits(o.limits);
  const datetime = o.datetime === undefined || o.datetime === null ? DEFAULT_DATETIME : o.datetime;
  if (typeof datetime !== 'string') throw bad('datetime', 'must be a string');
  const opt = <T>(k: string, f: (v: unknown) => T): T | null => (o[k] === undefined || o[k] === null ? null : f(o[k]));
  if (o.is_init !== undefined && typeof o.is_init !== 'boolean') throw bad('is_init', 'must be true or false');
  const floats = o.floats === undefined || o.floats === null ? 'canonicalize' : o.floats;
  const { leaderResults, sync } = parseNondetRole(o.leader_results, o.sync);
  for (const f of VM_SEMANTICS) {
    const refused = semanticsRefusal(f, o[f.field]);
    if (refused !== undefined) throw bad(f.field, refused);
  }
  if (floats !== 'canonicalize' && floats !== 'reject') throw bad('floats', "must be 'canonicalize' or 'reject'");
  return {
    codeHash: parseId32(need('code_hash'), 'code_hash'),
    method,
    input: o.input === undefined || o.input === null ? new Uint8Array(0) : parseBase64(o.input, 'input', undefined, MAX_INPUT_BYTES),
    contextId: parseId32(need('context_id'), 'context_id'),
    executorId: parseId32(need('executor_id'), 'executor_id'),
    gasLimit: o.gas_limit === undefined || o.gas_limit === null ? DEFAULT_GAS_LIMIT : parseUint(o.gas_limit, 'gas_limit', (1n << 63n) - 1n),
    limits,
    floats,
    datetime,
    datetimeNanos: datetimeToNanos(datetime),
    seed: opt('seed', (v) => parseId32(v, 'seed')),
    contractAddress: opt('contract_address', (v) => parseBase64(v, 'contract_address', 20)),
    senderAddress: opt('sender_address', (v) => parseBase64(v, 'sender_address', 20)),
    originAddress: opt('origin_address', (v) => parseBase64(v, 'origin_address', 20)),
    chainId: opt('chain_id', (v) => parseUint(v, 'chain_id', (1n << 256n) - 1n)) ?? 0n,
    value: opt('value', (v) => parseUint(v, 'value', (1n << 64n) - 1n)) ?? 0n,
    isInit: o.is_init === true,
    leaderResults,
    sync,
  };
}

/** `leader_results`: null/absent (leader) or an array of base64 proposals; `sync` needs the list. */
function parseNondetRole(raw: unknown, syncRaw: unknown): { leaderResults: Uint8Array[] | null; sync: boolean } {
  if (syncRaw !== undefined && syncRaw !== null && typeof syncRaw !== 'boolean') throw bad('sync', 'must be true or false');
  const sync = syncRaw === true;
  if (raw === undefined || raw === null) {
    if (sync) throw bad('sync', 'needs leader_results: a sync replay takes the recorded proposals (give [] when there were none)');
    return { leaderResults: null, sync };
  }
  if (!Array.isArray(raw)) throw bad('leader_results', 'must be an array of base64 strings (one proposal per non-deterministic block) or null');
  if (raw.length > NONDET_LIMITS.maxNondetBlocks) {
    throw bad('leader_results', `has ${raw.length} entries, more than the ${NONDET_LIMITS.maxNondetBlocks} blocks an execution may run`);
  }
  return { leaderResults: raw.map((r, i) => parseBase64(r, `leader_results[${i}]`)), sync };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** The message's limits object: `over` wins name by name over `base`; null when neither sets any. */
function limitsJson(base: Partial<VmLimits> | undefined, over: Partial<VmLimits> | undefined): Record<string, number> | null {
  let out: Record<string, number> | null = null;
  for (const source of [base, over]) {
    if (source === undefined) continue;
    for (const [k, v] of Object.entries(source)) {
      if (v === undefined) continue;
      (out ??= {})[LIMIT_JSON_NAMES[k as keyof VmLimits]] = v;
    }
  }
  return out;
}

/** What a message takes from the node when its call does not say: the Host's configured defaults. */
export interface MessageDefaults {
  gasLimit?: bigint;
  floats?: FloatPolicy;
  /** Merged under the call's own limits, name by name. */
  limits?: Partial<VmLimits>;
}

/**
 * Builds the JSON text of a message; parseMessage(buildMessage(x)) round-trips. `defaults` fill what `init`
 * leaves out. They are a separate argument, not spread into `init` by the caller: in Node 20's optimized code an
 * object literal that starts with a spread and then adds properties gets a new hidden class on every call
 * (docs/performance.md, "Hidden classes made per call").
 */
export function buildMessage(init: MessageInit, defaults: MessageDefaults = {}): string {
  const o: Record<string, unknown> = {
    code_hash: hex(init.codeHash),
    method: init.method,
    input: b64(init.input ?? new Uint8Array(0)),
    context_id: hex(init.contextId),
    executor_id: hex(init.executorId ?? new Uint8Array(32)),
  };
  const gasLimit = init.gasLimit ?? defaults.gasLimit;
  if (gasLimit !== undefined) o.gas_limit = gasLimit.toString();
  const limits = limitsJson(defaults.limits, init.limits);
  if (limits !== null) o.limits = limits;
  const floats = init.floats ?? defaults.floats;
  if (floats !== undefined) o.floats = floats;
  if (init.datetime !== undefined) o.datetime = init.datetime;
  if (init.seed) o.seed = hex(init.seed);
  if (init.contractAddress) o.contract_address = b64(init.contractAddress);
  if (init.senderAddress) o.sender_address = b64(init.senderAddress);
  if (init.originAddress) o.origin_address = b64(init.originAddress);
  if (init.chainId !== undefined) o.chain_id = init.chainId.toString();
  if (init.value !== undefined) o.value = init.value.toString();
  if (init.isInit !== undefined) o.is_init = init.isInit;
  if (init.nondet?.leaderResults !== undefined) o.leader_results = init.nondet.leaderResults.map(b64);
  if (init.nondet?.sync) o.sync = true;
  for (const f of VM_SEMANTICS) o[f.field] = f.version;
  return JSON.stringify(o);
}
