/**
 * The host's context registry: contexts created by calls, their aliases and members.
 *
 *   contexts: context_id (32)              -> calldata map {protocol, application_id, init_args, alias, parent, creator}
 *   aliases:  UTF-8 alias                  -> context_id (32)
 *   members:  context_id (32) || key (32)  -> 0x01
 *
 * Any context id can be used for calls (a context need not be registered to run or to have members); the
 * registry records the contexts that context_create made. Mutations are applied in call order, after success,
 * in the call's transaction, each only if the call is entitled to it (refusal: the isolation rule), judged in
 * commit order. A call cannot read the other contexts' facts the rule uses, so this is the outcome of the calls
 * run one after the other in commit order; the one exception is a call that reads its own membership while a
 * call in the parent context deletes its context (then it is refused although it read itself a member).
 */
import { decodeCalldata, encodeCalldata, type CalldataMap, type CalldataValue } from '../../protocol/calldata.js';
import type { ExecutionMessage } from '../../protocol/message.js';
import type { ContextMutation } from '../../protocol/node-effects.js';
import { tableCount, tableKeys, type KvReader, type KvTxn } from '../state/kv.js';

export interface ContextRecord {
  id: Uint8Array;
  protocol: string;
  applicationId: Uint8Array;
  initArgs: Uint8Array;
  alias: string | null;
  /** The context whose call created it, and that call's executor (its first member). */
  parent: Uint8Array;
  creator: Uint8Array;
}

const PRESENT = Uint8Array.of(1);
const utf8 = new TextEncoder();
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));

function encodeRecord(r: ContextRecord): Uint8Array {
  return encodeCalldata(
    new Map<string, CalldataValue>([
      ['protocol', r.protocol],
      ['application_id', r.applicationId],
      ['init_args', r.initArgs],
      ['alias', r.alias],
      ['parent', r.parent],
      ['creator', r.creator],
    ]),
  );
}

function decodeRecord(id: Uint8Array, bytes: Uint8Array): ContextRecord {
  const m = decodeCalldata(bytes) as CalldataMap;
  return {
    id,
    protocol: m.get('protocol') as string,
    applicationId: m.get('application_id') as Uint8Array,
    initArgs: m.get('init_args') as Uint8Array,
    alias: m.get('alias') as string | null,
    parent: m.get('parent') as Uint8Array,
    creator: m.get('creator') as Uint8Array,
  };
}

export function contextRecord(reader: KvReader, id: Uint8Array): ContextRecord | undefined {
  const bytes = reader.get('contexts', id);
  return bytes === undefined ? undefined : decodeRecord(id, bytes);
}

export function listContexts(reader: KvReader): ContextRecord[] {
  return [...reader.range('contexts', new Uint8Array(0))].map(([id, bytes]) => decodeRecord(id, bytes));
}

export function resolveAlias(reader: KvReader, alias: string): Uint8Array | undefined {
  return alias === '' ? undefined : reader.get('aliases', utf8.encode(alias));
}

export function isMember(reader: KvReader, contextId: Uint8Array, publicKey: Uint8Array): boolean {
  return reader.get('members', concat(contextId, publicKey)) !== undefined;
}

/** Members sorted by key bytes. */
/** How many members a context has, at most `most` (counting stops there), counted without reading them. */
export function memberCount(reader: KvReader, contextId: Uint8Array, most?: number): number {
  return tableCount(reader, 'members', contextId, most);
}

export function members(reader: KvReader, contextId: Uint8Array): Uint8Array[] {
  // Keys alone: a member is its key's last 32 bytes; the values are never read.
  return Array.from(tableKeys(reader, 'members', contextId), (key) => key.subarray(32));
}

export function addMember(txn: KvTxn, contextId: Uint8Array, publicKey: Uint8Array): void {
  txn.put('members', concat(contextId, publicKey), PRESENT);
}

export function removeMember(txn: KvTxn, contextId: Uint8Array, publicKey: Uint8Array): void {
  txn.del('members', concat(contextId, publicKey));
}

/**
 * The alias a call checked as free was registered by another call that committed first. The call's outcome
 * would depend on timing, so the host runs it again: it then sees the alias taken, exactly as if the two had
 * run one after the other. Internal control flow (src/errors.ts, INTERNAL_ERROR_CLASSES): after the retries
 * the host reports it as the result reason `conflict`.
 */
