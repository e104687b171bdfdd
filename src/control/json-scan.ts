/**
 * Byte-level JSON helpers for the agent's request reader, each linear in the input:
 *
 * - `JsonObjectScanner` is fed the request chunk by chunk and says where the top-level object closes, so the
 *   agent can answer guests that never half-close without re-parsing the whole buffer on every chunk (which
 *   made a request sent in many small writes cost quadratic CPU).
 * - `rawValueAt` returns the source text of a value inside already-validated JSON, so integers can be checked
 *   as written: JSON.parse turns `3.0`, `3e0` and `3.0000000000000001` into the same number 3.
 * - `firstDuplicateKey` finds an object that names a key twice, which JSON.parse resolves silently (the last
 *   one wins) and serde refuses: two spellings of one request.
 *
 * Bytes are scanned, not characters: UTF-8 continuation bytes are all >= 0x80 and never look like `"`, `\`,
 * braces or brackets, so no decoding is needed to find structure.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

export function isJsonWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * Follows nesting and strings across chunks. `feed` returns the offset in the chunk just past the byte that
 * closed the top-level object, or -1 while it is still open (or the input does not start with `{`, in which
 * case only EOF ends the request and JSON.parse reports the error). Each byte is looked at once.
 */
export class JsonObjectScanner {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private started = false;
  /** The input cannot be an object: stop scanning and wait for EOF. */
  private hopeless = false;
  private closed = false;

  get complete(): boolean {
    return this.closed;
  }

  feed(chunk: Uint8Array): number {
    if (this.closed || this.hopeless) return -1;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (!this.started) {
        if (isJsonWhitespace(b)) continue;
        if (b !== OPEN_BRACE) {
          this.hopeless = true;
          return -1;
        }
        this.started = true;
        this.depth = 1;
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) this.inString = false;
        continue;
      }
      if (b === QUOTE) this.inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth === 0) {
          this.closed = true;
          return i + 1;
        }
      }
    }
    return -1;
  }
}

/**
 * The first key an object in `text` (valid JSON: parse it first) names twice, compared after unescaping, or
 * undefined. Iterative, so nesting as deep as JSON.parse accepted costs no stack.
 */
export function firstDuplicateKey(text: string): string | undefined {
  const open: (Set<string> | null)[] = []; // per open container: its keys for an object, null for an array
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === OPEN_BRACE) open.push(new Set());
    else if (c === OPEN_BRACKET) open.push(null);
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) open.pop();
    else if (c === QUOTE) {
      const start = i;
      for (i++; ; i++) {
        const d = text.charCodeAt(i);
        if (d === BACKSLASH) i++;
        else if (d === QUOTE) break;
      }
      let j = i + 1;
      while (j < text.length && isJsonWhitespace(text.charCodeAt(j))) j++;
      const keys = open[open.length - 1];
      if (text.charCodeAt(j) !== 0x3a || keys === undefined || keys === null) continue; // not a key (no ':')
      const raw = text.slice(start, i + 1);
      const key = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
      if (keys.has(key)) return key;
      keys.add(key);
    }
  }
  return undefined;
}

/**
 * The source text of the value at `path` (object keys from the top level), or undefined when absent. `text`
 * must be valid JSON (parse it first). With duplicate keys the last one wins, as in JSON.parse. Keys are
 * compared after unescaping, so `"sender\u005fcid"` is found as `sender_cid`, again as JSON.parse sees it.
 */
export function rawValueAt(text: string, path: readonly string[]): string | undefined {
  const r = new RawReader(text);
  r.ws();
  return r.find(path, 0);
}

class RawReader {
  private i = 0;
  constructor(private readonly s: string) {}

  ws(): void {
    while (this.i < this.s.length && isJsonWhitespace(this.s.charCodeAt(this.i))) this.i++;
  }

  /** At a value: returns the raw text of the value at path[depth..] inside it (the value itself when done). */
  find(path: readonly string[], depth: number): string | undefined {
    if (depth === path.length) {
      const start = this.i;
      this.skipValue();
      return this.s.slice(start, this.i);
    }
    if (this.s[this.i] !== '{') {
      this.skipValue();
      return undefined;
    }
    this.i++;
    let found: string | undefined;
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return undefined;
    }
    for (;;) {
      this.ws();
      const keyStart = this.i;
      this.skipString();
      const rawKey = this.s.slice(keyStart, this.i);
      const key = rawKey.includes('\\') ? (JSON.parse(rawKey) as string) : rawKey.slice(1, -1);
      this.ws();
      this.i++; // ':'
      this.ws();
      if (key === path[depth]) {
        const v = this.find(path, depth + 1);
        // A later duplicate replaces an earlier one, even when the later one lacks the rest of the path.
        found = v;
      } else {
        this.skipValue();
      }
      this.ws();
      if (this.s[this.i++] === '}') return found;
    }
  }

  private skipString(): void {
    this.i++; // opening quote
    for (;;) {
      const c = this.s.charCodeAt(this.i++);
      if (c === BACKSLASH) this.i++;
      else if (c === QUOTE) return;
    }
  }

  private skipValue(): void {
    const c = this.s.charCodeAt(this.i);
    if (c === QUOTE) return this.skipString();
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      let depth = 0;
      for (;;) {
        const d = this.s.charCodeAt(this.i);
        if (d === QUOTE) {
          this.skipString();
          continue;
        }
        this.i++;
        if (d === OPEN_BRACE || d === OPEN_BRACKET) depth++;
        else if (d === CLOSE_BRACE || d === CLOSE_BRACKET) {
          if (--depth === 0) return;
        }
      }
    }
    // number, true, false, null: up to the next delimiter
    while (this.i < this.s.length) {
      const d = this.s.charCodeAt(this.i);
      if (d === 0x2c /* , */ || d === CLOSE_BRACE || d === CLOSE_BRACKET || isJsonWhitespace(d)) return;
      this.i++;
    }
  }
}

/** A non-negative integer written the one canonical way: `0` or digits without a leading zero. */
export const CANONICAL_UINT = /^(?:0|[1-9][0-9]*)$/;
