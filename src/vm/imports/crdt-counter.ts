/**
 * Grow-only counter (js_crdt_counter_*): one share per executor, merged by per-executor maximum; the value
 * is the sum (docs/crdt.md). A bad id or executor length answers -1 with the message in the register
 * (register 0 for js_crdt_counter_increment).
 */
import { CrdtDomainError } from '../crdt/bytes.js';
import { crdtCall, ERROR_REGISTER, readId, u64le } from '../crdt/session.js';
import type { FamilyImpl } from './types.js';

export const crdt_counter: FamilyImpl<'crdt_counter'> = {
  js_crdt_counter_new(ex, registerId) {
    return crdtCall(ex, registerId, (c) => {
      ex.setRegister(registerId, c.create('counter'));
      return 0;
    });
  },
  js_crdt_counter_increment(ex, idPtr) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, ERROR_REGISTER, (c) => {
      c.counterIncrement(id);
      return 1;
    });
  },
  js_crdt_counter_value(ex, idPtr, registerId) {
    const id = readId(ex, idPtr);
    return crdtCall(ex, registerId, (c) => {
      ex.setRegister(registerId, u64le(c.counterValue(id)));
      return 1;
    });
  },
  js_crdt_counter_get_executor_count(ex, idPtr, executorPtr, hasExecutor, registerId) {
    const id = readId(ex, idPtr);
    // has_executor 0: the current executor, and executor_ptr is not read (the SDK passes 0).
    const executor = hasExecutor !== 0 ? readId(ex, executorPtr, 'executor id') : null;
    return crdtCall(ex, registerId, (c) => {
      if (executor !== null && executor.length !== 32) throw new CrdtDomainError(`executor id must be 32 bytes, got ${executor.length}`);
      ex.setRegister(registerId, u64le(c.counterShare(id, executor)));
      return 1;
    });
  },
};
