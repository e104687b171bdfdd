/**
 * Governance: proposals and approvals are queued and recorded by the host per context after success. A
 * proposal id is derived from the message (call-ids.ts proposalId), never random, so a replay gives the same id.
 */
import { proposalId } from '../../protocol/call-ids.js';
import { decodeProposalActions, ProposalDecodeError } from '../../protocol/proposal-actions.js';
import { destinationOf, readId32 } from './ids.js';
import type { FamilyImpl } from './types.js';

export const governance: FamilyImpl<'governance'> = {
  send_proposal(ex, actionsPtr, idPtr) {
    ex.node.reserveAction();
    const actions = ex.readBuffer(actionsPtr, 'proposal actions', ex.limit('maxStorageValueSize', 'ValueLengthOverflow'));
    try {
      decodeProposalActions(actions);
    } catch (e) {
      if (!(e instanceof ProposalDecodeError)) throw e;
      ex.fail('DeserializationError', `proposal actions are not a Borsh Vec<ProposalAction>: ${e.message}`);
    }
    const dest = destinationOf(ex, idPtr, 32, 'proposal id');
    const id = proposalId(ex.message, ex.node.proposals.length);
    ex.hold(id.length + actions.length, 'proposal');
    ex.node.proposals.push({ id, actions });
    ex.memory.writeAt(dest, id);
  },
  approve_proposal(ex, approvalPtr) {
    ex.node.reserveAction();
    const approval = readId32(ex, approvalPtr, 'proposal id');
    ex.hold(approval.length, 'approval');
    ex.node.approvals.push(approval);
  },
};
