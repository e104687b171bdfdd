/**
 * Proposals and approvals recorded per context after a successful call.
 *
 *   proposals: context_id (32) || proposal_id (32)             -> calldata map {actions, proposer}
 *   approvals: context_id (32) || proposal_id (32) || key (32) -> 0x01
 *
 * A proposal id that is already recorded keeps its first record (the same message replayed). An approval is
 * recorded even when the proposal is unknown here: it may have been proposed on another node.
 */
import { decodeCalldata, encodeCalldata, type CalldataMap, type CalldataValue } from '../../protocol/calldata.js';
import type { Proposal } from '../../protocol/node-effects.js';
import { decodeProposalActions, type ProposalAction } from '../../protocol/proposal-actions.js';
import type { KvReader, KvTxn } from '../state/kv.js';

export interface ProposalRecord {
  id: Uint8Array;
  /** The Borsh actions as sent, and decoded. */
  actions: Uint8Array;
  decoded: ProposalAction[];
  /** The executor of the call that sent it. */
  proposer: Uint8Array;
  /** Keys that approved it, sorted. */
  approvals: Uint8Array[];
}

const PRESENT = Uint8Array.of(1);
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));

export function recordProposals(
  txn: KvTxn,
  contextId: Uint8Array,
  executorId: Uint8Array,
  proposals: readonly Proposal[],
  approvals: readonly Uint8Array[],
): void {
  for (const p of proposals) {
    const key = concat(contextId, p.id);
    if (txn.get('proposals', key) !== undefined) continue;
    txn.put('proposals', key, encodeCalldata(new Map<string, CalldataValue>([['actions', p.actions], ['proposer', executorId]])));
  }
  for (const id of approvals) txn.put('approvals', concat(contextId, id, executorId), PRESENT);
}

export function approvalsOf(reader: KvReader, contextId: Uint8Array, proposalId: Uint8Array): Uint8Array[] {
  return [...reader.range('approvals', concat(contextId, proposalId))].map(([key]) => key.slice(64));
}

/** A context's proposals, sorted by id. */
export function listProposals(reader: KvReader, contextId: Uint8Array): ProposalRecord[] {
  return [...reader.range('proposals', contextId)].map(([key, bytes]) => {
    const id = key.slice(32);
    const m = decodeCalldata(bytes) as CalldataMap;
    const actions = m.get('actions') as Uint8Array;
    return { id, actions, decoded: decodeProposalActions(actions), proposer: m.get('proposer') as Uint8Array, approvals: approvalsOf(reader, contextId, id) };
  });
}
