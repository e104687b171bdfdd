/** HOST:PORT for a listener of the worker feature, where port 0 (pick a free one) is allowed, unlike a dial address. */
import { HostlinkError } from '../errors.js';

export function parseListen(text: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s/]+)):(\d{1,5})$/.exec(text.startsWith('tcp://') ? text.slice(6) : text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new HostlinkError('usage', `${what} must be HOST:PORT (got '${text}')`);
  return { host: m[1] ?? m[2]!, port };
}
