/**
 * IP addresses an upgrade download may not reach unless the operator allows them: loopback, private,
 * link-local, unique-local, multicast, unspecified and the other special-purpose ranges (IANA registries for
 * IPv4 and IPv6), so a guest cannot make the agent (root, on the host) fetch from the host itself or from
 * internal services. IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are judged as the IPv4 address they carry.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** An address as bytes: 4 for IPv4, 16 for IPv6. */
export type IpBytes = Uint8Array;

export interface Network {
  bytes: IpBytes;
  prefix: number;
  /** As written, for messages. */
  text: string;
}

/** Parses an IPv4 or IPv6 literal (no brackets, no zone); undefined when it is not one. */
export function parseIp(text: string): IpBytes | undefined {
  if (isIPv4(text)) return Uint8Array.from(text.split('.').map(Number));
  if (!isIPv6(text)) return undefined;
  let head = text;
  const out = new Uint8Array(16);
  // A trailing dotted quad (::ffff:1.2.3.4) fills the last 4 bytes.
  const quad = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tailBytes: number[] = [];
  if (quad) {
    head = quad[1]!.endsWith('::') ? quad[1]! : quad[1]!.slice(0, -1);
    tailBytes = quad[2]!.split('.').map(Number);
  }
  const groupsAvailable = 8 - tailBytes.length / 2;
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const l = left ? left.split(':') : [];
  const r = right !== undefined && right !== '' ? right.split(':') : [];
  const groups = [...l, ...Array<string>(right === undefined ? 0 : groupsAvailable - l.length - r.length).fill('0'), ...r];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  tailBytes.forEach((b, i) => (out[12 + i] = b));
  return out;
}

/** `::ffff:a.b.c.d` becomes a.b.c.d; everything else is returned as is. */
export function unmapIpv4(ip: IpBytes): IpBytes {
  if (ip.length === 16 && ip.subarray(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff) return ip.slice(12);
  return ip;
}

/** Parses `ADDRESS/PREFIX` (or a bare address: the whole address); throws naming the text. */
export function parseNetwork(text: string): Network {
  const [addr, len, extra] = text.split('/');
  const parsed = parseIp(addr ?? '');
  const max = parsed?.length === 4 ? 32 : 128;
  const prefix = len === undefined ? max : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (parsed === undefined || extra !== undefined || !(prefix >= 0 && prefix <= max)) {
    throw new Error(`'${text}' is not a network: expected ADDRESS/PREFIX such as 10.0.0.0/8 or fd00::/8`);
  }
  return { bytes: unmapIpv4(parsed), prefix: parsed.length === 16 && unmapIpv4(parsed).length === 4 ? Math.max(0, prefix - 96) : prefix, text };
}

export function inNetwork(ip: IpBytes, net: Network): boolean {
  const a = unmapIpv4(ip);
  if (a.length !== net.bytes.length) return false;
  let bits = net.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((a[i]! & mask) !== (net.bytes[i]! & mask)) return false;
  }
  return true;
}

/** Special-purpose ranges, most specific first; the name is what a refusal says. */
const SPECIAL: [string, string][] = [
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared (carrier-grade NAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'special-purpose'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', 'special-purpose (6to4 relay)'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'], // includes the broadcast address 255.255.255.255
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::/96', 'IPv4-compatible (deprecated)'],
  ['64:ff9b::/96', 'NAT64'],
  ['64:ff9b:1::/48', 'NAT64 (local)'],
  ['100::/64', 'discard-only'],
  ['2001:db8::/32', 'documentation'],
  ['2001::/23', 'special-purpose (IETF protocol assignments, Teredo)'],
  ['2002::/16', '6to4'],
  ['fc00::/7', 'unique-local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local (deprecated)'],
  ['ff00::/8', 'multicast'],
];
const SPECIAL_NETWORKS = SPECIAL.map(([net, name]) => ({ net: parseNetwork(net), name }));

/** The kind of special range `ip` is in ('loopback', 'private', ...), or undefined for a public address. */
export function specialRange(ip: IpBytes): string | undefined {
  const a = unmapIpv4(ip);
  for (const { net, name } of SPECIAL_NETWORKS) if (inNetwork(a, net)) return name;
  return undefined;
}
