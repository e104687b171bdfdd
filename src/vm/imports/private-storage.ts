/**
 * Private storage: node-local keys of the current context. Same key and value limits and return codes as
 * synchronized storage, but its own overlay and its own protocol read (private_storage_read); the writes
 * leave as `private_writes`, which the host applies to its private table after success only. They are not
 * in the storage delta and not in the state root.
 */
import { readKey, readValue, toRegister } from './storage.js';
import type { FamilyImpl } from './types.js';

export const private_storage: FamilyImpl<'private_storage'> = {
  private_storage_read(ex, keyPtr, registerId) {
    return toRegister(ex, registerId, ex.node.privateStorage.read(readKey(ex, keyPtr)));
  },
  private_storage_write(ex, keyPtr, valuePtr) {
    const key = readKey(ex, keyPtr);
    const value = readValue(ex, valuePtr);
    ex.node.privateStorage.write(key, value);
    return 1;
  },
  private_storage_remove(ex, keyPtr, registerId) {
    return toRegister(ex, registerId, ex.node.privateStorage.remove(readKey(ex, keyPtr)));
  },
};
