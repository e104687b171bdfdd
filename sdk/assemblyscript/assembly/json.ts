// JSON for contracts (AssemblyScript has none built in). The parser reads UTF-8 bytes directly
// (the form inputs arrive in), follows RFC 8259, and returns null on any syntax error; the writer
// escapes what RFC 8259 requires plus lone surrogates (written as U+FFFD so the output is valid UTF-8).

export enum JsonKind { Null, Bool, Number, String, Array, Object }

/** Nesting deeper than this is rejected rather than risking the call's stack. */
const MAX_DEPTH: i32 = 128;

export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  boolValue: bool = false;
  numValue: f64 = 0;
  strValue: string = "";
  items: Array<JsonValue> = [];
  /** Object keys in insertion order (duplicates: the last value wins, at the first position). */
  keys: Array<string> = [];
  values: Array<JsonValue> = [];

  static null(): JsonValue { return new JsonValue(); }
  static bool(v: bool): JsonValue { const j = new JsonValue(); j.kind = JsonKind.Bool; j.boolValue = v; return j; }
  static number(v: f64): JsonValue { const j = new JsonValue(); j.kind = JsonKind.Number; j.numValue = v; return j; }
  static string(v: string): JsonValue { const j = new JsonValue(); j.kind = JsonKind.String; j.strValue = v; return j; }
  static array(items: Array<JsonValue> = []): JsonValue { const j = new JsonValue(); j.kind = JsonKind.Array; j.items = items; return j; }
  static object(): JsonValue { const j = new JsonValue(); j.kind = JsonKind.Object; return j; }

  get isNull(): bool { return this.kind == JsonKind.Null; }
  get isBool(): bool { return this.kind == JsonKind.Bool; }
  get isNumber(): bool { return this.kind == JsonKind.Number; }
  get isString(): bool { return this.kind == JsonKind.String; }
  get isArray(): bool { return this.kind == JsonKind.Array; }
  get isObject(): bool { return this.kind == JsonKind.Object; }

  /** Member of an object, or null when absent or not an object. */
  get(key: string): JsonValue | null {
    if (this.kind != JsonKind.Object) return null;
    const i = this.keys.indexOf(key);
    return i < 0 ? null : this.values[i];
  }

  has(key: string): bool { return this.get(key) !== null; }

  /** Sets a member of an object (chainable). */
  set(key: string, value: JsonValue): JsonValue {
    const i = this.keys.indexOf(key);
    if (i < 0) {
      this.keys.push(key);
      this.values.push(value);
    } else {
      this.values[i] = value;
    }
    return this;
  }

  /** Appends to an array (chainable). */
  push(value: JsonValue): JsonValue {
    this.items.push(value);
    return this;
  }

  /** String member `key`, or null when absent or not a string. */
  getString(key: string): string | null {
    const v = this.get(key);
    return v !== null && v.kind == JsonKind.String ? v.strValue : null;
  }

  /** Number member `key`, or NaN when absent or not a number. */
  getNumber(key: string): f64 {
    const v = this.get(key);
    return v !== null && v.kind == JsonKind.Number ? v.numValue : NaN;
  }

  /** Bool member `key`, or `fallback`. */
  getBool(key: string, fallback: bool = false): bool {
    const v = this.get(key);
    return v !== null && v.kind == JsonKind.Bool ? v.boolValue : fallback;
  }

  /** Array member `key`, or null. */
  getArray(key: string): Array<JsonValue> | null {
    const v = this.get(key);
    return v !== null && v.kind == JsonKind.Array ? v.items : null;
  }

  toString(): string {
    const out = new Array<string>();
    writeValue(this, out);
    return out.join("");
  }
}

// ---------------------------------------------------------------- writer

const HEX = "0123456789abcdef";

/** `s` as a JSON string literal, quotes included. */
export function jsonQuote(s: string): string {
  const out = new Array<string>();
  writeString(s, out);
  return out.join("");
}

