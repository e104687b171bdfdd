/**
 * The id a name stands for (an account, a context): SHA-256 of the name's UTF-8, as `hostlink id NAME` prints
 * and the CLI's, the API's and the testing library's `name:NAME` forms mean. Bytes that are not UTF-8 reach a
 * program as U+FFFD (the command line, a JSON body) and half a UTF-16 pair encodes as U+FFFD, so names that
 * differ only there would become one id, another account's: such a name is refused everywhere.
 */
import { createHash } from 'node:crypto';
import { HostlinkError } from './errors.js';

/** Half of a UTF-16 pair without its other half (a JSON string may escape one): UTF-8 encodes it as U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** SHA-256 of `name`'s UTF-8; HostlinkError('usage'), naming `what`, when the name is not UTF-8 text. */
export function nameId(name: string, what: string): Uint8Array {
  if (name.includes('\uFFFD') || LONE_SURROGATE.test(name)) {
    throw new HostlinkError('usage', `${what}: the name is not UTF-8 text (bytes that are not UTF-8, half a UTF-16 pair, or the character U+FFFD they become): names must be UTF-8 text`);
  }
  return Uint8Array.from(createHash('sha256').update(name, 'utf8').digest());
}