export class AliasConflict extends Error {
  override readonly name = 'AliasConflict';
  constructor(readonly alias: string) {
    super(`alias ${JSON.stringify(alias)} was registered by a call that committed first`);
  }
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sameId = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

/**
 * A mutation the call is not entitled to: the whole call is refused and nothing it did is applied. Internal
 * control flow (src/errors.ts, INTERNAL_ERROR_CLASSES): the host reports its message (`Unauthorized (...)`) as
 * the call's vm_error.
 */
export class MutationRefused extends Error {
  override readonly name = 'MutationRefused';
  constructor(
    readonly fn: string,
    readonly detail: string,
  ) {
    super(`Unauthorized (${fn}): ${detail}`);
  }
}

/**
 * The isolation rule (docs/host-functions-semantics.md, "Who may change a context"), judged by the host, which
 * cannot trust the VM: a call may delete the current context or a context created by a call in the current
 * context, and only when its executor is a member of the context deleted; it may add and remove members of
 * the current context only, and only when its executor is a member of it. Read through the call's transaction,
 * so the call's own earlier mutations count (a context it created may be deleted by it).
 */
export function refusal(reader: KvReader, msg: ExecutionMessage, m: ContextMutation): MutationRefused | undefined {
  switch (m.kind) {
    case 'create':
      return undefined;
    case 'delete': {
      if (!sameId(m.contextId, msg.contextId)) {
        const record = contextRecord(reader, m.contextId);
        if (record === undefined || !sameId(record.parent, msg.contextId)) {
          return new MutationRefused('context_delete', `context ${hexOf(m.contextId)} is neither the current context nor one created in it`);
        }
      }
      if (!isMember(reader, m.contextId, msg.executorId)) {
        return new MutationRefused('context_delete', `the executor is not a member of context ${hexOf(m.contextId)}`);
      }
      return undefined;
    }
    case 'add_member':
    case 'remove_member':
      if (!isMember(reader, msg.contextId, msg.executorId)) {
        return new MutationRefused(`context_${m.kind}`, 'the executor is not a member of the current context');
      }
      return undefined;
  }
}

/**
 * Applies a call's queued mutations in order. create: registers the context (its executor becomes the first
 * member) and its alias (an id repeats only when the same message runs twice; an alias taken since the call
 * read it is an AliasConflict, and the host runs the call again on the new state). delete: removes the registration, alias and members (the
 * context's state is left to the state layer). add/remove_member: change the calling context's members.
 */
export function applyContextMutations(txn: KvTxn, msg: ExecutionMessage, mutations: readonly ContextMutation[]): void {
  for (const m of mutations) {
    const refused = refusal(txn, msg, m);
    if (refused !== undefined) throw refused;
    switch (m.kind) {
      case 'create': {
        if (txn.get('contexts', m.contextId) !== undefined) break;
        if (m.alias !== null && txn.get('aliases', utf8.encode(m.alias)) !== undefined) throw new AliasConflict(m.alias);
        const record: ContextRecord = {
          id: m.contextId,
          protocol: m.protocol,
          applicationId: m.applicationId,
          initArgs: m.initArgs,
          alias: m.alias,
          parent: msg.contextId,
          creator: msg.executorId,
        };
        txn.put('contexts', m.contextId, encodeRecord(record));
        if (m.alias !== null) txn.put('aliases', utf8.encode(m.alias), m.contextId);
        addMember(txn, m.contextId, msg.executorId);
        break;
      }
      case 'delete': {
        const stored = txn.get('contexts', m.contextId);
        if (stored !== undefined) {
          const record = decodeRecord(m.contextId, stored);
          if (record.alias !== null) txn.del('aliases', utf8.encode(record.alias));
          txn.del('contexts', m.contextId);
        }
        for (const [key] of [...txn.range('members', m.contextId)]) txn.del('members', key);
        break;
      }
      case 'add_member':
        addMember(txn, msg.contextId, m.publicKey);
        break;
      case 'remove_member':
        removeMember(txn, msg.contextId, m.publicKey);
        break;
    }
  }
}
