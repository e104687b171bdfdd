/**
 * The node-side part of an execution's effects: private (node-local) writes, queued context mutations, blob
 * announcements, proposals and approvals. They travel in the consume_result effects map next to the storage
 * delta, under keys that are present only when non-empty (so an execution that uses none of them encodes
 * exactly as before), and the host applies them in the same transaction as the delta, after success only.
 * docs/protocol.md, section "Effects", lists the keys.
 */
import { HostlinkError } from '../errors.js';
import type { CalldataMap, CalldataValue } from './calldata.js';
import { createdContextId, proposalId } from './call-ids.js';
import type { ExecutionMessage } from './message.js';
import { MAX_ALIAS_BYTES, MAX_PROTOCOL_NAME_BYTES } from './node-limits.js';
import { checkProposalActions, ProposalDecodeError } from './proposal-actions.js';

export type ContextMutation =
  | {
      kind: 'create';
      /** The new context's id (call-ids.ts createdContextId). */
      contextId: Uint8Array;
      protocol: string;
      applicationId: Uint8Array;
      initArgs: Uint8Array;
      alias: string | null;
    }
  | { kind: 'delete'; contextId: Uint8Array }
  | { kind: 'add_member'; publicKey: Uint8Array }
  | { kind: 'remove_member'; publicKey: Uint8Array };

export interface BlobAnnouncement {
  blobId: Uint8Array;
  contextId: Uint8Array;
}

export interface Proposal {
  id: Uint8Array;
  /** Borsh Vec<ProposalAction> (proposal-actions.ts), as the guest sent it. */
  actions: Uint8Array;
}

export interface NodeEffects {
  /** Private storage changes of the execution's context, sorted by key bytes; null removes the key. */
  privateWrites: [Uint8Array, Uint8Array | null][];
  contextMutations: ContextMutation[];
  blobAnnouncements: BlobAnnouncement[];
  proposals: Proposal[];
  /** Proposal ids approved by the executor. */
  approvals: Uint8Array[];
}

export function emptyNodeEffects(): NodeEffects {
  return { privateWrites: [], contextMutations: [], blobAnnouncements: [], proposals: [], approvals: [] };
}

const map = (entries: [string, CalldataValue][]): CalldataMap => new Map(entries);

function mutationValue(m: ContextMutation): CalldataMap {
  switch (m.kind) {
    case 'create':
      return map([
        ['kind', m.kind],
        ['context_id', m.contextId],
        ['protocol', m.protocol],
        ['application_id', m.applicationId],
        ['init_args', m.initArgs],
        ['alias', m.alias],
      ]);
    case 'delete':
      return map([['kind', m.kind], ['context_id', m.contextId]]);
    case 'add_member':
    case 'remove_member':
      return map([['kind', m.kind], ['public_key', m.publicKey]]);
  }
}

/** The keys of the node effects in an effects map (each present only when non-empty). */
export const NODE_EFFECT_KEYS: readonly string[] = ['private_writes', 'context_mutations', 'blob_announcements', 'proposals', 'approvals'];

/** Adds the non-empty node effects to an effects map. */
export function encodeNodeEffects(e: NodeEffects, out: CalldataMap): void {
  if (e.privateWrites.length) out.set('private_writes', e.privateWrites.map(([k, v]) => [k, v]));
  if (e.contextMutations.length) out.set('context_mutations', e.contextMutations.map(mutationValue));
  if (e.blobAnnouncements.length) {
    out.set('blob_announcements', e.blobAnnouncements.map((a) => map([['blob_id', a.blobId], ['context_id', a.contextId]])));
  }
  if (e.proposals.length) out.set('proposals', e.proposals.map((p) => map([['id', p.id], ['actions', p.actions]])));
  if (e.approvals.length) out.set('approvals', e.approvals);
}

const bad = (what: string): HostlinkError => new HostlinkError('protocol', `invalid effects: ${what}`);

/**
 * Refuses a map holding a key other than `keys` (docs/protocol.md: exactly these keys). A key nobody reads used to
 * be accepted as it came: bytes under it escaped max_effect_bytes and handed_to_host. The message shows at most
 * the key's first 40 characters: a key may be megabytes long.
 */
export function onlyKeys(m: CalldataMap, keys: readonly string[], what: string): void {
  for (const k of m.keys()) {
    if (!keys.includes(k)) throw bad(`${what} has the unknown key ${JSON.stringify(k.slice(0, 40))}${k.length > 40 ? '...' : ''}`);
  }
}

function get(m: CalldataMap, name: string, what: string): CalldataValue {
  if (!m.has(name)) throw bad(`${what} has no '${name}'`);
  return m.get(name)!;
}
function list(v: CalldataValue, what: string): CalldataValue[] {
  if (!Array.isArray(v)) throw bad(`${what} must be an array`);
  if (v.length === 0) throw bad(`${what} is present but empty (empty lists are omitted)`);
  return v;
}
function asMap(v: CalldataValue, what: string): CalldataMap {
  if (!(v instanceof Map)) throw bad(`${what} must be a map`);
  return v;
}
function bytes(v: CalldataValue, what: string, length?: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw bad(`${what} must be bytes`);
  if (length !== undefined && v.length !== length) throw bad(`${what} must be ${length} bytes`);
  return v;
}
function text(v: CalldataValue, what: string): string {
  if (typeof v !== 'string') throw bad(`${what} must be a string`);
  return v;
}
/** The list under `name`, or [] when the key is absent. */
function optionalList(m: CalldataMap, name: string): CalldataValue[] {
  return m.has(name) ? list(m.get(name)!, name) : [];
}