function writeString(s: string, out: Array<string>): void {
  out.push("\"");
  let start = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    let esc: string | null = null;
    if (c == 0x22) esc = "\\\"";
    else if (c == 0x5c) esc = "\\\\";
    else if (c == 0x0a) esc = "\\n";
    else if (c == 0x0d) esc = "\\r";
    else if (c == 0x09) esc = "\\t";
    else if (c == 0x08) esc = "\\b";
    else if (c == 0x0c) esc = "\\f";
    else if (c < 0x20) esc = "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
    else if (c >= 0xd800 && c <= 0xdbff) {
      // A high surrogate must be followed by a low one; otherwise it cannot be encoded as UTF-8.
      if (i + 1 < n) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) { i++; continue; }
      }
      esc = "\ufffd";
    } else if (c >= 0xdc00 && c <= 0xdfff) esc = "\ufffd";
    if (esc !== null) {
      if (i > start) out.push(s.substring(start, i));
      out.push(esc);
      start = i + 1;
    }
  }
  if (start < n) out.push(start == 0 ? s : s.substring(start));
  out.push("\"");
}

/** JSON text of a number, as JavaScript writes it for integers (no ".0"); non-finite values as null. */
export function jsonNumber(v: f64): string {
  if (!isFinite(v)) return "null";
  if (v == 0) return "0";
  if (v == Math.trunc(v) && Math.abs(v) < 9007199254740992.0) return (<i64>v).toString();
  const s = v.toString();
  return s.endsWith(".0") ? s.substring(0, s.length - 2) : s;
}

function writeValue(v: JsonValue, out: Array<string>): void {
  switch (v.kind) {
    case JsonKind.Null: out.push("null"); break;
    case JsonKind.Bool: out.push(v.boolValue ? "true" : "false"); break;
    case JsonKind.Number: out.push(jsonNumber(v.numValue)); break;
    case JsonKind.String: writeString(v.strValue, out); break;
    case JsonKind.Array: {
      out.push("[");
      for (let i = 0; i < v.items.length; i++) {
        if (i > 0) out.push(",");
        writeValue(v.items[i], out);
      }
      out.push("]");
      break;
    }
    default: {
      out.push("{");
      for (let i = 0; i < v.keys.length; i++) {
        if (i > 0) out.push(",");
        writeString(v.keys[i], out);
        out.push(":");
        writeValue(v.values[i], out);
      }
      out.push("}");
    }
  }
}

/** JSON text of a value. */
export function jsonStringify(v: JsonValue): string {
  return v.toString();
}

// ---------------------------------------------------------------- parser

class Parser {
  at: usize;
  failed: bool = false;
  constructor(public start: usize, public end: usize) { this.at = start; }

  fail(): JsonValue {
    this.failed = true;
    return JsonValue.null();
  }

  peek(): i32 { return this.at < this.end ? <i32>load<u8>(this.at) : -1; }

  skipWs(): void {
    while (this.at < this.end) {
      const c = load<u8>(this.at);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.at++;
    }
  }

  literal(word: string, v: JsonValue): JsonValue {
    for (let i = 0; i < word.length; i++) {
      if (this.peek() != word.charCodeAt(i)) return this.fail();
      this.at++;
    }
    return v;
  }

