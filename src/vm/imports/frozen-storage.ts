/**
 * Frozen storage (js_frozen_storage_*): immutable, content-addressed values; the key is
 * SHA-256(u32le(len) || bytes) and there is no removal (docs/crdt.md). Values obey max_storage_value_size.
 * A bad id or a hash that is not 32 bytes answers -1 with the message in the register (register 0 for
 * js_frozen_storage_contains).
 */
import { answerValue, crdtCall, ERROR_REGISTER, readId } from '../crdt/session.js';
import { readValue } from './storage.js';
import type { FamilyImpl } from './types.js';

export const frozen_storage: FamilyImpl<'frozen_storage'> = {
  js_frozen_storage_new(ex, registerId) {
    return crdtCall(ex, registerId, (c) => {
      ex.setRegister(registerId, c.create('frozen'));
      return 0;
    });
  },
  js_frozen_storage_add(ex, idPtr, valuePtr, registerId) {
    const id = readId(ex, idPtr);
    const value = readValue(ex, valuePtr);
    return crdtCall(ex, registerId, (c) => answerValue(ex, registerId, c.frozenAdd(id, value)));
  },
  js_frozen_storage_get(ex, idPtr, hashPtr, registerId) {
    const id = readId(ex, idPtr);
    const hash = readId(ex, hashPtr, 'hash');
    return crdtCall(ex, registerId, (c) => answerValue(ex, registerId, c.frozenGet(id, hash)));
  },
  js_frozen_storage_contains(ex, idPtr, hashPtr) {
    const id = readId(ex, idPtr);
    const hash = readId(ex, hashPtr, 'hash');
    return crdtCall(ex, ERROR_REGISTER, (c) => (c.frozenGet(id, hash) === null ? 0 : 1));
  },
};
