// blob-store: uploads bytes as blobs written in chunks, downloads them, announces them to contexts,
// and keeps a catalogue of what was uploaded.
//
// Storage layout: "blob:" + <hex id> → JSON {"blob_id","name","size"}; "__blobs" → the hex ids in
// upload order, as a JSON array (raw storage cannot be iterated).
import {
  input, returnOk, returnErr, jsonParseBytes, jsonParse, jsonQuote, JsonValue, toHex, fromHex, fromUtf8, utf8,
  BlobWriter, BlobReader, announceBlob, contextId, storageRead, storageWrite, emit,
} from "../../../sdk/assemblyscript/assembly/index";

const LIST_KEY = "__blobs";
const DEFAULT_CHUNK: i32 = 65536;

function args(): JsonValue {
  const v = jsonParseBytes(input());
  return v !== null && v.isObject ? v : JsonValue.object();
}

function invalid(why: string): void {
  returnErr('{"kind":"InvalidInput","data":' + jsonQuote(why) + "}");
}

/** A positive integer member, `fallback` when absent, or -1 when present but not a positive integer. */
function positiveInt(a: JsonValue, field: string, fallback: i32): i32 {
  if (!a.has(field)) return fallback;
  const n = a.getNumber(field);
  if (isNaN(n) || n < 1 || n > 16777216 || n != Math.trunc(n)) return -1;
  return <i32>n;
}

function id32(a: JsonValue, field: string): Uint8Array | null {
  const s = a.getString(field);
  if (s === null) return null;
  const b = fromHex(s);
  return b !== null && b.length == 32 ? b : null;
}

function listIds(): JsonValue {
  const raw = storageRead<string>(LIST_KEY);
  const list: JsonValue | null = raw === null ? null : jsonParseBytes(raw);
  return list !== null && list.isArray ? list : JsonValue.array();
}

/**
 * {"name":"a.txt","data":"text"} or {"name":"a.bin","hex":"00ff..."}, optional "chunk_size" (default 65536)
 * → {"blob_id":hex,"name":..,"size":n,"chunks":n}. Emits event BlobUploaded with the same JSON.
 */
export function upload(): void {
  const a = args();
  const name = a.getString("name");
  if (name === null) return invalid("missing string field: name");
  let bytes: Uint8Array | null = null;
  const text = a.getString("data");
  const hex = a.getString("hex");
  if (text !== null) bytes = utf8(text);
  else if (hex !== null) bytes = fromHex(hex);
  if (bytes === null) return invalid("expected \"data\" (string) or \"hex\" (even-length hex)");
  const chunk = positiveInt(a, "chunk_size", DEFAULT_CHUNK);
  if (chunk < 0) return invalid("chunk_size must be an integer from 1 to 16777216");

  const writer = BlobWriter.create();
  let chunks = 0;
  for (let at = 0; at < bytes.length; at += chunk) {
    writer.write<Uint8Array>(bytes.subarray(at, min(at + chunk, bytes.length)));
    chunks++;
  }
  const id = toHex(writer.close());

  const meta = JsonValue.object()
    .set("blob_id", JsonValue.string(id))
    .set("name", JsonValue.string(name))
    .set("size", JsonValue.number(<f64>bytes.length));
  if (storageWrite<string, string>("blob:" + id, meta.toString()) === null) {
    storageWrite<string, string>(LIST_KEY, listIds().push(JsonValue.string(id)).toString());
  }
  const out = meta.set("chunks", JsonValue.number(<f64>chunks)).toString();
  emit<string>("BlobUploaded", out);
  returnOk(out);
}

/**
 * {"blob_id":hex}, optional "encoding" ("utf8" default, or "hex") and "chunk_size" (default 65536)
 * → {"blob_id":hex,"size":n,"data":"..."} or {"blob_id","size","hex":"..."}. A missing blob reads as empty.
 */
export function download(): void {
  const a = args();
  const id = id32(a, "blob_id");
  if (id === null) return invalid("blob_id must be 64 hex digits");
  const chunk = positiveInt(a, "chunk_size", DEFAULT_CHUNK);
  if (chunk < 0) return invalid("chunk_size must be an integer from 1 to 16777216");
  const encoding = a.getString("encoding");
  if (encoding !== null && encoding != "utf8" && encoding != "hex") return invalid("encoding must be utf8 or hex");

  const reader = BlobReader.open(id);
  const bytes = reader.readAll(chunk);
  reader.close();
  const out = JsonValue.object()
    .set("blob_id", JsonValue.string(toHex(id)))
    .set("size", JsonValue.number(<f64>bytes.length));
  if (encoding == "hex") out.set("hex", JsonValue.string(toHex(bytes)));
  else out.set("data", JsonValue.string(fromUtf8(bytes)));
  returnOk(out.toString());
}

/** {"blob_id":hex} or {"blob_id":hex,"context_id":hex} (default: this context) → true when announced. */
export function announce(): void {
  const a = args();
  const id = id32(a, "blob_id");
  if (id === null) return invalid("blob_id must be 64 hex digits");
  let ctx = contextId();
  if (a.has("context_id")) {
    const given = id32(a, "context_id");
    if (given === null) return invalid("context_id must be 64 hex digits");
    ctx = given;
  }
  returnOk(announceBlob(id, ctx) ? "true" : "false");
}

/** {"blob_id":hex} → {"blob_id","name","size"} as recorded by upload, or null. */
export function info(): void {
  const id = id32(args(), "blob_id");
  if (id === null) return invalid("blob_id must be 64 hex digits");
  const meta = storageRead<string>("blob:" + toHex(id));
  returnOk(meta === null ? "null" : fromUtf8(meta));
}

/** {} → [{"blob_id","name","size"}, ...] in upload order. */
export function list(): void {
  const ids = listIds().items;
  const out = JsonValue.array();
  for (let i = 0; i < ids.length; i++) {
    const meta = storageRead<string>("blob:" + ids[i].strValue);
    const parsed: JsonValue | null = meta === null ? null : jsonParse(fromUtf8(meta));
    if (parsed !== null) out.push(parsed);
  }
  returnOk(out.toString());
}
