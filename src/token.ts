/**
 * Shared bearer tokens: `hostlink serve`'s API token and the remote workers' token. Both are read the same way
 * (the first line of a file, trimmed), refused at start-up when no client could send them, and compared in
 * constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { HostlinkError } from './errors.js';
import { readSettingsFile } from './read-bounded.js';

/** Visible ASCII only: a token travels in an Authorization header, where anything else is cut or refused. */
const TOKEN_TEXT = /^[\x21-\x7e]+$/;

/**
 * Refuses (HostlinkError 'usage') a token no client could present: empty, or holding a space, a control
 * character or non-ASCII text. `from` names where it came from, for the message.
 */
export function checkToken(token: string, from: string): string {
  if (token === '') throw new HostlinkError('usage', `${from} is empty: put a long random token on its first line (e.g. openssl rand -hex 32)`);
  if (!TOKEN_TEXT.test(token)) {
    throw new HostlinkError('usage', `${from} holds a space, a control character or non-ASCII text, which no client can send in an Authorization header: use letters, digits and punctuation only (e.g. openssl rand -hex 32)`);
  }
  return token;
}

/** Reads a token file: its first line, trimmed (later lines are the operator's own, e.g. a comment). */
export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readSettingsFile(path, 'the token file');
  } catch (e) {
    throw new HostlinkError('usage', (e as Error).message);
  }
  return checkToken((text.split('\n')[0] ?? '').trim(), `the token file ${path}`);
}

/** A token's digest: what is kept to compare against, so that comparing leaks neither bytes nor length. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Constant-time comparison of `given` with a token kept as its digest. */
export function digestMatches(expected: Buffer, given: string): boolean {
  return timingSafeEqual(tokenDigest(given), expected);
}

/** Constant-time comparison of two tokens (see tokenDigest). */
export function tokenMatches(expected: string | undefined, given: string | undefined): boolean {
  if (expected === undefined || expected === '' || given === undefined) return false;
  return digestMatches(tokenDigest(expected), given);
}
