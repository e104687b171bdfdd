/**
 * Untrusted text on an operator's terminal: a guest's notify message on the host's consoles and its requests in
 * the agent's log, a contract's logs, events, panic messages and ABI in the CLI's output, a VM's last stderr line
 * in a crash message. None of them may move the cursor, rewrite earlier lines, change the title, ring the bell or
 * hide text there. Terminals act on C0 controls (ESC, CR, BS, BEL...), DEL and C1 controls (U+0080-U+009F, e.g.
 * CSI U+009B); bidirectional overrides reorder what the operator reads. All of them are removed (consoles) or
 * shown escaped (log lines and the CLI's one-line items).
 */

// The characters a terminal acts on, by group: one list, from which each use below takes what it needs.
const DEL_C1_BIDI = '\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';
const CONTROLS = new RegExp(`[\\u0000-\\u001f${DEL_C1_BIDI}]`, 'g');
const CONTROLS_BUT_NEWLINE = new RegExp(`[\\u0000-\\u0009\\u000b-\\u001f${DEL_C1_BIDI}]`, 'g');
const CONTROLS_BUT_TAB_NEWLINE = new RegExp(`[\\u0000-\\u0008\\u000b-\\u001f${DEL_C1_BIDI}]`);
// What JSON.stringify leaves raw that a terminal acts on (it escapes C0).
const RAW_IN_JSON = new RegExp(`[${DEL_C1_BIDI}]`, 'g');

/** A character as a `\u001b` style escape. */
const escaped = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** Text for a console: every control character except newline is dropped. */
export function consoleText(text: string): string {
  return text.replace(CONTROLS_BUT_NEWLINE, '');
}

/** One log line: control characters (newline included) are shown as `\u001b` style escapes. */
export function logText(text: string): string {
  return text.replace(CONTROLS, escaped);
}

/** True when `text` can reach a terminal unchanged: no control character but tab and newline. */
export function isPlainText(text: string): boolean {
  return !CONTROLS_BUT_TAB_NEWLINE.test(text);
}

/** `text` as it is when plain (isPlainText), else as one escaped line (logText). */
export function shownText(text: string): string {
  return isPlainText(text) ? text : logText(text);
}

/**
 * JSON text (JSON.stringify's) with DEL, C1 and bidirectional controls escaped as `\u009b`: the same JSON value,
 * safe on a terminal. They can only stand inside strings, where an escape means the same character.
 */
export function inertJson(json: string): string {
  return json.replace(RAW_IN_JSON, escaped);
}

/** At most `max` characters of `text` (never half a surrogate pair), then how long it was: untrusted text quoted. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}… (${text.length} characters)`;
}
