/**
 * Worker addresses as the listeners they name. The node keys its slot table by them (remote-launcher.ts), and
 * both sides refuse a worker address that names no machine in particular (the unspecified address).
 */

/**
 * The host part of a worker address in one form for one listener: an IP literal in its standard form (IPv4
 * shorthand, octal, hex and decimal forms and IPv4-mapped IPv6 as dotted IPv4; IPv6 compressed, lower case,
 * in brackets), localhost as 127.0.0.1, other names in lower case.
 */
export function canonicalHost(host: string): string {
  let h = host.toLowerCase();
  try {
    h = new URL(`http://${host.includes(':') ? `[${host}]` : host}:1/`).hostname;
  } catch {
    // not something URL parses: keep it, lower case
  }
  const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(h);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    h = `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  if (h === 'localhost' || h.endsWith('.localhost')) h = '127.0.0.1';
  return h;
}

/**
 * Whether `host` is the unspecified address (0.0.0.0 or ::) however it is written (0, 0x0, 0.0, [::ffff:0.0.0.0],
 * [::0] …). A listener bound to it listens on every address, but dialling it names no machine: Linux connects it
 * to the dialler's own loopback, so as a worker's address it would be the node's own 127.0.0.1 or ::1 listener.
 */
export function isUnspecifiedHost(host: string): boolean {
  const h = canonicalHost(host);
  return h === '0.0.0.0' || h === '[::]';
}

/** Why a worker may not advertise `addr` (an unspecified address), and what to give instead. */
export function unspecifiedWorkerAddress(addr: string): string {
  return (
    `worker address ${addr} is the unspecified address (0.0.0.0 or ::), which names no machine to dial (it reaches the dialler's own loopback): ` +
    'start the worker with --advertise HOST:PORT, an address of its machine that the node can reach'
  );
}