function decodeMutation(raw: CalldataValue, i: number): ContextMutation {
  const what = `context_mutations[${i}]`;
  const m = asMap(raw, what);
  const kind = text(get(m, 'kind', what), `${what}.kind`);
  switch (kind) {
    case 'create': {
      onlyKeys(m, ['kind', 'context_id', 'protocol', 'application_id', 'init_args', 'alias'], what);
      const alias = get(m, 'alias', what);
      return {
        kind,
        contextId: bytes(get(m, 'context_id', what), `${what}.context_id`, 32),
        protocol: text(get(m, 'protocol', what), `${what}.protocol`),
        applicationId: bytes(get(m, 'application_id', what), `${what}.application_id`, 32),
        initArgs: bytes(get(m, 'init_args', what), `${what}.init_args`),
        alias: alias === null ? null : text(alias, `${what}.alias`),
      };
    }
    case 'delete':
      onlyKeys(m, ['kind', 'context_id'], what);
      return { kind, contextId: bytes(get(m, 'context_id', what), `${what}.context_id`, 32) };
    case 'add_member':
    case 'remove_member':
      onlyKeys(m, ['kind', 'public_key'], what);
      return { kind, publicKey: bytes(get(m, 'public_key', what), `${what}.public_key`, 32) };
    default:
      throw bad(`${what}.kind '${kind}' is not create, delete, add_member or remove_member`);
  }
}

/** Reads the node effects of an effects map (absent keys are empty). Throws HostlinkError('protocol'). */
export function decodeNodeEffects(m: CalldataMap): NodeEffects {
  let previous: Buffer | null = null;
  const privateWrites = optionalList(m, 'private_writes').map((raw, i): [Uint8Array, Uint8Array | null] => {
    if (!Array.isArray(raw) || raw.length !== 2) throw bad(`private_writes[${i}] must be [key, value]`);
    const key = bytes(raw[0]!, `private_writes[${i}] key`);
    const k = Buffer.from(key);
    if (previous !== null && Buffer.compare(previous, k) >= 0) throw bad(`private_writes are not sorted by key at index ${i}`);
    previous = k;
    return [key, raw[1] === null ? null : bytes(raw[1]!, `private_writes[${i}] value`)];
  });
  const contextMutations = optionalList(m, 'context_mutations').map(decodeMutation);
  const blobAnnouncements = optionalList(m, 'blob_announcements').map((raw, i) => {
    const a = asMap(raw, `blob_announcements[${i}]`);
    onlyKeys(a, ['blob_id', 'context_id'], `blob_announcements[${i}]`);
    return {
      blobId: bytes(get(a, 'blob_id', `blob_announcements[${i}]`), `blob_announcements[${i}].blob_id`, 32),
      contextId: bytes(get(a, 'context_id', `blob_announcements[${i}]`), `blob_announcements[${i}].context_id`, 32),
    };
  });
  const proposals = optionalList(m, 'proposals').map((raw, i) => {
    const p = asMap(raw, `proposals[${i}]`);
    onlyKeys(p, ['id', 'actions'], `proposals[${i}]`);
    return {
      id: bytes(get(p, 'id', `proposals[${i}]`), `proposals[${i}].id`, 32),
      actions: bytes(get(p, 'actions', `proposals[${i}]`), `proposals[${i}].actions`),
    };
  });
  const approvals = optionalList(m, 'approvals').map((raw, i) => bytes(raw, `approvals[${i}]`, 32));
  return { privateWrites, contextMutations, blobAnnouncements, proposals, approvals };
}

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * Checks node effects against the message they claim to come from: derived ids must be the ones the message
 * gives, and sizes must respect the call's limits. The VM enforces all of this already; the host checks
 * again because it is about to write these values into its tables. Throws HostlinkError('protocol').
 */
export function checkNodeEffects(msg: ExecutionMessage, e: NodeEffects): void {
  const { maxStorageKeySize, maxStorageValueSize } = msg.limits;
  e.privateWrites.forEach(([k, v], i) => {
    if (k.length > maxStorageKeySize) throw bad(`private_writes[${i}] key exceeds max_storage_key_size`);
    if (v !== null && v.length > maxStorageValueSize) throw bad(`private_writes[${i}] value exceeds max_storage_value_size`);
  });
  let created = 0;
  e.contextMutations.forEach((m, i) => {
    if (m.kind !== 'create') return;
    if (!sameBytes(m.contextId, createdContextId(msg, created++))) throw bad(`context_mutations[${i}].context_id is not the derived id`);
    if (utf8Length(m.protocol) > MAX_PROTOCOL_NAME_BYTES) throw bad(`context_mutations[${i}].protocol is too long`);
    if (m.alias !== null && (m.alias === '' || utf8Length(m.alias) > MAX_ALIAS_BYTES)) throw bad(`context_mutations[${i}].alias is empty or too long`);
    if (m.initArgs.length > maxStorageValueSize) throw bad(`context_mutations[${i}].init_args exceeds max_storage_value_size`);
  });
  e.proposals.forEach((p, i) => {
    if (!sameBytes(p.id, proposalId(msg, i))) throw bad(`proposals[${i}].id is not the derived id`);
    if (p.actions.length > maxStorageValueSize) throw bad(`proposals[${i}].actions exceeds max_storage_value_size`);
    // Stored as sent and decoded whenever the context's proposals are listed: actions that do not decode made
    // host.node.proposals() throw for that context from then on. Checked without building them (on the event loop).
    try {
      checkProposalActions(p.actions);
    } catch (err) {
      if (!(err instanceof ProposalDecodeError)) throw err;
      throw bad(`proposals[${i}].actions are not a Borsh Vec<ProposalAction> (${err.message})`);
    }
  });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
