// host-calls: thin JSON front ends for the host functions that the examples do not exercise, so the VM
// can be tested one function at a time. Hex fields are even-length hex; bad input answers
// {"kind":"InvalidInput","data":"<why>"}.
import {
  input, returnOk, returnErr, jsonParseBytes, jsonQuote, JsonValue, toHex, fromHex, fromUtf8, utf8,
  privateStorageRead, privateStorageWrite, privateStorageRemove,
  commit, persistRootState, readRootState, flushDelta, applyStorageDelta,
  fetch, randomBytes, timeNow, ed25519Verify,
  log, debugPrint, emit, emitWithHandler, xcall, registerLen, panicAt, contextId, executorId,
  storageRead, storageWrite, addMember, isMember,
} from "../../../../sdk/assemblyscript/assembly/index";

function args(): JsonValue {
  const v = jsonParseBytes(input());
  return v !== null && v.isObject ? v : JsonValue.object();
}

function invalid(why: string): void {
  returnErr('{"kind":"InvalidInput","data":' + jsonQuote(why) + "}");
}

function hexField(a: JsonValue, field: string): Uint8Array | null {
  const s = a.getString(field);
  return s === null ? null : fromHex(s);
}

function stringOrNull(v: Uint8Array | null): string {
  return v === null ? "null" : jsonQuote(fromUtf8(v));
}

function u64Field(a: JsonValue, field: string): u64 {
  const n = a.getNumber(field);
  return isNaN(n) || n < 0 ? 0 : <u64>n;
}

// ---------------------------------------------------------------- private storage

/** {"key","value"} → true when stored, false when the node has no private store. */
export function private_write(): void {
  const a = args();
  const key = a.getString("key");
  const value = a.getString("value");
  if (key === null || value === null) return invalid("expected {\"key\":string,\"value\":string}");
  returnOk(privateStorageWrite<string, string>(key, value) ? "true" : "false");
}

/** {"key"} → the value or null. */
export function private_read(): void {
  const key = args().getString("key");
  if (key === null) return invalid("expected {\"key\":string}");
  returnOk(stringOrNull(privateStorageRead<string>(key)));
}

/** {"key"} → the removed value or null. */
export function private_remove(): void {
  const key = args().getString("key");
  if (key === null) return invalid("expected {\"key\":string}");
  returnOk(stringOrNull(privateStorageRemove<string>(key)));
}

// ---------------------------------------------------------------- state

/** Asks the host whether the executor is a member of the context, then spins until the gas runs out. */
export function member_then_spin(): void {
  let spins: u32 = isMember(executorId()) ? 1 : 0;
  // The store keeps the loop observable, so no optimiser may drop it.
  while (true) store<u32>(0, spins++);
}

/** {"key"} → the context's value of the key as a JSON string, or null. */
export function state_read(): void {
  const key = args().getString("key");
  if (key === null) return invalid("expected {\"key\":string}");
  returnOk(stringOrNull(storageRead<string>(key)));
}

/**
 * {"key","value","public_key":hex} → null; writes the key (state and private storage) and queues adding the member. The host refuses the
 * whole call at commit when the executor is not a member of the context: a call that returned with writes
 * and applied nothing.
 */
export function write_and_add_member(): void {
  const a = args();
  const key = a.getString("key");
  const value = a.getString("value");
  const pk = hexField(a, "public_key");
  if (key === null || value === null || pk === null || pk.length != 32) return invalid("expected {\"key\":string,\"value\":string,\"public_key\":hex(32 bytes)}");
  storageWrite<string, string>(key, value);
  privateStorageWrite<string, string>(key, value);
  addMember(pk);
  returnOk("null");
}

/** {"root":hex(32 bytes),"artifact":hex} → null. */
export function commit_state(): void {
  const a = args();
  const root = hexField(a, "root");
  const artifact = hexField(a, "artifact");
  if (root === null || artifact === null) return invalid("expected {\"root\":hex,\"artifact\":hex}");
  commit(root, artifact);
  returnOk("null");
}

/** Commits twice: the second commit traps (CommitTwice). */
export function commit_twice(): void {
  const root = new Uint8Array(32);
  commit(root, new Uint8Array(1));
  commit(root, new Uint8Array(1));
  returnOk("null");
}

/** {"doc":string,"created_at"?:n,"updated_at"?:n} → null. */
export function persist_root(): void {
  const a = args();
  const doc = a.getString("doc");
  if (doc === null) return invalid("expected {\"doc\":string}");
  persistRootState<string>(doc, u64Field(a, "created_at"), u64Field(a, "updated_at"));
  returnOk("null");
}

