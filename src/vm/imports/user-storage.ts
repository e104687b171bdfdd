/**
 * User storage (js_user_storage_*): one value per user, keyed by the executor id; an execution can change
 * only its own executor's value (docs/crdt.md). Values obey max_storage_value_size. A bad id or a user key
 * that is not 32 bytes answers -1 with the message in the register (register 0 for the contains functions).
 */
import { CrdtDomainError } from '../crdt/bytes.js';
import { answerValue, crdtCall, ERROR_REGISTER, readId } from '../crdt/session.js';
import { readValue } from './storage.js';
import type { FamilyImpl } from './types.js';

function checkUser(user: Uint8Array): Uint8Array {
  if (user.length !== 32) throw new CrdtDomainError(`a user key is a 32-byte executor id, got ${user.length} bytes`);
  return user;
}

export const user_storage: FamilyImpl<'user_storage'> = {
  js_user_storage_new(ex, registerId) {
    return crdtCall(ex, registerId, (c) => {
      ex.setRegister(registerId, c.create('user'));
      return 0;
    });
  },
  js_user_storage_insert(ex, idPtr, valuePtr, registerId) {
    const id = readId(ex, idPtr);
    const value = readValue(ex, valuePtr);
    return crdtCall(ex, registerId, (c) => answerValue(ex, registerId, c.memberPut(id, 'user', ex.message.executorId, value)));
  },
  js_user_storage_get(ex, idPtr, registerId) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, registerId, (c) => answerValue(ex, registerId, c.memberGet(id, 'user', ex.message.executorId)));
  },
  js_user_storage_get_for_user(ex, idPtr, userPtr, registerId) {
    const id = readId(ex, idPtr);
    const user = readId(ex, userPtr, 'user key');
    return crdtCall(ex, registerId, (c) => answerValue(ex, registerId, c.memberGet(id, 'user', checkUser(user))));
  },
  js_user_storage_remove(ex, idPtr, registerId) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, registerId, (c) => answerValue(ex, registerId, c.memberRemove(id, 'user', ex.message.executorId)));
  },
  js_user_storage_contains(ex, idPtr) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, ERROR_REGISTER, (c) => (c.memberGet(id, 'user', ex.message.executorId) === null ? 0 : 1));
  },
  js_user_storage_contains_user(ex, idPtr, userPtr) {
    const id = readId(ex, idPtr);
    const user = readId(ex, userPtr, 'user key');
    return crdtCall(ex, ERROR_REGISTER, (c) => (c.memberGet(id, 'user', checkUser(user)) === null ? 0 : 1));
  },
};
