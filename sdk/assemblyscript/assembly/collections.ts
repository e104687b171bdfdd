// CRDT collections kept by the host (js_crdt_*, js_user_storage_*, js_frozen_storage_*).
// Each collection is named by a 32-byte id: `create()` asks the host for a new one, `at(id)` wraps an
// id saved earlier (e.g. in the root state). The host answers -1 with a message in the register for a
// domain error (such as an id that is not 32 bytes); the SDK turns that into a CrdtError, which aborts
// the call as a panic "CrdtError(<function>): <message>" (AssemblyScript cannot catch).
// Changes reach other nodes only when the call ends with flushDelta().
import {
  js_crdt_map_new, js_crdt_map_get, js_crdt_map_insert, js_crdt_map_remove, js_crdt_map_contains, js_crdt_map_iter,
  js_crdt_vector_new, js_crdt_vector_len, js_crdt_vector_push, js_crdt_vector_get, js_crdt_vector_pop,
  js_crdt_set_new, js_crdt_set_insert, js_crdt_set_contains, js_crdt_set_remove, js_crdt_set_len, js_crdt_set_iter, js_crdt_set_clear,
  js_crdt_lww_new, js_crdt_lww_set, js_crdt_lww_get, js_crdt_lww_timestamp,
  js_crdt_counter_new, js_crdt_counter_increment, js_crdt_counter_value, js_crdt_counter_get_executor_count,
  js_user_storage_new, js_user_storage_insert, js_user_storage_get, js_user_storage_get_for_user, js_user_storage_remove,
  js_user_storage_contains, js_user_storage_contains_user,
  js_frozen_storage_new, js_frozen_storage_add, js_frozen_storage_get, js_frozen_storage_contains,
} from "./env";
import { bytesDescriptor, toBytes, toHex, fromUtf8 } from "./buffers";
import { DATA_REGISTER, ERROR_REGISTER, readRegister, readRegisterString } from "./registers";
import { BorshReader } from "./borsh";
import { panic } from "./panic";

/** A collection function answered -1: `fn` is the host function, `message` the host's explanation. */
export class CrdtError {
  constructor(public fn: string, public message: string) {}

  toString(): string {
    return "CrdtError(" + this.fn + "): " + this.message;
  }
}

/** Aborts the call with a CrdtError built from the message in `register`. */
function fail(fn: string, register: u64): void {
  panic(new CrdtError(fn, readRegisterString(register)).toString(), "sdk/assemblyscript/assembly/collections.ts");
}

/** Passes `rc` through, or fails on -1 (any negative answer). */
// @ts-ignore: decorator
@inline
function check(fn: string, rc: i32, register: u64): i32 {
  if (rc < 0) fail(fn, register);
  return rc;
}

/** Calls a `*_new` function and returns the id it wrote. */
function newId(fn: string, rc: i32): Uint8Array {
  check(fn, rc, DATA_REGISTER);
  return readRegister(DATA_REGISTER);
}

/** The value in the data register when `rc` is 1, else null. */
function valueIf(rc: i32): Uint8Array | null {
  return rc == 1 ? readRegister(DATA_REGISTER) : null;
}

function u64In(bytes: Uint8Array): u64 {
  if (bytes.length < 8) return 0;
  return load<u64>(bytes.dataStart);
}

function requireId(id: Uint8Array): Uint8Array {
  if (id.length != 32) throw new Error("collection id must be 32 bytes, got " + id.length.toString());
  return id;
}

/** Base of every collection: the 32-byte id and its descriptor (built once). */
abstract class Collection {
  readonly id: Uint8Array;
  protected readonly idPtr: u64;

  constructor(id: Uint8Array) {
    this.id = id;
    this.idPtr = <u64>bytesDescriptor(id);
  }

  get idHex(): string {
    return toHex(this.id);
  }
}

/** One map entry as listed by `CrdtMap.entries()`. */
export class MapEntry {
  constructor(public key: Uint8Array, public value: Uint8Array) {}

