/**
 * CRDT map (js_crdt_map_*): byte keys to byte values, add-wins per key (docs/crdt.md). Keys and values obey
 * the storage limits (KeyLengthOverflow, ValueLengthOverflow); a bad id or an id of another kind answers -1
 * with the message in the register (register 0 for js_crdt_map_contains).
 */
import { answerValue, crdtCall, encodeListing, ERROR_REGISTER, readId } from '../crdt/session.js';
import { readKey, readValue } from './storage.js';
import type { FamilyImpl } from './types.js';

export const crdt_map: FamilyImpl<'crdt_map'> = {
  js_crdt_map_new(ex, registerId) {
    return crdtCall(ex, registerId, (c) => {
      ex.setRegister(registerId, c.create('map'));
      return 0;
    });
  },
  js_crdt_map_get(ex, idPtr, keyPtr, registerId) {
    const id = readId(ex, idPtr);
    const key = readKey(ex, keyPtr);
    return crdtCall(ex, registerId, (c) => answerValue(ex, registerId, c.memberGet(id, 'map', key)));
  },
  js_crdt_map_insert(ex, idPtr, keyPtr, valuePtr, registerId) {
    const id = readId(ex, idPtr);
    const key = readKey(ex, keyPtr);
    const value = readValue(ex, valuePtr);
    return crdtCall(ex, registerId, (c) => answerValue(ex, registerId, c.memberPut(id, 'map', key, value)));
  },
  js_crdt_map_remove(ex, idPtr, keyPtr, registerId) {
    const id = readId(ex, idPtr);
    const key = readKey(ex, keyPtr);
    return crdtCall(ex, registerId, (c) => answerValue(ex, registerId, c.memberRemove(id, 'map', key)));
  },
  js_crdt_map_contains(ex, idPtr, keyPtr) {
    const id = readId(ex, idPtr);
    const key = readKey(ex, keyPtr);
    return crdtCall(ex, ERROR_REGISTER, (c) => (c.memberGet(id, 'map', key) === null ? 0 : 1));
  },
  js_crdt_map_iter(ex, idPtr, registerId) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, registerId, (c) => {
      ex.setRegister(registerId, encodeListing(c.entries(id, 'map')));
      return 1;
    });
  },
};
