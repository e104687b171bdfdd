/**
 * The one way the command line and the node read a file the user names (a contract, an input, a token,
 * a certificate, a configuration): at most a limit of bytes, so `/dev/zero`, a pipe that never ends or a
 * huge file stops with a one-line error naming the limit instead of filling memory.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { HostlinkError } from './errors.js';

/** Largest token, certificate, key or configuration file read: far above any real one. */
export const MAX_SETTINGS_FILE_BYTES = 1 << 20;

/** Named in the error when a settings file is over MAX_SETTINGS_FILE_BYTES. */
export const SETTINGS_FILE_LIMIT = 'the most a token, certificate or configuration file may hold';

/**
 * Reads at most `limit` bytes of a file, device or pipe (`/dev/zero` never ends): more is a usage error that
 * names the limit, raised after reading limit + 1 bytes, never more.
 */
export function readBounded(path: string, limit: number, what: string, limitName: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new HostlinkError('usage', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
  try {
    if (fstatSync(fd).isDirectory()) throw new HostlinkError('usage', `${what} ${path} is a directory`);
    const buf = Buffer.alloc(Math.min(limit + 1, 1 << 20));
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, limit + 1 - total), null);
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
      total += n;
      if (total > limit) throw new HostlinkError('usage', `${what} ${path} is larger than ${limit} bytes (${limitName})`);
    }
    return Uint8Array.from(Buffer.concat(chunks, total));
  } finally {
    closeSync(fd);
  }
}

/** A settings file (token, certificate, key, configuration) as text, read through readBounded. */
export function readSettingsFile(path: string, what: string): string {
  return Buffer.from(readBounded(path, MAX_SETTINGS_FILE_BYTES, what, SETTINGS_FILE_LIMIT)).toString('utf8');
}
