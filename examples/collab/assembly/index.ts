// collab: a shared document built from every collection kind the host keeps.
//   titles       CrdtMap       section -> title
//   edits        CrdtVector    one line per change ("<executor hex>: <what>")
//   tags         CrdtSet       labels
//   status       LwwRegister   "draft" | "review" | ... (any string)
//   edit_count   Counter       number of changes, per executor
//   drafts       UserStorage   each user's private draft text (only its owner can change it)
//   attachments  FrozenStorage immutable content addressed by hash
// The collection ids live in the root state document (JSON, hex ids), created on first change.
// Every changing method ends with flushDelta() so the changes become the call's artifact.
import {
  input, returnOk, returnErr, jsonParseBytes, jsonQuote, JsonValue, toHex, fromHex, fromUtf8, utf8,
  CrdtMap, CrdtVector, CrdtSet, LwwRegister, Counter, UserStorage, FrozenStorage,
  persistRootState, readRootState, flushDelta, executorId, emit,
} from "../../../sdk/assemblyscript/assembly/index";

class Doc {
  constructor(
    public titles: CrdtMap,
    public edits: CrdtVector,
    public tags: CrdtSet,
    public status: LwwRegister,
    public editCount: Counter,
    public drafts: UserStorage,
    public attachments: FrozenStorage,
  ) {}

  toJson(): JsonValue {
    return JsonValue.object()
      .set("version", JsonValue.number(1))
      .set("titles", JsonValue.string(this.titles.idHex))
      .set("edits", JsonValue.string(this.edits.idHex))
      .set("tags", JsonValue.string(this.tags.idHex))
      .set("status", JsonValue.string(this.status.idHex))
      .set("edit_count", JsonValue.string(this.editCount.idHex))
      .set("drafts", JsonValue.string(this.drafts.idHex))
      .set("attachments", JsonValue.string(this.attachments.idHex));
  }
}

function idField(doc: JsonValue, name: string): Uint8Array {
  const hex = doc.getString(name);
  if (hex === null) throw new Error("collab: root state has no id for " + name);
  const id = fromHex(hex);
  if (id === null || id.length != 32) throw new Error("collab: root state has a bad id for " + name);
  return id;
}

/** The document, or null before the first change. */
function loadDoc(): Doc | null {
  const raw = readRootState();
  if (raw === null) return null;
  const doc = jsonParseBytes(raw);
  if (doc === null || !doc.isObject) throw new Error("collab: root state is not a JSON object");
  return new Doc(
    CrdtMap.at(idField(doc, "titles")),
    CrdtVector.at(idField(doc, "edits")),
    CrdtSet.at(idField(doc, "tags")),
    LwwRegister.at(idField(doc, "status")),
    Counter.at(idField(doc, "edit_count")),
    UserStorage.at(idField(doc, "drafts")),
    FrozenStorage.at(idField(doc, "attachments")),
  );
}

/** The document, created (and persisted) when missing. */
function openDoc(): Doc {
  const existing = loadDoc();
  if (existing !== null) return existing;
  const doc = new Doc(
    CrdtMap.create(), CrdtVector.create(), CrdtSet.create(), LwwRegister.create(),
    Counter.create(), UserStorage.create(), FrozenStorage.create(),
  );
  persistRootState(doc.toJson().toString());
  return doc;
}

/** Records a change: one line in `edits`, one more in `edit_count`. */
function recordEdit(doc: Doc, what: string): void {
  doc.edits.push(toHex(executorId()) + ": " + what);
  doc.editCount.increment();
}

// ---------------------------------------------------------------- input helpers

function args(): JsonValue {
  const v = jsonParseBytes(input());
  return v !== null && v.isObject ? v : JsonValue.object();
}

function invalid(why: string): void {
  returnErr('{"kind":"InvalidInput","data":' + jsonQuote(why) + "}");
}

function stringOrNull(v: Uint8Array | null): string {
  return v === null ? "null" : jsonQuote(fromUtf8(v));
}

function hexId(a: JsonValue, field: string): Uint8Array | null {
  const s = a.getString(field);
  if (s === null) return null;
  const b = fromHex(s);
  return b !== null && b.length == 32 ? b : null;
}

// ---------------------------------------------------------------- document

/** {} → the collection ids {"titles":hex,...} (creating the document if needed). */
export function init(): void {
  const doc = openDoc();
  flushDelta();
  returnOk(doc.toJson().toString());
}

/** {"section","title"} → the previous title or null. */
export function set_title(): void {
  const a = args();
  const section = a.getString("section");
  const title = a.getString("title");
  if (section === null || title === null) return invalid("expected {\"section\":string,\"title\":string}");
  const doc = openDoc();
  const old = doc.titles.insert<string, string>(section, title);
  recordEdit(doc, "set_title " + section);
  flushDelta();
  returnOk(stringOrNull(old));
}