  get keyString(): string { return fromUtf8(this.key); }
  get valueString(): string { return fromUtf8(this.value); }
}

/** Add-wins map of byte keys to byte values (strings are UTF-8). */
export class CrdtMap extends Collection {
  static create(): CrdtMap { return new CrdtMap(newId("js_crdt_map_new", js_crdt_map_new(DATA_REGISTER))); }
  static at(id: Uint8Array): CrdtMap { return new CrdtMap(requireId(id)); }

  get<K>(key: K): Uint8Array | null {
    return valueIf(check("js_crdt_map_get", js_crdt_map_get(this.idPtr, bytesDescriptor(toBytes<K>(key)), DATA_REGISTER), DATA_REGISTER));
  }

  getString<K>(key: K): string | null {
    const v = this.get<K>(key);
    return v === null ? null : fromUtf8(v);
  }

  /** Inserts or replaces; returns the previous value, or null. */
  insert<K, V>(key: K, value: V): Uint8Array | null {
    const rc = js_crdt_map_insert(this.idPtr, bytesDescriptor(toBytes<K>(key)), bytesDescriptor(toBytes<V>(value)), DATA_REGISTER);
    return valueIf(check("js_crdt_map_insert", rc, DATA_REGISTER));
  }

  /** Removes; returns the removed value, or null. */
  remove<K>(key: K): Uint8Array | null {
    return valueIf(check("js_crdt_map_remove", js_crdt_map_remove(this.idPtr, bytesDescriptor(toBytes<K>(key)), DATA_REGISTER), DATA_REGISTER));
  }

  contains<K>(key: K): bool {
    return check("js_crdt_map_contains", js_crdt_map_contains(this.idPtr, bytesDescriptor(toBytes<K>(key))), ERROR_REGISTER) == 1;
  }

  /** Every entry in key order (register: u32 count, then (u32 klen, key, u32 vlen, value)*, LE). */
  entries(): Array<MapEntry> {
    check("js_crdt_map_iter", js_crdt_map_iter(this.idPtr, DATA_REGISTER), DATA_REGISTER);
    const r = new BorshReader(readRegister(DATA_REGISTER));
    const n = r.u32();
    const out = new Array<MapEntry>();
    for (let i: u32 = 0; i < n; i++) {
      const k = r.bytes();
      out.push(new MapEntry(k, r.bytes()));
    }
    return out;
  }
}

/** Vector of byte values; concurrent pushes interleave by time. */
export class CrdtVector extends Collection {
  static create(): CrdtVector { return new CrdtVector(newId("js_crdt_vector_new", js_crdt_vector_new(DATA_REGISTER))); }
  static at(id: Uint8Array): CrdtVector { return new CrdtVector(requireId(id)); }

  get length(): u64 {
    check("js_crdt_vector_len", js_crdt_vector_len(this.idPtr, DATA_REGISTER), DATA_REGISTER);
    return u64In(readRegister(DATA_REGISTER));
  }

  push<V>(value: V): void {
    check("js_crdt_vector_push", js_crdt_vector_push(this.idPtr, bytesDescriptor(toBytes<V>(value))), ERROR_REGISTER);
  }

  /** Element `index`, or null when out of range. */
  get(index: u64): Uint8Array | null {
    return valueIf(check("js_crdt_vector_get", js_crdt_vector_get(this.idPtr, index, DATA_REGISTER), DATA_REGISTER));
  }

  /** Removes and returns the last element, or null when empty. */
  pop(): Uint8Array | null {
    return valueIf(check("js_crdt_vector_pop", js_crdt_vector_pop(this.idPtr, DATA_REGISTER), DATA_REGISTER));
  }

  /** Every element in order. */
  values(): Array<Uint8Array> {
    const n = this.length;
    const out = new Array<Uint8Array>();
    for (let i: u64 = 0; i < n; i++) {
      const v = this.get(i);
      if (v !== null) out.push(v);
    }
    return out;
  }
}

