// kv-store: string keys to string values over raw synchronized storage, with JSON in and out.
//
// Storage layout (raw storage cannot be iterated, so the contract keeps its own index):
//   "e:" + key   the value's UTF-8 bytes, one storage key per entry
//   "__index"    every live key, sorted by UTF-8 bytes: repeated (u32 LE length, key bytes)
// Entry keys all start with "e:", so no entry can collide with the index.
import {
  input, returnOk, returnErr, storageRead, storageWrite, storageRemove,
  JsonValue, jsonParseBytes, jsonQuote, fromUtf8, utf8, log,
} from "../../../sdk/assemblyscript/assembly/index";

const INDEX_KEY = "__index";

function entryKey(key: string): string {
  return "e:" + key;
}

// ---------------------------------------------------------------- key index

function loadIndex(): Array<Uint8Array> {
  const raw = storageRead<string>(INDEX_KEY);
  const keys = new Array<Uint8Array>();
  if (raw === null) return keys;
  let at = 0;
  while (at + 4 <= raw.length) {
    const n = <i32>load<u32>(raw.dataStart + <usize>at);
    keys.push(raw.slice(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return keys;
}

function saveIndex(keys: Array<Uint8Array>): void {
  let total = 0;
  for (let i = 0; i < keys.length; i++) total += 4 + keys[i].length;
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < keys.length; i++) {
    store<u32>(out.dataStart + <usize>at, <u32>keys[i].length);
    out.set(keys[i], at + 4);
    at += 4 + keys[i].length;
  }
  storageWrite<string, Uint8Array>(INDEX_KEY, out);
}

/** Byte-wise comparison (UTF-8 byte order equals code point order). */
function compareBytes(a: Uint8Array, b: Uint8Array): i32 {
  const n = min(a.length, b.length);
  const c = memory.compare(a.dataStart, b.dataStart, <usize>n);
  if (c != 0) return c;
  return a.length - b.length;
}

/** Position of `key` in the sorted index, or -(insertion point) - 1. */
function search(keys: Array<Uint8Array>, key: Uint8Array): i32 {
  let lo = 0;
  let hi = keys.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareBytes(keys[mid], key);
    if (c == 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

function indexAdd(key: string): void {
  const keys = loadIndex();
  const k = utf8(key);
  const at = search(keys, k);
  if (at >= 0) return;
  // AssemblyScript's splice cannot insert: append, then shift the tail right by one.
  const pos = -at - 1;
  keys.push(k);
  for (let i = keys.length - 1; i > pos; i--) keys[i] = keys[i - 1];
  keys[pos] = k;
  saveIndex(keys);
}

function indexRemove(key: string): void {
  const keys = loadIndex();
  const at = search(keys, utf8(key));
  if (at < 0) return;
  keys.splice(at, 1);
  saveIndex(keys);
}

// ---------------------------------------------------------------- input

/** The `key` member of the input object; null after returning an InvalidInput error. */
function readKey(args: JsonValue | null): string | null {
  if (args === null || !args.isObject) {
    returnErr('{"kind":"InvalidInput","data":"expected a JSON object"}');
    return null;
  }
  const key = args.getString("key");
  if (key === null) returnErr('{"kind":"InvalidInput","data":"missing string field: key"}');
  return key;
}

function notFound(key: string): string {
  return '{"kind":"NotFound","data":' + jsonQuote(key) + "}";
}

// ---------------------------------------------------------------- methods

/** {"key","value"} → null. */
export function set(): void {
  const args = jsonParseBytes(input());
  const key = readKey(args);
  if (key === null) return;
  const value = args!.getString("value");
  if (value === null) {
    returnErr('{"kind":"InvalidInput","data":"missing string field: value"}');
    return;
  }
  log("set " + key);
  // storage_write answers whether the key existed, so the index changes only for new keys.
  if (storageWrite<string, string>(entryKey(key), value) === null) indexAdd(key);
  returnOk("null");
}

/** {"key"} → the value as a JSON string, or null. */
export function get(): void {
  const key = readKey(jsonParseBytes(input()));
  if (key === null) return;
  const v = storageRead<string>(entryKey(key));
  returnOk(v === null ? "null" : jsonQuote(fromUtf8(v)));
}

/** {"key"} → the value, or the error {"kind":"NotFound","data":key}. */
export function get_result(): void {
  const key = readKey(jsonParseBytes(input()));
  if (key === null) return;
  const v = storageRead<string>(entryKey(key));
  if (v === null) returnErr(notFound(key));
  else returnOk(jsonQuote(fromUtf8(v)));
}

/** {"key"} → the value; panics when the key is missing. */
export function get_unchecked(): void {
  const key = readKey(jsonParseBytes(input()));
  if (key === null) return;
  const v = storageRead<string>(entryKey(key));
  if (v === null) throw new Error("key not found: " + key);
  returnOk(jsonQuote(fromUtf8(v)));
}

/** {"key"} → the removed value, or null. */
export function remove(): void {
  const key = readKey(jsonParseBytes(input()));
  if (key === null) return;
  const old = storageRemove<string>(entryKey(key));
  if (old === null) {
    returnOk("null");
    return;
  }
  indexRemove(key);
  returnOk(jsonQuote(fromUtf8(old)));
}

/** {} → {"key":"value",...} with keys sorted by UTF-8 bytes. */
export function entries(): void {
  const keys = loadIndex();
  const out = JsonValue.object();
  for (let i = 0; i < keys.length; i++) {
    const key = fromUtf8(keys[i]);
    const v = storageRead<string>(entryKey(key));
    // The index is only changed together with the entries, so a miss would mean corrupted state.
    if (v === null) throw new Error("kv-store index names a missing key: " + key);
    out.set(key, JsonValue.string(fromUtf8(v)));
  }
  returnOk(out.toString());
}