/** {"section"} → the title or null. */
export function get_title(): void {
  const section = args().getString("section");
  if (section === null) return invalid("expected {\"section\":string}");
  const doc = loadDoc();
  returnOk(doc === null ? "null" : stringOrNull(doc.titles.get<string>(section)));
}

/** {"section"} → whether the section has a title. */
export function has_title(): void {
  const section = args().getString("section");
  if (section === null) return invalid("expected {\"section\":string}");
  const doc = loadDoc();
  returnOk(doc !== null && doc.titles.contains<string>(section) ? "true" : "false");
}

/** {"section"} → the removed title or null. */
export function remove_title(): void {
  const section = args().getString("section");
  if (section === null) return invalid("expected {\"section\":string}");
  const doc = openDoc();
  const old = doc.titles.remove<string>(section);
  if (old !== null) recordEdit(doc, "remove_title " + section);
  flushDelta();
  returnOk(stringOrNull(old));
}

/** {} → {"section":"title",...} in key order. */
export function titles(): void {
  const out = JsonValue.object();
  const doc = loadDoc();
  if (doc !== null) {
    const entries = doc.titles.entries();
    for (let i = 0; i < entries.length; i++) out.set(entries[i].keyString, JsonValue.string(entries[i].valueString));
  }
  returnOk(out.toString());
}

// ---------------------------------------------------------------- edits and counter

/** {} → ["<executor hex>: <what>", ...] oldest first. */
export function edits(): void {
  const out = JsonValue.array();
  const doc = loadDoc();
  if (doc !== null) {
    const values = doc.edits.values();
    for (let i = 0; i < values.length; i++) out.push(JsonValue.string(fromUtf8(values[i])));
  }
  returnOk(out.toString());
}

/** {} → the last edit line, removed from the log (the counter is grow-only and keeps counting), or null. */
export function pop_edit(): void {
  const doc = openDoc();
  const last = doc.edits.pop();
  flushDelta();
  returnOk(stringOrNull(last));
}

/** {} → {"total":n,"mine":n}; {"executor":hex} → that executor's count as "mine". */
export function edit_count(): void {
  const a = args();
  const doc = loadDoc();
  if (doc === null) {
    returnOk('{"total":0,"mine":0}');
    return;
  }
  const who = hexId(a, "executor");
  if (a.has("executor") && who === null) return invalid("executor must be 64 hex digits");
  const out = JsonValue.object()
    .set("total", JsonValue.number(<f64>doc.editCount.value))
    .set("mine", JsonValue.number(<f64>doc.editCount.executorCount(who)));
  returnOk(out.toString());
}

// ---------------------------------------------------------------- tags

/** {"tag"} → true when added, false when already present. */
export function add_tag(): void {
  const tag = args().getString("tag");
  if (tag === null) return invalid("expected {\"tag\":string}");
  const doc = openDoc();
  const added = doc.tags.insert<string>(tag);
  if (added) recordEdit(doc, "add_tag " + tag);
  flushDelta();
  returnOk(added ? "true" : "false");
}

/** {"tag"} → true when removed, false when absent. */
export function remove_tag(): void {
  const tag = args().getString("tag");
  if (tag === null) return invalid("expected {\"tag\":string}");
  const doc = openDoc();
  const removed = doc.tags.remove<string>(tag);
  if (removed) recordEdit(doc, "remove_tag " + tag);
  flushDelta();
  returnOk(removed ? "true" : "false");
}

/** {"tag"} → whether the tag is set. */
export function has_tag(): void {
  const tag = args().getString("tag");
  if (tag === null) return invalid("expected {\"tag\":string}");
  const doc = loadDoc();
  returnOk(doc !== null && doc.tags.contains<string>(tag) ? "true" : "false");
}

/** {} → {"count":n,"tags":[...]} in byte order. */
export function tags(): void {
  const list = JsonValue.array();
  let count: u64 = 0;
  const doc = loadDoc();
  if (doc !== null) {
    count = doc.tags.size;
    const values = doc.tags.values();
    for (let i = 0; i < values.length; i++) list.push(JsonValue.string(fromUtf8(values[i])));
  }
  returnOk(JsonValue.object().set("count", JsonValue.number(<f64>count)).set("tags", list).toString());
}

/** {} → true when there were tags to clear. */
export function clear_tags(): void {
  const doc = openDoc();
  const cleared = doc.tags.clear();
  if (cleared) recordEdit(doc, "clear_tags");
  flushDelta();
  returnOk(cleared ? "true" : "false");
}

// ---------------------------------------------------------------- status

