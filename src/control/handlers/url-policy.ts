/**
 * Where an upgrade may be downloaded from. A guest names the URL, and the agent runs as root on the host, so
 * without a rule the guest could make the host fetch from itself or from internal services. Two rules, both
 * checked for the URL the guest sent and again for every redirect:
 *
 * 1. the URL's origin (scheme, host, port) must be one of `handlers.upgrade.allowedUrls`;
 * 2. every address the host name resolves to is checked, and the connection goes to an address that passed
 *    (the request's own DNS lookup is replaced by the checked answer, so a second DNS answer cannot swap in
 *    another address); special-purpose addresses (loopback, private, link-local...) pass only when inside
 *    `handlers.upgrade.allowedNetworks`.
 *
 * A refusal names the rule that refused, never anything learnt from the network.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import { inNetwork, parseIp, parseNetwork, specialRange, type Network } from './addresses.js';

export interface UrlPolicy {
  origins: Set<string>;
  networks: Network[];
}

/**
 * A URL the rules refused; its message is safe to send to the guest. Internal control flow (src/errors.ts,
 * INTERNAL_ERROR_CLASSES): the upgrade handler answers it to the guest; it never reaches a caller.
 */
export class UrlRefused extends Error {
  override readonly name = 'UrlRefused';
}

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** `scheme://host:port` with the port always written, so `https://x` and `https://x:443` compare equal. */
function originKey(u: URL): string {
  return `${u.protocol}//${u.hostname}:${u.port || DEFAULT_PORT[u.protocol]}`;
}

/** Reads one allowedUrls entry; throws saying what is wrong with it. */
export function parseAllowedOrigin(entry: unknown): string {
  if (typeof entry !== 'string') throw new Error('not a string');
  let u: URL;
  try {
    u = new URL(entry);
  } catch {
    throw new Error(`'${entry}' is not a URL`);
  }
  if (DEFAULT_PORT[u.protocol] === undefined) throw new Error(`'${entry}': only http and https`);
  if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
    throw new Error(`'${entry}': give only scheme, host and port`);
  }
  return originKey(u);
}

export function urlPolicy(allowedUrls: readonly string[], allowedNetworks: readonly string[]): UrlPolicy {
  return { origins: new Set(allowedUrls.map(parseAllowedOrigin)), networks: allowedNetworks.map(parseNetwork) };
}

/** Rule 1: the origin is allow-listed. `what` says which URL this is ("the upgrade URL", "a redirect"). */
export function checkOrigin(u: URL, policy: UrlPolicy, what: string): void {
  if (DEFAULT_PORT[u.protocol] === undefined) throw new UrlRefused(`${what} is not http or https`);
  if (!policy.origins.has(originKey(u))) {
    throw new UrlRefused(`${what} is not allowed: its scheme, host and port match no entry of handlers.upgrade.allowedUrls in the agent configuration`);
  }
}

export interface Resolved {
  address: string;
  family: 4 | 6;
}

/**
 * Rule 2: resolves `u`'s host and returns the first address that passes; refuses when none does. The
 * refusal names the kind of address (loopback, private...) of the host the operator allow-listed.
 */
export async function resolveChecked(u: URL, policy: UrlPolicy, what: string): Promise<Resolved> {
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  let candidates: { address: string; family: number }[];
  if (parseIp(host) !== undefined) {
    candidates = [{ address: host, family: host.includes(':') ? 6 : 4 }];
  } else {
    try {
      candidates = await dnsLookup(host, { all: true, verbatim: true });
    } catch {
      throw new UrlRefused(`${what} could not be reached: its host name does not resolve`);
    }
  }
  let refusedAs: string | undefined;
  for (const c of candidates) {
    const ip = parseIp(c.address);
    if (ip === undefined) continue;
    const special = specialRange(ip);
    if (special === undefined || policy.networks.some((n) => inNetwork(ip, n))) {
      return { address: c.address, family: c.family === 6 ? 6 : 4 };
    }
    refusedAs ??= special;
  }
  throw new UrlRefused(
    `${what} is not allowed: its host resolves only to ${refusedAs ?? 'unusable'} addresses, which handlers.upgrade.allowedNetworks in the agent configuration does not include`,
  );
}

/** A lookup function that answers every query with the address already checked (no second DNS query). */
export function pinnedLookup(r: Resolved): LookupFunction {
  return ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address: r.address, family: r.family }]);
    else callback(null, r.address, r.family);
  }) as LookupFunction;
}
