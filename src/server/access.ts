/**
 * Who may talk to `hostlink serve`. Beyond loopback a bearer token is required (the server refuses to start
 * without one). On loopback without a token, the Host header must name the loopback listener and a browser's
 * Origin must match it: a web page the user visits cannot drive the node (no DNS rebinding, no cross-site
 * requests; JSON and wasm bodies also need a CORS preflight that the server never grants). Requests a browser
 * marks as made by another site (Sec-Fetch-Site) are refused too, token or not, except opening the studio.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { HostlinkError } from '../errors.js';
import { checkToken, digestMatches, tokenDigest } from '../token.js';
import { HttpError } from './http.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** `HOST:PORT`, `[IPv6]:PORT` or `PORT` (loopback). */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new HostlinkError('usage', `--listen takes HOST:PORT, e.g. 127.0.0.1:7411 (got '${text}')`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

export class Access {
  private readonly tokenDigest: Buffer | null;
  private hosts = new Set<string>();

  /** Refuses (HostlinkError 'usage') a listen address beyond loopback without a token, and short tokens. */
  constructor(
    private readonly listen: ListenAddress,
    token: string | undefined,
  ) {
    if (!isLoopback(listen.host) && token === undefined) {
      throw new HostlinkError('usage', `listening on ${listen.host} (beyond loopback) needs a token: set HOSTLINK_TOKEN or pass --token-file FILE`);
    }
    if (token !== undefined) {
      checkToken(token, 'the token');
      if (token.length < 16) throw new HostlinkError('usage', 'the token must be at least 16 characters (e.g. openssl rand -hex 32)');
    }
    this.tokenDigest = token === undefined ? null : tokenDigest(token);
  }

  /** The port actually bound (the Host header names it). */
  bound(port: number): void {
    const h = this.listen.host;
    this.hosts = new Set(['127.0.0.1', 'localhost', '[::1]', h.includes(':') ? `[${h}]` : h].map((x) => `${x}:${port}`));
  }

  get tokenRequired(): boolean {
    return this.tokenDigest !== null;
  }

  /**
   * Throws HttpError (401/403) when the request may not use the API. `needsToken`: the route needs the token
   * when one is set; `isPage`: it is a page a person may open from a link on another site (the studio).
   */
  check(req: IncomingMessage, needsToken: boolean, isPage = false): void {
    if (this.tokenDigest === null) {
      const host = (req.headers.host ?? '').toLowerCase();
      if (!this.hosts.has(host)) throw new HttpError(403, `Host '${host}' is not this node's loopback address: use http://127.0.0.1:PORT/`);
    }
    const origin = req.headers.origin;
    // Same origin: this Host, over http or (behind a TLS-terminating proxy) https.
    if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}` && origin !== `https://${req.headers.host ?? ''}`) {
      throw new HttpError(403, `cross-origin request from ${origin} refused: use the studio served by this node`);
    }
    // Browsers send no Origin on a GET a page makes without CORS (an <object>, <link rel=prefetch>, <iframe>),
    // but they do say which site made it. Such GETs from another site passed the checks above: a page learned
    // from their load and error events whether a contract hash was deployed or a call id existed, and its
    // iframes held event streams open. Only this node's own pages, or the person typing the address
    // ('none'), may use the API; a link from another site may still open the studio as a page.
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      const topLevelPage = isPage && req.headers['sec-fetch-mode'] === 'navigate' && req.headers['sec-fetch-dest'] === 'document';
      if (!topLevelPage) throw new HttpError(403, `request made by a ${site} page refused: open the studio served by this node, or call the API from outside a browser`);
    }
    if (!needsToken || this.tokenDigest === null) return;
    const m = /^bearer +(.+)$/i.exec(req.headers.authorization ?? '');
    if (!m || !digestMatches(this.tokenDigest, m[1]!)) {
      throw new HttpError(401, 'missing or wrong bearer token: send Authorization: Bearer <token>', { 'www-authenticate': 'Bearer' });
    }
  }
}