/** {"status":string} sets it, {"status":null} clears it → true when the value changed. */
export function set_status(): void {
  const a = args();
  const v = a.get("status");
  if (v === null || !(v.isString || v.isNull)) return invalid("expected {\"status\":string|null}");
  const doc = openDoc();
  const changed = v.isNull ? doc.status.clear() : doc.status.set<string>(v.strValue);
  recordEdit(doc, v.isNull ? "clear_status" : "set_status " + v.strValue);
  flushDelta();
  // Announce the change so that subscribers need not poll.
  emit<string>("StatusChanged", JsonValue.object().set("status", v).toString());
  returnOk(changed ? "true" : "false");
}

/** {} → {"status":string|null,"hlc_time":"<u64 decimal>"|null} (the HLC time is NTP64). */
export function status(): void {
  const out = JsonValue.object().set("status", JsonValue.null()).set("hlc_time", JsonValue.null());
  const doc = loadDoc();
  if (doc !== null) {
    const s = doc.status.getString();
    if (s !== null) out.set("status", JsonValue.string(s));
    const ts = doc.status.timestamp();
    if (ts !== null) out.set("hlc_time", JsonValue.string(ts.time.toString()));
  }
  returnOk(out.toString());
}

// ---------------------------------------------------------------- drafts (user storage)

/** {"text"} → the executor's previous draft or null. */
export function save_draft(): void {
  const text = args().getString("text");
  if (text === null) return invalid("expected {\"text\":string}");
  const doc = openDoc();
  const old = doc.drafts.insert<string>(text);
  flushDelta();
  returnOk(stringOrNull(old));
}

/** {} → the executor's draft or null; {"user":hex} → that user's draft or null. */
export function get_draft(): void {
  const a = args();
  const user = hexId(a, "user");
  if (a.has("user") && user === null) return invalid("user must be 64 hex digits");
  const doc = loadDoc();
  if (doc === null) {
    returnOk("null");
    return;
  }
  returnOk(stringOrNull(user === null ? doc.drafts.get() : doc.drafts.getForUser(user)));
}

/** {} or {"user":hex} → whether the executor (or that user) has a draft. */
export function has_draft(): void {
  const a = args();
  const user = hexId(a, "user");
  if (a.has("user") && user === null) return invalid("user must be 64 hex digits");
  const doc = loadDoc();
  const has = doc !== null && (user === null ? doc.drafts.contains() : doc.drafts.containsUser(user));
  returnOk(has ? "true" : "false");
}

/** {} → the executor's removed draft or null. */
export function discard_draft(): void {
  const doc = openDoc();
  const old = doc.drafts.remove();
  flushDelta();
  returnOk(stringOrNull(old));
}

// ---------------------------------------------------------------- attachments (frozen storage)

/** {"content"} → {"hash":hex}, the content's address (SHA-256 of u32le(len) || bytes). */
export function attach(): void {
  const content = args().getString("content");
  if (content === null) return invalid("expected {\"content\":string}");
  const doc = openDoc();
  const hash = doc.attachments.add<Uint8Array>(utf8(content));
  recordEdit(doc, "attach " + toHex(hash));
  flushDelta();
  returnOk(JsonValue.object().set("hash", JsonValue.string(toHex(hash))).toString());
}

/** {"hash":hex} → the content or null. */
export function get_attachment(): void {
  const hash = hexId(args(), "hash");
  if (hash === null) return invalid("expected {\"hash\":64 hex digits}");
  const doc = loadDoc();
  returnOk(doc === null ? "null" : stringOrNull(doc.attachments.get(hash)));
}

/** {"hash":hex} → whether the content exists. */
export function has_attachment(): void {
  const hash = hexId(args(), "hash");
  if (hash === null) return invalid("expected {\"hash\":64 hex digits}");
  const doc = loadDoc();
  returnOk(doc !== null && doc.attachments.contains(hash) ? "true" : "false");
}

/** {} → a summary: {"titles":{...},"edits":n,"edit_count":n,"tags":[...],"status":...}. */
export function summary(): void {
  const out = JsonValue.object();
  const doc = loadDoc();
  if (doc === null) {
    returnOk('{"initialized":false}');
    return;
  }
  const t = JsonValue.object();
  const entries = doc.titles.entries();
  for (let i = 0; i < entries.length; i++) t.set(entries[i].keyString, JsonValue.string(entries[i].valueString));
  const tagList = JsonValue.array();
  const tagValues = doc.tags.values();
  for (let i = 0; i < tagValues.length; i++) tagList.push(JsonValue.string(fromUtf8(tagValues[i])));
  const s = doc.status.getString();
  out.set("initialized", JsonValue.bool(true))
    .set("titles", t)
    .set("edits", JsonValue.number(<f64>doc.edits.length))
    .set("edit_count", JsonValue.number(<f64>doc.editCount.value))
    .set("tags", tagList)
    .set("status", s === null ? JsonValue.null() : JsonValue.string(s));
  returnOk(out.toString());
}
