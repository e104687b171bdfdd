/**
 * Last-writer-wins register (js_crdt_lww_*): the higher HLC timestamp wins, then the higher node id
 * (docs/crdt.md). Every set restamps, even with an equal value. A bad id answers -1 with the message in the
 * register (register 0 for js_crdt_lww_set).
 */
import { lwwTimestampBytes } from '../crdt/hlc.js';
import { answerValue, crdtCall, ERROR_REGISTER, readId } from '../crdt/session.js';
import { readValue } from './storage.js';
import type { FamilyImpl } from './types.js';

export const crdt_lww: FamilyImpl<'crdt_lww'> = {
  js_crdt_lww_new(ex, registerId) {
    return crdtCall(ex, registerId, (c) => {
      ex.setRegister(registerId, c.create('lww'));
      return 0;
    });
  },
  js_crdt_lww_set(ex, idPtr, valuePtr, hasValue) {
    const id = readId(ex, idPtr);
    // The value descriptor is read (and must be valid) even when has_value is 0, which stores "no value".
    const value = readValue(ex, valuePtr);
    return crdtCall(ex, ERROR_REGISTER, (c) => (c.lwwSet(id, hasValue !== 0 ? value : null) ? 1 : 0));
  },
  js_crdt_lww_get(ex, idPtr, registerId) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, registerId, (c) => answerValue(ex, registerId, c.lwwCell(id)?.value ?? null));
  },
  js_crdt_lww_timestamp(ex, idPtr, registerId) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, registerId, (c) => {
      const cell = c.lwwCell(id);
      return answerValue(ex, registerId, cell === null ? null : lwwTimestampBytes(cell.time, cell.executor));
    });
  },
};