/** Union-merged set of byte values. */
export class CrdtSet extends Collection {
  static create(): CrdtSet { return new CrdtSet(newId("js_crdt_set_new", js_crdt_set_new(DATA_REGISTER))); }
  static at(id: Uint8Array): CrdtSet { return new CrdtSet(requireId(id)); }

  /** True when the value was added (false: already present). */
  insert<V>(value: V): bool {
    return check("js_crdt_set_insert", js_crdt_set_insert(this.idPtr, bytesDescriptor(toBytes<V>(value))), ERROR_REGISTER) == 1;
  }

  contains<V>(value: V): bool {
    return check("js_crdt_set_contains", js_crdt_set_contains(this.idPtr, bytesDescriptor(toBytes<V>(value))), ERROR_REGISTER) == 1;
  }

  /** True when the value was removed (false: absent). */
  remove<V>(value: V): bool {
    return check("js_crdt_set_remove", js_crdt_set_remove(this.idPtr, bytesDescriptor(toBytes<V>(value))), ERROR_REGISTER) == 1;
  }

  get size(): u64 {
    check("js_crdt_set_len", js_crdt_set_len(this.idPtr, DATA_REGISTER), DATA_REGISTER);
    return u64In(readRegister(DATA_REGISTER));
  }

  /** Every value in byte order (register: u32 count, then (u32 len, value)*). */
  values(): Array<Uint8Array> {
    check("js_crdt_set_iter", js_crdt_set_iter(this.idPtr, DATA_REGISTER), DATA_REGISTER);
    const r = new BorshReader(readRegister(DATA_REGISTER));
    const n = r.u32();
    const out = new Array<Uint8Array>();
    for (let i: u32 = 0; i < n; i++) out.push(r.bytes());
    return out;
  }

  /** Empties the set; false when it was already empty. */
  clear(): bool {
    return check("js_crdt_set_clear", js_crdt_set_clear(this.idPtr), ERROR_REGISTER) == 1;
  }
}

/** Timestamp of an LWW register: HLC time (NTP64: seconds << 32 | fraction) and the writer's u128 id. */
export class LwwTimestamp {
  constructor(public time: u64, public idLo: u64, public idHi: u64) {}
}

/** Last-writer-wins register holding one optional byte value. */
export class LwwRegister extends Collection {
  static create(): LwwRegister { return new LwwRegister(newId("js_crdt_lww_new", js_crdt_lww_new(DATA_REGISTER))); }
  static at(id: Uint8Array): LwwRegister { return new LwwRegister(requireId(id)); }

  /** Sets the value; true when it changed (the register is restamped either way). */
  set<V>(value: V): bool {
    return check("js_crdt_lww_set", js_crdt_lww_set(this.idPtr, bytesDescriptor(toBytes<V>(value)), 1), ERROR_REGISTER) == 1;
  }

  /** Clears the value (stores None); true when it changed. */
  clear(): bool {
    // has_value 0: the host ignores the value descriptor, but it must still be readable.
    return check("js_crdt_lww_set", js_crdt_lww_set(this.idPtr, bytesDescriptor(new Uint8Array(0)), 0), ERROR_REGISTER) == 1;
  }

  get(): Uint8Array | null {
    return valueIf(check("js_crdt_lww_get", js_crdt_lww_get(this.idPtr, DATA_REGISTER), DATA_REGISTER));
  }

  getString(): string | null {
    const v = this.get();
    return v === null ? null : fromUtf8(v);
  }

  /** The last write's timestamp, or null when never set. */
  timestamp(): LwwTimestamp | null {
    if (check("js_crdt_lww_timestamp", js_crdt_lww_timestamp(this.idPtr, DATA_REGISTER), DATA_REGISTER) != 1) return null;
    const r = new BorshReader(readRegister(DATA_REGISTER));
    const time = r.u64();
    const lo = r.u64();
    return new LwwTimestamp(time, lo, r.u64());
  }
}

/** Grow-only counter: one share per executor, the value is their sum. */
export class Counter extends Collection {
  static create(): Counter { return new Counter(newId("js_crdt_counter_new", js_crdt_counter_new(DATA_REGISTER))); }
  static at(id: Uint8Array): Counter { return new Counter(requireId(id)); }

