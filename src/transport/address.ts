/**
 * Host addresses as given to `hostlink vm --host`: `unix:///absolute/path`, `tcp://HOST:PORT` or `HOST:PORT`
 * (IPv6 hosts in brackets: `[::1]:9000`).
 */
import { isAbsolute } from 'node:path';
import { HostlinkError } from '../errors.js';

export type HostAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function parseAddress(text: string): HostAddress {
  if (text.startsWith('unix://')) {
    const path = text.slice('unix://'.length);
    if (!path || !isAbsolute(path)) {
      throw new HostlinkError('usage', `invalid unix address '${text}': expected unix:///absolute/path/to.sock`);
    }
    return { kind: 'unix', path };
  }
  const rest = text.startsWith('tcp://') ? text.slice('tcp://'.length) : text;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s/]+)):(\d{1,5})$/.exec(rest);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) {
    throw new HostlinkError('usage', `invalid host address '${text}': expected unix:///path, tcp://HOST:PORT or HOST:PORT`);
  }
  return { kind: 'tcp', host: m[1] ?? m[2]!, port };
}

export function formatAddress(a: HostAddress): string {
  if (a.kind === 'unix') return `unix://${a.path}`;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
