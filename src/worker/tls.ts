/**
 * TLS material for remote workers: the node's Runtime endpoint, the worker's slot listener and the
 * connections between them all use certificates from one operator CA (docs/deploy.md). Mutual TLS is the
 * default; a shared token (TLS plus `authorization: Bearer`) is the alternative for workers without a client
 * certificate. Tokens are compared in constant time.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { HostlinkError } from '../errors.js';
import { MAX_SETTINGS_FILE_BYTES, readBounded, readSettingsFile, SETTINGS_FILE_LIMIT } from '../read-bounded.js';

/** Paths of PEM files, as given on the command line or in HostOptions. */
export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

/** The same material, read. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

export function readTlsFiles(files: TlsFiles): TlsMaterial {
  const read = (what: keyof TlsFiles): Buffer => {
    try {
      return Buffer.from(readBounded(files[what], MAX_SETTINGS_FILE_BYTES, `the TLS ${what} file`, SETTINGS_FILE_LIMIT));
    } catch (e) {
      throw new HostlinkError('usage', (e as Error).message);
    }
  };
  return { cert: read('cert'), key: read('key'), ca: read('ca') };
}

/** Reads a token file: its first line, trimmed; empty is refused (an empty token would admit anyone). */
export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readSettingsFile(path, 'the token file');
  } catch (e) {
    throw new HostlinkError('usage', (e as Error).message);
  }
  const token = (text.split('\n')[0] ?? '').trim();
  if (token === '') throw new HostlinkError('usage', `the token file ${path} is empty: put a long random token on its first line`);
  return token;
}

/** Constant-time comparison (of digests, so the lengths do not leak either). */
export function tokenMatches(expected: string | undefined, given: string | undefined): boolean {
  if (expected === undefined || expected === '' || given === undefined) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}
