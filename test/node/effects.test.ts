/** The node effects in consume_result: round trip, omitted when empty, and the host's checks against the message. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HostlinkError } from '../../src/errors.js';
import { createdContextId, proposalId } from '../../src/protocol/call-ids.js';
import { decodeEffects, emptyEffects, encodeEffects, type Effects } from '../../src/protocol/effects.js';
import { buildMessage, parseMessage } from '../../src/protocol/message.js';
import { checkNodeEffects } from '../../src/protocol/node-effects.js';
import { id32, utf8 } from '../helpers.js';

const msg = parseMessage(buildMessage({ codeHash: id32('code'), method: 'm', contextId: id32('ctx'), limits: { maxStorageValueSize: 16 } }));

function full(): Effects {
  return {
    ...emptyEffects(),
    privateWrites: [[utf8('a'), utf8('1')], [utf8('b'), null]],
    contextMutations: [
      { kind: 'create', contextId: createdContextId(msg, 0), protocol: 'near', applicationId: id32('app'), initArgs: utf8('{}'), alias: 'team' },
      { kind: 'delete', contextId: id32('old') },
      { kind: 'add_member', publicKey: id32('k') },
      { kind: 'remove_member', publicKey: id32('j') },
    ],
    blobAnnouncements: [{ blobId: id32('blob'), contextId: id32('ctx') }],
    proposals: [{ id: proposalId(msg, 0), actions: Uint8Array.of(0, 0, 0, 0) }],
    approvals: [id32('p')],
  };
}

const rejects = (e: Effects, pattern: RegExp): void =>
  assert.throws(() => checkNodeEffects(msg, decodeEffects(encodeEffects(e))), (err: unknown) => err instanceof HostlinkError && err.code === 'protocol' && pattern.test(err.message));

describe('node effects', () => {
  test('round trip; empty lists are omitted so plain effects encode as before', () => {
    const e = full();
    assert.deepEqual(decodeEffects(encodeEffects(e)), e);
    checkNodeEffects(msg, e);
    const plain = encodeEffects(emptyEffects());
    assert.ok(!Buffer.from(plain).includes(Buffer.from('private_writes')));
    assert.deepEqual(decodeEffects(plain), emptyEffects());
  });

  test('the host rejects ids that are not derived from the message, and values over the limits', () => {
    const e = full();
    rejects({ ...e, proposals: [{ id: id32('forged'), actions: Uint8Array.of(0, 0, 0, 0) }] }, /proposals\[0\]\.id is not the derived id/);
    rejects({ ...e, contextMutations: [{ ...e.contextMutations[0]!, contextId: id32('forged') } as Effects['contextMutations'][number]] }, /context_id is not the derived id/);
    rejects({ ...e, privateWrites: [[utf8('a'), new Uint8Array(17)]] }, /exceeds max_storage_value_size/);
    rejects({ ...e, proposals: [{ id: proposalId(msg, 0), actions: new Uint8Array(17) }] }, /exceeds max_storage_value_size/);
    assert.throws(() => decodeEffects(encodeEffects({ ...e, privateWrites: [...e.privateWrites].reverse() })), /not sorted/);
  });
});
