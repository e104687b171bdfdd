/**
 * A JSON checker that builds nothing: it walks the text once, in linear time and with memory for one byte per
 * open bracket, and says whether JSON.parse would accept it (the same grammar: RFC 8259, whitespace of space,
 * tab, CR and LF only, no byte-order mark). The node needs it because JSON.parse's cost is not its input's
 * size: 12 MiB of `[{},{},...]` or of nested brackets took the event loop 1.5 to 3 s on this machine, and
 * every other request waited. Request bodies are checked (and their shape bounded) before they are parsed,
 * and a call's `input` text, which the node only validates, is never parsed at all.
 */

export interface JsonScanLimits {
  /** Most brackets open at once. */
  maxDepth?: number;
  /** Most values and object keys in all. */
  maxItems?: number;
}

/** Why a text is refused: a syntax error at an offset, or a bound it went over. */
export type JsonScanFailure = { syntax: number } | { tooDeep: number } | { tooMany: number };

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const isDigit = (c: number): boolean => c >= ZERO && c <= NINE;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
/** The characters that may follow a backslash: " \ / b f n r t (u is handled apart). */
const SIMPLE_ESCAPES = new Set([QUOTE, BACKSLASH, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

/** Characters checked between two turns of the event loop (a few milliseconds on this machine). */
export const JSON_SCAN_SLICE = 256 * 1024;

/** undefined when `text` is one JSON value within the limits; otherwise why not. Runs to the end at once. */
export function scanJson(text: string, limits: JsonScanLimits = {}): JsonScanFailure | undefined {
  const steps = scanJsonSteps(text, limits);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/**
 * The same check in slices of about JSON_SCAN_SLICE characters, letting the event loop turn between them:
 * a long text (a call's input may be 16 MiB) never holds the node for more than one slice (one string token
 * is not cut, and a 16 MiB string takes about 50 ms).
 */
export async function scanJsonInSlices(text: string, limits: JsonScanLimits = {}): Promise<JsonScanFailure | undefined> {
  const steps = scanJsonSteps(text, limits);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The scanner: yields (nothing) at the first value boundary after each JSON_SCAN_SLICE characters. */
function* scanJsonSteps(text: string, limits: JsonScanLimits): Generator<void, JsonScanFailure | undefined> {
  const maxDepth = limits.maxDepth ?? Infinity;
  const maxItems = limits.maxItems ?? Infinity;
  const n = text.length;
  let i = 0;
  let items = 0;
  // The open containers, innermost last: 0 an array, 1 an object. Grown on demand.
  let stack = new Uint8Array(64);
  let depth = 0;

  const skipSpace = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== SPACE && c !== LF && c !== CR && c !== TAB) return;
      i++;
    }
  };
  /** A string starting at i (its opening quote); false when malformed. */
  const string = (): boolean => {
    if (text.charCodeAt(i) !== QUOTE) return false;
    i++;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === QUOTE) {
        i++;
        return true;
      }
      if (c < SPACE) return false;
      if (c === BACKSLASH) {
        const e = text.charCodeAt(++i);
        if (e === 0x75) {
          if (!isHex(text.charCodeAt(i + 1)) || !isHex(text.charCodeAt(i + 2)) || !isHex(text.charCodeAt(i + 3)) || !isHex(text.charCodeAt(i + 4))) return false;
          i += 4;
        } else if (!SIMPLE_ESCAPES.has(e)) return false;
      }
      i++;
    }
    return false;
  };
  const digits = (): boolean => {
    const start = i;
    while (i < n && isDigit(text.charCodeAt(i))) i++;
    return i > start;
  };
  const number = (): boolean => {
    if (text.charCodeAt(i) === MINUS) i++;
    if (text.charCodeAt(i) === ZERO) i++;
    else if (!digits()) return false;
    if (text.charCodeAt(i) === DOT) {
      i++;
      if (!digits()) return false;
    }
    const e = text.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      i++;
      const sign = text.charCodeAt(i);
      if (sign === PLUS || sign === MINUS) i++;
      if (!digits()) return false;
    }
    return true;
  };
  /** An object key and its colon. */
  const key = (): boolean => {
    skipSpace();
    if (++items > maxItems) return false;
    if (!string()) return false;
    skipSpace();
    if (text.charCodeAt(i) !== COLON) return false;
    i++;
    return true;
  };
  const failure = (): JsonScanFailure => (items > maxItems ? { tooMany: maxItems } : { syntax: i });

  let pause = JSON_SCAN_SLICE;
  for (;;) {
    if (i >= pause) {
      yield;
      pause = i + JSON_SCAN_SLICE;
    }
    // A value.
    skipSpace();
    if (++items > maxItems) return { tooMany: maxItems };
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      if (!string()) return failure();
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      i++;
      skipSpace();
      if (text.charCodeAt(i) === (c === OPEN_ARRAY ? CLOSE_ARRAY : CLOSE_OBJECT)) {
        i++; // empty: a complete value
      } else {
        if (depth >= maxDepth) return { tooDeep: maxDepth };
        if (depth === stack.length) {
          const grown = new Uint8Array(stack.length * 2);
          grown.set(stack);
          stack = grown;
        }
        stack[depth++] = c === OPEN_ARRAY ? 0 : 1;
        if (c === OPEN_OBJECT && !key()) return failure();
        continue; // its first member
      }
    } else if (c === MINUS || isDigit(c)) {
      if (!number()) return failure();
    } else if (text.startsWith('true', i) || text.startsWith('null', i)) {
      i += 4;
    } else if (text.startsWith('false', i)) {
      i += 5;
    } else {
      return failure();
    }
    // After a value: close what ends here, then the next member, or the end of the text.
    for (;;) {
      skipSpace();
      if (depth === 0) return i === n ? undefined : { syntax: i };
      const inObject = stack[depth - 1] === 1;
      const d = text.charCodeAt(i);
      if (d === COMMA) {
        i++;
        if (inObject && !key()) return failure();
        break;
      }
      if (d !== (inObject ? CLOSE_OBJECT : CLOSE_ARRAY)) return { syntax: i };
      i++;
      depth--;
      if (i >= pause) {
        yield;
        pause = i + JSON_SCAN_SLICE;
      }
    }
  }
}
