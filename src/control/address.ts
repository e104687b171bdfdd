/**
 * Addresses of the command channel:
 *
 * - `vsock://CID:PORT`: AF_VSOCK (the default, `vsock://2:19090`: the host seen from a guest). Either part may be
 *   left out (`vsock://`, `vsock://2`, `vsock://:19090`: CID 2, port 19090). To listen, the CID is `any`.
 * - `unix:///path`: a Unix-domain socket.
 * - `unix:///path?port=PORT`: Firecracker / Cloud Hypervisor "hybrid vsock": connect to the VMM's Unix socket,
 *   send `CONNECT PORT\n`, read `OK ...\n`, then speak the protocol.
 * - `HOST:PORT` or `tcp://HOST:PORT`: TCP, for development.
 */
import { isAbsolute } from 'node:path';
import { HostlinkError } from '../errors.js';

export const VSOCK_HOST_CID = 2;
export const DEFAULT_CONTROL_PORT = 19090;
/** VMADDR_CID_ANY: listen on every CID. */
export const VSOCK_CID_ANY = 0xffff_ffff;

export type ControlAddress =
  | { kind: 'vsock'; cid: number; port: number }
  | { kind: 'unix'; path: string; vsockPort?: number }
  | { kind: 'tcp'; host: string; port: number };

export const DEFAULT_GUEST_ADDRESS = `vsock://${VSOCK_HOST_CID}:${DEFAULT_CONTROL_PORT}`;
export const DEFAULT_AGENT_ADDRESS = `vsock://any:${DEFAULT_CONTROL_PORT}`;

const HELP = 'expected vsock://CID:PORT, unix:///path, unix:///path?port=PORT (hybrid vsock) or HOST:PORT';

function u32(text: string, what: string, whole: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > 0xffff_ffff) {
    throw new HostlinkError('usage', `invalid address '${whole}': ${what} '${text}' is not a number: ${HELP}`);
  }
  return Number(text);
}

export function parseControlAddress(text: string): ControlAddress {
  if (text.startsWith('vsock://')) {
    const rest = text.slice('vsock://'.length);
    const m = /^([^:]*)(?::(.*))?$/.exec(rest)!;
    const cidText = m[1]!;
    const portText = m[2] ?? '';
    const cid = cidText === '' ? VSOCK_HOST_CID : cidText === 'any' ? VSOCK_CID_ANY : u32(cidText, 'CID', text);
    const port = portText === '' ? DEFAULT_CONTROL_PORT : u32(portText, 'port', text);
    return { kind: 'vsock', cid, port };
  }
  if (text.startsWith('unix://')) {
    const rest = text.slice('unix://'.length);
    const q = rest.lastIndexOf('?port=');
    const path = q >= 0 ? rest.slice(0, q) : rest;
    if (!path || !isAbsolute(path)) {
      throw new HostlinkError('usage', `invalid address '${text}': the unix socket path must be absolute: ${HELP}`);
    }
    if (q < 0) return { kind: 'unix', path };
    const port = u32(rest.slice(q + '?port='.length), 'port', text);
    return { kind: 'unix', path, vsockPort: port };
  }
  // HOST:PORT as in src/transport, but port 0 is allowed: "any free port" when listening.
  const rest = text.startsWith('tcp://') ? text.slice('tcp://'.length) : text;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s/]+)):(\d{1,5})$/.exec(rest);
  if (m && Number(m[3]) <= 65535) return { kind: 'tcp', host: m[1] ?? m[2]!, port: Number(m[3]) };
  throw new HostlinkError('usage', `invalid address '${text}': ${HELP}`);
}

export function formatControlAddress(a: ControlAddress): string {
  switch (a.kind) {
    case 'vsock':
      return `vsock://${a.cid === VSOCK_CID_ANY ? 'any' : a.cid}:${a.port}`;
    case 'unix':
      return a.vsockPort === undefined ? `unix://${a.path}` : `unix://${a.path}?port=${a.vsockPort}`;
    case 'tcp':
      return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
  }
}
