// Synchronized storage: replicated with the context's state and committed only when the call succeeds.
// Keys and values are strings (UTF-8) or bytes. Keys may be up to 1 MiB, values up to 10 MiB (larger traps).
import { storage_read, storage_write, storage_remove } from "./env";
import { valueDescriptor } from "./buffers";
import { DATA_REGISTER, readRegister } from "./registers";

/** The value stored under `key`, or null. */
export function storageRead<K>(key: K): Uint8Array | null {
  if (storage_read(valueDescriptor<K>(key), DATA_REGISTER) == 0) return null;
  return readRegister(DATA_REGISTER);
}

/** The value under `key` decoded as UTF-8, or null. */
export function storageReadString<K>(key: K): string | null {
  const v = storageRead<K>(key);
  return v === null ? null : String.UTF8.decodeUnsafe(v.dataStart, <usize>v.byteLength, false);
}

/** Writes `value` under `key`; returns the previous value, or null when the key is new. */
export function storageWrite<K, V>(key: K, value: V): Uint8Array | null {
  if (storage_write(valueDescriptor<K>(key), valueDescriptor<V>(value), DATA_REGISTER) == 0) return null;
  return readRegister(DATA_REGISTER);
}

/** Removes `key`; returns the removed value, or null when it was absent. */
export function storageRemove<K>(key: K): Uint8Array | null {
  if (storage_remove(valueDescriptor<K>(key), DATA_REGISTER) == 0) return null;
  return readRegister(DATA_REGISTER);
}

/** Whether `key` is present (reads the value: raw storage has no cheaper test). */
export function storageHas<K>(key: K): bool {
  return storage_read(valueDescriptor<K>(key), DATA_REGISTER) != 0;
}
