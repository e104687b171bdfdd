/**
 * CRDT vector (js_crdt_vector_*): merged element-wise (last writer per position), then the longer one's
 * extra elements (docs/crdt.md). Values obey max_storage_value_size; a bad id answers -1 with the message in
 * the register (register 0 for js_crdt_vector_push).
 */
import { answerValue, crdtCall, ERROR_REGISTER, readId, u64le } from '../crdt/session.js';
import { readValue } from './storage.js';
import type { FamilyImpl } from './types.js';

export const crdt_vector: FamilyImpl<'crdt_vector'> = {
  js_crdt_vector_new(ex, registerId) {
    return crdtCall(ex, registerId, (c) => {
      ex.setRegister(registerId, c.create('vector'));
      return 0;
    });
  },
  js_crdt_vector_len(ex, idPtr, registerId) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, registerId, (c) => {
      ex.setRegister(registerId, u64le(c.vectorLength(id)));
      return 1;
    });
  },
  js_crdt_vector_push(ex, idPtr, valuePtr) {
    const id = readId(ex, idPtr);
    const value = readValue(ex, valuePtr);
    return crdtCall(ex, ERROR_REGISTER, (c) => {
      c.vectorPush(id, value);
      return 1;
    });
  },
  js_crdt_vector_get(ex, idPtr, index, registerId) {
    const id = readId(ex, idPtr);
    // The index is a u64 that arrives as a signed i64.
    return crdtCall(ex, registerId, (c) => answerValue(ex, registerId, c.vectorGet(id, BigInt.asUintN(64, index))));
  },
  js_crdt_vector_pop(ex, idPtr, registerId) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, registerId, (c) => answerValue(ex, registerId, c.vectorPop(id)));
  },
};