  /** Adds one to the current executor's share. */
  increment(): void {
    check("js_crdt_counter_increment", js_crdt_counter_increment(this.idPtr), ERROR_REGISTER);
  }

  get value(): u64 {
    check("js_crdt_counter_value", js_crdt_counter_value(this.idPtr, DATA_REGISTER), DATA_REGISTER);
    return u64In(readRegister(DATA_REGISTER));
  }

  /** One executor's share (32-byte public key), or the current executor's when null. */
  executorCount(executor: Uint8Array | null = null): u64 {
    const has: u32 = executor === null ? 0 : 1;
    const ptr: u64 = executor === null ? 0 : <u64>bytesDescriptor(executor);
    check("js_crdt_counter_get_executor_count", js_crdt_counter_get_executor_count(this.idPtr, ptr, has, DATA_REGISTER), DATA_REGISTER);
    return u64In(readRegister(DATA_REGISTER));
  }
}

/** One value per user, keyed by the executor's public key; only the executor can change its own. */
export class UserStorage extends Collection {
  static create(): UserStorage { return new UserStorage(newId("js_user_storage_new", js_user_storage_new(DATA_REGISTER))); }
  static at(id: Uint8Array): UserStorage { return new UserStorage(requireId(id)); }

  /** Sets the current executor's value; returns the previous one, or null. */
  insert<V>(value: V): Uint8Array | null {
    return valueIf(check("js_user_storage_insert", js_user_storage_insert(this.idPtr, bytesDescriptor(toBytes<V>(value)), DATA_REGISTER), DATA_REGISTER));
  }

  /** The current executor's value, or null. */
  get(): Uint8Array | null {
    return valueIf(check("js_user_storage_get", js_user_storage_get(this.idPtr, DATA_REGISTER), DATA_REGISTER));
  }

  /** A given user's value (32-byte public key), or null. */
  getForUser(user: Uint8Array): Uint8Array | null {
    return valueIf(check("js_user_storage_get_for_user", js_user_storage_get_for_user(this.idPtr, bytesDescriptor(user), DATA_REGISTER), DATA_REGISTER));
  }

  /** Removes the current executor's value; returns it, or null. */
  remove(): Uint8Array | null {
    return valueIf(check("js_user_storage_remove", js_user_storage_remove(this.idPtr, DATA_REGISTER), DATA_REGISTER));
  }

  contains(): bool {
    return check("js_user_storage_contains", js_user_storage_contains(this.idPtr), ERROR_REGISTER) == 1;
  }

  containsUser(user: Uint8Array): bool {
    return check("js_user_storage_contains_user", js_user_storage_contains_user(this.idPtr, bytesDescriptor(user)), ERROR_REGISTER) == 1;
  }
}

/** Content-addressed, immutable values: the key is SHA-256(u32le(len) || bytes); no removal. */
export class FrozenStorage extends Collection {
  static create(): FrozenStorage { return new FrozenStorage(newId("js_frozen_storage_new", js_frozen_storage_new(DATA_REGISTER))); }
  static at(id: Uint8Array): FrozenStorage { return new FrozenStorage(requireId(id)); }

  /** Adds a value; returns its 32-byte hash. */
  add<V>(value: V): Uint8Array {
    check("js_frozen_storage_add", js_frozen_storage_add(this.idPtr, bytesDescriptor(toBytes<V>(value)), DATA_REGISTER), DATA_REGISTER);
    return readRegister(DATA_REGISTER);
  }

  get(hash: Uint8Array): Uint8Array | null {
    return valueIf(check("js_frozen_storage_get", js_frozen_storage_get(this.idPtr, bytesDescriptor(hash), DATA_REGISTER), DATA_REGISTER));
  }

  contains(hash: Uint8Array): bool {
    return check("js_frozen_storage_contains", js_frozen_storage_contains(this.idPtr, bytesDescriptor(hash)), ERROR_REGISTER) == 1;
  }
}
