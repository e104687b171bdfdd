// Private (node-local) storage: never replicated, not part of the state root, committed only when the
// call succeeds. Same key/value limits as synchronized storage.
import { private_storage_read, private_storage_write, private_storage_remove } from "./env";
import { valueDescriptor } from "./buffers";
import { DATA_REGISTER, readRegister } from "./registers";

/** The private value under `key`, or null (also null when the node has no private store). */
export function privateStorageRead<K>(key: K): Uint8Array | null {
  if (private_storage_read(valueDescriptor<K>(key), DATA_REGISTER) == 0) return null;
  return readRegister(DATA_REGISTER);
}

/** Writes a private value; false when the node has no private store. */
export function privateStorageWrite<K, V>(key: K, value: V): bool {
  return private_storage_write(valueDescriptor<K>(key), valueDescriptor<V>(value)) == 1;
}

/** Removes a private key; returns the removed value, or null when it was absent. */
export function privateStorageRemove<K>(key: K): Uint8Array | null {
  if (private_storage_remove(valueDescriptor<K>(key), DATA_REGISTER) == 0) return null;
  return readRegister(DATA_REGISTER);
}