/** {} → the root document as a string, or null. */
export function read_root(): void {
  returnOk(stringOrNull(readRootState()));
}

/** {} → true when pending collection changes were emitted as the artifact. */
export function flush(): void {
  returnOk(flushDelta() ? "true" : "false");
}

/** {"delta":hex} (Borsh StorageDelta) → null. */
export function apply_delta(): void {
  const delta = hexField(args(), "delta");
  if (delta === null) return invalid("expected {\"delta\":hex}");
  applyStorageDelta(delta);
  returnOk("null");
}

// ---------------------------------------------------------------- utility

/** {"url","method"?:"GET","headers"?:{name:value},"body"?:string} → {"ok":bool,"body":string}. */
export function http_fetch(): void {
  const a = args();
  const url = a.getString("url");
  if (url === null) return invalid("expected {\"url\":string}");
  const method = a.getString("method");
  const body = a.getString("body");
  const headers = new Array<string>();
  const h = a.get("headers");
  if (h !== null && h.isObject) {
    for (let i = 0; i < h.keys.length; i++) {
      if (!h.values[i].isString) return invalid("header values must be strings");
      headers.push(h.keys[i]);
      headers.push(h.values[i].strValue);
    }
  }
  const r = fetch<string>(url, method === null ? "GET" : method, headers, body === null ? "" : body);
  returnOk(JsonValue.object().set("ok", JsonValue.bool(r.ok)).set("body", JsonValue.string(r.text)).toString());
}

/** {"n":32} → hex of n random bytes (0..65536). */
export function random(): void {
  const n = args().getNumber("n");
  if (isNaN(n) || n < 0 || n > 65536) return invalid("expected {\"n\":0..65536}");
  returnOk(jsonQuote(toHex(randomBytes(<i32>n))));
}

/** {} → the block time in nanoseconds, as a decimal string (u64 does not fit a JSON number). */
export function now(): void {
  returnOk(jsonQuote(timeNow().toString()));
}

/** {"signature":hex,"public_key":hex,"message":string} → true / false. */
export function verify(): void {
  const a = args();
  const sig = hexField(a, "signature");
  const pk = hexField(a, "public_key");
  const msg = a.getString("message");
  if (sig === null || pk === null || msg === null) return invalid("expected {\"signature\":hex,\"public_key\":hex,\"message\":string}");
  returnOk(ed25519Verify<string>(sig, pk, msg) ? "true" : "false");
}

// ---------------------------------------------------------------- logs, events, xcalls

/** {"message"} → null; logs it through log_utf8 and js_std_d_print. */
export function logs(): void {
  const m = args().getString("message");
  if (m === null) return invalid("expected {\"message\":string}");
  log(m);
  debugPrint(m);
  returnOk("null");
}

/** {"kind","data","handler"?} → null; emit, or emit_with_handler when a handler is given. */
export function event(): void {
  const a = args();
  const kind = a.getString("kind");
  const data = a.getString("data");
  const handler = a.getString("handler");
  if (kind === null || data === null) return invalid("expected {\"kind\":string,\"data\":string}");
  if (handler === null) emit<string>(kind, data);
  else emitWithHandler<string>(kind, data, handler);
  returnOk("null");
}

/** {"context_id":hex,"function","params":string} → null; queues the cross-context call. */
export function cross_call(): void {
  const a = args();
  const ctx = hexField(a, "context_id");
  const fn = a.getString("function");
  const params = a.getString("params");
  if (ctx === null || fn === null || params === null) return invalid("expected {\"context_id\":hex,\"function\":string,\"params\":string}");
  xcall<Uint8Array>(ctx, fn, utf8(params));
  returnOk("null");
}

// ---------------------------------------------------------------- registers, identity, panic

/** {"register":n} → register_len of that register (-1 when missing). */
export function register_length(): void {
  returnOk(registerLen(u64Field(args(), "register")).toString());
}

/** {} → {"context_id":hex,"executor_id":hex}. */
export function ids(): void {
  returnOk(JsonValue.object()
    .set("context_id", JsonValue.string(toHex(contextId())))
    .set("executor_id", JsonValue.string(toHex(executorId())))
    .toString());
}

/** Calls `panic` (no message) with location host-calls:1:2: the host reports "explicit panic". */
export function panic_plain(): void {
  panicAt("host-calls", 1, 2);
}
