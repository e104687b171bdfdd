/**
 * Synchronized storage of the current context. Reads go through the VM's cache (only a cold key costs a
 * round trip); writes stay in the overlay and leave with the result. Key and value sizes are checked
 * against the limits before any byte is read.
 */
import type { Execution } from '../execution.js';
import type { FamilyImpl } from './types.js';

export function readKey(ex: Execution, keyPtr: bigint): Uint8Array {
  return ex.readBuffer(keyPtr, 'key', ex.limit('maxStorageKeySize', 'KeyLengthOverflow'));
}

export function readValue(ex: Execution, valuePtr: bigint): Uint8Array {
  return ex.readBuffer(valuePtr, 'value', ex.limit('maxStorageValueSize', 'ValueLengthOverflow'));
}

/** Returns 1 with `value` in the register, or 0 (register untouched) when there is no value. */
export function toRegister(ex: Execution, registerId: bigint, value: Uint8Array | null): number {
  if (value === null) return 0;
  ex.setRegister(registerId, value);
  return 1;
}

export const storage: FamilyImpl<'storage'> = {
  storage_read(ex, keyPtr, registerId) {
    return toRegister(ex, registerId, ex.storage.read(readKey(ex, keyPtr)));
  },
  storage_write(ex, keyPtr, valuePtr, registerId) {
    const key = readKey(ex, keyPtr);
    const value = readValue(ex, valuePtr);
    const old = ex.storage.write(key, value);
    // A sandbox may write but not read: its writes are blind (docs/nondet.md).
    return ex.rules.kind === 'main' ? toRegister(ex, registerId, old) : 0;
  },
  storage_remove(ex, keyPtr, registerId) {
    const old = ex.storage.remove(readKey(ex, keyPtr));
    return ex.rules.kind === 'main' ? toRegister(ex, registerId, old) : 0;
  },
};