  value(depth: i32): JsonValue {
    if (depth > MAX_DEPTH) return this.fail();
    this.skipWs();
    const c = this.peek();
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const s = this.string();
      return this.failed ? JsonValue.null() : JsonValue.string(s);
    }
    if (c == 0x74) return this.literal("true", JsonValue.bool(true));
    if (c == 0x66) return this.literal("false", JsonValue.bool(false));
    if (c == 0x6e) return this.literal("null", JsonValue.null());
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    return this.fail();
  }

  object(depth: i32): JsonValue {
    this.at++; // {
    const obj = JsonValue.object();
    this.skipWs();
    if (this.peek() == 0x7d) { this.at++; return obj; }
    while (true) {
      this.skipWs();
      if (this.peek() != 0x22) return this.fail();
      const key = this.string();
      if (this.failed) return obj;
      this.skipWs();
      if (this.peek() != 0x3a) return this.fail();
      this.at++;
      const v = this.value(depth + 1);
      if (this.failed) return obj;
      obj.set(key, v);
      this.skipWs();
      const c = this.peek();
      this.at++;
      if (c == 0x7d) return obj;
      if (c != 0x2c) return this.fail();
    }
    return obj;
  }

  array(depth: i32): JsonValue {
    this.at++; // [
    const arr = JsonValue.array();
    this.skipWs();
    if (this.peek() == 0x5d) { this.at++; return arr; }
    while (true) {
      const v = this.value(depth + 1);
      if (this.failed) return arr;
      arr.items.push(v);
      this.skipWs();
      const c = this.peek();
      this.at++;
      if (c == 0x5d) return arr;
      if (c != 0x2c) return this.fail();
    }
    return arr;
  }

  hex4(): i32 {
    if (this.end - this.at < 4) return -1;
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = <i32>load<u8>(this.at++);
      let d = -1;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      if (d < 0) return -1;
      v = (v << 4) | d;
    }
    return v;
  }

  /** A string literal; runs of plain bytes are decoded as UTF-8 in one go. */
  string(): string {
    this.at++; // opening quote
    const parts = new Array<string>();
    let run = this.at;
    while (true) {
      if (this.at >= this.end) { this.failed = true; return ""; }
      const c = load<u8>(this.at);
      if (c == 0x22) break;
      if (c < 0x20) { this.failed = true; return ""; }
      if (c != 0x5c) { this.at++; continue; }
      if (this.at > run) parts.push(String.UTF8.decodeUnsafe(run, this.at - run, false));
      this.at++;
      if (this.at >= this.end) { this.failed = true; return ""; }
      const e = load<u8>(this.at++);
      if (e == 0x22) parts.push("\"");
      else if (e == 0x5c) parts.push("\\");
      else if (e == 0x2f) parts.push("/");
      else if (e == 0x62) parts.push("\b");
      else if (e == 0x66) parts.push("\f");
      else if (e == 0x6e) parts.push("\n");
      else if (e == 0x72) parts.push("\r");
      else if (e == 0x74) parts.push("\t");
      else if (e == 0x75) {
        let u = this.hex4();
        if (u < 0) { this.failed = true; return ""; }
        if (u >= 0xd800 && u <= 0xdbff && this.end - this.at >= 6 && load<u8>(this.at) == 0x5c && load<u8>(this.at + 1) == 0x75) {
          const save = this.at;
          this.at += 2;
          const lo = this.hex4();
          if (lo >= 0xdc00 && lo <= 0xdfff) {
            parts.push(String.fromCharCode(u, lo));
            run = this.at;
            continue;
          }
          this.at = save;
        }
        // A lone surrogate cannot become UTF-8: keep the text valid with U+FFFD.
        if (u >= 0xd800 && u <= 0xdfff) u = 0xfffd;
        parts.push(String.fromCharCode(u));
      } else { this.failed = true; return ""; }
      run = this.at;
    }
    if (this.at > run) parts.push(String.UTF8.decodeUnsafe(run, this.at - run, false));
    this.at++; // closing quote
    return parts.length == 1 ? parts[0] : parts.join("");
  }

  digits(): i32 {
    let n = 0;
    while (this.at < this.end) {
      const c = load<u8>(this.at);
      if (c < 0x30 || c > 0x39) break;
      this.at++;
      n++;
    }
    return n;
  }

  number(): JsonValue {
    const begin = this.at;
    if (this.peek() == 0x2d) this.at++;
    if (this.peek() == 0x30) this.at++;
    else if (this.digits() == 0) return this.fail();
    if (this.peek() == 0x2e) {
      this.at++;
      if (this.digits() == 0) return this.fail();
    }
    const c = this.peek();
    if (c == 0x65 || c == 0x45) {
      this.at++;
      const s = this.peek();
      if (s == 0x2b || s == 0x2d) this.at++;
      if (this.digits() == 0) return this.fail();
    }
    return JsonValue.number(parseFloat(String.UTF8.decodeUnsafe(begin, this.at - begin, false)));
  }
}

/** Parses UTF-8 JSON text; null on a syntax error, trailing garbage or nesting deeper than 128. */
export function jsonParseBytes(bytes: Uint8Array): JsonValue | null {
  const p = new Parser(bytes.dataStart, bytes.dataStart + <usize>bytes.byteLength);
  const v = p.value(0);
  if (p.failed) return null;
  p.skipWs();
  return p.at == p.end ? v : null;
}

/** Parses JSON text; null on a syntax error. */
export function jsonParse(text: string): JsonValue | null {
  return jsonParseBytes(Uint8Array.wrap(String.UTF8.encode(text, false)));
}
