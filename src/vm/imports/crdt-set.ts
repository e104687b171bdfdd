/**
 * CRDT set (js_crdt_set_*): an add-wins observed-remove set, merged by union of adds (docs/crdt.md).
 * Elements act as keys and obey max_storage_key_size (KeyLengthOverflow); a bad id answers -1 with the
 * message in the register (register 0 for the functions without one).
 */
import { crdtCall, encodeListing, ERROR_REGISTER, readId, u64le } from '../crdt/session.js';
import { readKey } from './storage.js';
import type { FamilyImpl } from './types.js';

const NO_VALUE = new Uint8Array(0);

export const crdt_set: FamilyImpl<'crdt_set'> = {
  js_crdt_set_new(ex, registerId) {
    return crdtCall(ex, registerId, (c) => {
      ex.setRegister(registerId, c.create('set'));
      return 0;
    });
  },
  js_crdt_set_insert(ex, idPtr, valuePtr) {
    const id = readId(ex, idPtr);
    const value = readKey(ex, valuePtr);
    return crdtCall(ex, ERROR_REGISTER, (c) => {
      if (c.memberGet(id, 'set', value) !== null) return 0;
      c.memberPut(id, 'set', value, NO_VALUE);
      return 1;
    });
  },
  js_crdt_set_contains(ex, idPtr, valuePtr) {
    const id = readId(ex, idPtr);
    const value = readKey(ex, valuePtr);
    return crdtCall(ex, ERROR_REGISTER, (c) => (c.memberGet(id, 'set', value) === null ? 0 : 1));
  },
  js_crdt_set_remove(ex, idPtr, valuePtr) {
    const id = readId(ex, idPtr);
    const value = readKey(ex, valuePtr);
    return crdtCall(ex, ERROR_REGISTER, (c) => (c.memberRemove(id, 'set', value) === null ? 0 : 1));
  },
  js_crdt_set_len(ex, idPtr, registerId) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, registerId, (c) => {
      ex.setRegister(registerId, u64le(c.memberCount(id, 'set')));
      return 1;
    });
  },
  js_crdt_set_iter(ex, idPtr, registerId) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, registerId, (c) => {
      ex.setRegister(registerId, encodeListing(c.entries(id, 'set').map(([m]) => [m])));
      return 1;
    });
  },
  js_crdt_set_clear(ex, idPtr) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, ERROR_REGISTER, (c) => (c.clear(id, 'set') ? 1 : 0));
  },
};
