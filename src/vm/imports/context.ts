/** Context and identity: which context the execution runs in and who executes it (both from the message). */
import type { FamilyImpl } from './types.js';

export const context: FamilyImpl<'context'> = {
  context_id(ex, registerId) {
    ex.setRegister(registerId, ex.message.contextId);
  },
  executor_id(ex, registerId) {
    ex.setRegister(registerId, ex.message.executorId);
  },
};
