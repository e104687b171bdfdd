/**
 * Values an execution derives from its message, so that the same message gives the same bytes on every node:
 * the call seed (random_bytes), proposal ids and the ids of contexts the call creates. The VM computes them
 * for the guest; the host recomputes them to check the effects it is about to apply.
 * docs/host-functions-semantics.md documents every formula; change them only with a new domain string.
 */
import { createHash } from 'node:crypto';
import type { ExecutionMessage } from './message.js';

const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return Uint8Array.from(h.digest());
};
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const u32le = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};
const u64le = (n: bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
};
/** A length-prefixed field (u32le length, then the bytes); an absent one is u32le 0xffffffff alone. */
const field = (b: Uint8Array | null): Uint8Array[] => (b === null ? [u32le(0xffffffff)] : [u32le(b.length), b]);

export const SEED_DOMAIN = 'hostlink/seed/v1';
export const RANDOM_DOMAIN = 'hostlink/random/v1';
export const PROPOSAL_DOMAIN = 'hostlink/proposal/v1';
export const CONTEXT_DOMAIN = 'hostlink/context/v1';
export const FOLLOW_UP_SEED_DOMAIN = 'hostlink/follow-up-seed/v1';

/**
 * The message's `seed` when given; otherwise SHA-256 of the domain and every field that distinguishes one call
 * from another, each length-prefixed: code_hash, method, input, context_id, executor_id, datetime (u64le
 * nanoseconds), chain_id and value (decimal text), is_init (one byte), contract, sender and origin address.
 */
export function callSeed(msg: ExecutionMessage): Uint8Array {
  if (msg.seed !== null) return msg.seed;
  return sha256(
    ascii(SEED_DOMAIN),
    ...field(msg.codeHash),
    ...field(ascii(msg.method)),
    ...field(msg.input),
    ...field(msg.contextId),
    ...field(msg.executorId),
    ...field(u64le(msg.datetimeNanos)),
    ...field(ascii(msg.chainId.toString())),
    ...field(ascii(msg.value.toString())),
    ...field(Uint8Array.of(msg.isInit ? 1 : 0)),
    ...field(msg.contractAddress),
    ...field(msg.senderAddress),
    ...field(msg.originAddress),
  );
}

/**
 * The seed of a follow-up: SHA-256 of the domain, the parent's call seed (its message's seed, or for a call given
 * none the one callSeed derives from its fields), the follow-up's position among the parent's follow-ups (u32le),
 * its kind (`handler` or `xcall`), context id, method and input, each length-prefixed. Passing the parent's seed
 * on unchanged, or deriving the follow-up's from its own message alone, gave a follow-up that reruns the
 * parent's method, context and input the parent's random stream and its created-context and proposal ids (then
 * ignored as already registered).
 */
export function followUpSeed(parentSeed: Uint8Array, index: number, kind: 'handler' | 'xcall', contextId: Uint8Array, method: string, input: Uint8Array): Uint8Array {
  return sha256(ascii(FOLLOW_UP_SEED_DOMAIN), ...field(parentSeed), u32le(index), ...field(ascii(kind)), ...field(contextId), ...field(ascii(method)), ...field(input));
}

/** Block `counter` of the random_bytes stream: SHA-256(domain || seed || u64le(counter)). */
export function randomBlock(seed: Uint8Array, counter: bigint): Uint8Array {
  return sha256(ascii(RANDOM_DOMAIN), seed, u64le(counter));
}

/**
 * Id of the `index`-th proposal (from 0) sent by an execution:
 * SHA-256(domain || context_id || executor_id || SHA-256(input) || seed || u32le(index)).
 */
export function proposalId(msg: ExecutionMessage, index: number): Uint8Array {
  return sha256(ascii(PROPOSAL_DOMAIN), msg.contextId, msg.executorId, sha256(msg.input), callSeed(msg), u32le(index));
}

/** Id of the `index`-th context (from 0) created by an execution; same shape as proposalId, its own domain. */
export function createdContextId(msg: ExecutionMessage, index: number): Uint8Array {
  return sha256(ascii(CONTEXT_DOMAIN), msg.contextId, msg.executorId, sha256(msg.input), callSeed(msg), u32le(index));
}
