/**
 * Contexts: mutations are queued (applied by the host after success, in call order); membership and alias
 * lookups ask the host, which answers from the call's snapshot of committed state. An alias given to
 * context_create is checked at the host at once: taken in the snapshot (or twice in this call) traps
 * AliasAlreadyExists. A concurrent call that commits the same alias first makes the host run this call again,
 * so the outcome is the one of the two calls run one after the other. Every mutation counts against
 * max_node_actions; whether the call may make it is judged by the host when applying (host/node/contexts.ts).
 */
import { HostlinkError } from '../../errors.js';
import { createdContextId } from '../../protocol/call-ids.js';
import { MAX_ALIAS_BYTES, MAX_CONTEXT_MEMBERS_LISTED, MAX_PROTOCOL_NAME_BYTES } from '../../protocol/node-limits.js';
import { statusError } from '../host-client.js';
import type { Execution } from '../execution.js';
import { readId32 } from './ids.js';
import type { FamilyImpl } from './types.js';
import { ROUND_TRIP_GAS } from '../host-functions.generated.js';

function readAlias(ex: Execution, ptr: bigint): string {
  return ex.readString(ptr, 'alias', { max: MAX_ALIAS_BYTES, error: 'KeyLengthOverflow', name: 'the alias limit' });
}

export const contexts: FamilyImpl<'contexts'> = {
  context_create(ex, protocolPtr, appIdPtr, argsPtr, aliasPtr) {
    const protocol = ex.readString(protocolPtr, 'protocol', {
      max: MAX_PROTOCOL_NAME_BYTES,
      error: 'KeyLengthOverflow',
      name: 'the protocol name limit',
    });
    ex.node.reserveAction();
    const applicationId = readId32(ex, appIdPtr, 'application id');
    const initArgs = ex.readBuffer(argsPtr, 'init args', ex.limit('maxStorageValueSize', 'ValueLengthOverflow'));
    const given = aliasPtr === 0n ? '' : readAlias(ex, aliasPtr);
    const alias = given === '' ? null : given;
    if (alias !== null) {
      const taken = ex.node.aliases.has(alias) || ex.node.host().fetch('context_reserve_alias', { alias })?.reserved !== 1;
      if (taken) ex.fail('AliasAlreadyExists', `alias ${JSON.stringify(alias)} is already in use`);
      ex.node.aliases.add(alias);
    }
    const contextId = createdContextId(ex.message, ex.node.createdContexts++);
    ex.hold(contextId.length + protocol.length + applicationId.length + initArgs.length + (alias?.length ?? 0), 'context_create');
    ex.node.contextMutations.push({ kind: 'create', contextId, protocol, applicationId, initArgs, alias });
  },
  context_delete(ex, contextIdPtr) {
    ex.node.reserveAction();
    const contextId = readId32(ex, contextIdPtr, 'context id');
    ex.hold(contextId.length, 'context_delete');
    ex.node.contextMutations.push({ kind: 'delete', contextId });
  },
  context_add_member(ex, publicKeyPtr) {
    ex.node.reserveAction();
    const publicKey = readId32(ex, publicKeyPtr, 'public key');
    ex.hold(publicKey.length, 'context_add_member');
    ex.node.contextMutations.push({ kind: 'add_member', publicKey });
  },
  context_remove_member(ex, publicKeyPtr) {
    ex.node.reserveAction();
    const publicKey = readId32(ex, publicKeyPtr, 'public key');
    ex.hold(publicKey.length, 'context_remove_member');
    ex.node.contextMutations.push({ kind: 'remove_member', publicKey });
  },
  context_is_member(ex, publicKeyPtr) {
    const publicKey = readId32(ex, publicKeyPtr, 'public key');
    return ex.node.host().fetch('context_is_member', { publicKey })?.isMember === 1 ? 1 : 0;
  },
  context_members(ex, registerId) {
    const answer = ex.node.host().call('context_members', {});
    if (answer.status === 'limit_exceeded') {
      // More members than one answer lists: the host counted one past the frame's bound, and each key counted
      // costs round_trip per_key as the host books it; the list itself cannot reach the guest.
      ex.meter.charge(BigInt(ROUND_TRIP_GAS.perKey) * BigInt(MAX_CONTEXT_MEMBERS_LISTED + 1));
      ex.fail('ValueLengthOverflow', `the context has more than ${MAX_CONTEXT_MEMBERS_LISTED} members, more than one answer of the host lists`);
    }
    if (answer.status !== 'ok' && answer.status !== 'absent') throw statusError('context_members', answer);
    const members = answer.status === 'ok' ? answer.fields.members : [];
    // Each member listed is a key the host read for it (round_trip per_key), charged once the count is known.
    ex.meter.charge(BigInt(ROUND_TRIP_GAS.perKey) * BigInt(members.length));
    // Borsh Vec<[u8;32]>: u32le count, then the keys back to back.
    const out = new Uint8Array(4 + 32 * members.length);
    new DataView(out.buffer).setUint32(0, members.length, true);
    members.forEach((m, i) => {
      if (m.length !== 32) throw new HostlinkError('protocol', `context_members answered a key of ${m.length} bytes`);
      out.set(m, 4 + 32 * i);
    });
    ex.setRegister(registerId, out);
  },
  context_resolve_alias(ex, aliasPtr, registerId) {
    const alias = readAlias(ex, aliasPtr);
    if (alias === '') return 0;
    const answer = ex.node.host().fetch('context_resolve_alias', { alias });
    if (answer === undefined) return 0;
    ex.setRegister(registerId, answer.contextId);
    return 1;
  },
};
