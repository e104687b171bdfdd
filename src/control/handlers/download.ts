/**
 * Downloads an upgrade image (http or https) into a file the agent holds open, hashing exactly the bytes it
 * writes. Every URL, the guest's and each redirect's, passes the URL policy (allow-listed origin, checked
 * addresses, see url-policy.ts) and the connection goes to the checked address. The timeout applies to each
 * wait (for the response headers and for every body chunk), not to the whole download, so a big image on a
 * slow link still completes but a server that stalls is given up on. The size limit is checked against
 * Content-Length and the bytes seen.
 *
 * What the guest is told names a rule only. HTTP statuses, connection errors and anything else learnt from
 * the network go to the agent's log: otherwise the reply would tell the guest whether a port is open or what
 * a server it could not reach itself answered.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { whyStopped } from './run.js';
import { checkOrigin, pinnedLookup, resolveChecked, UrlRefused, type UrlPolicy } from './url-policy.js';

export interface DownloadOptions {
  policy: UrlPolicy;
  maxBytes: number;
  chunkTimeoutMs: number;
  maxRedirects: number;
  signal?: AbortSignal;
  /** The agent's log: details the guest is not told. */
  log(line: string): void;
}

export interface Downloaded {
  bytes: number;
  sha256: string;
}

/** `url` must be http(s); throws with a message naming the URL otherwise. */
export function checkDownloadUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`invalid upgrade URL '${url.slice(0, 200)}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`unsupported upgrade URL '${url.slice(0, 200)}': only http and https`);
  return u;
}

/** The reply for any failure the guest may not learn details of. */
const FAILED = "the upgrade could not be downloaded from the allowed server; the host's agent log has the details";

function request(url: URL, o: DownloadOptions, what: string): Promise<IncomingMessage> {
  return resolveChecked(url, o.policy, what).then(
    (resolved) =>
      new Promise((resolve, reject) => {
        const get = url.protocol === 'https:' ? httpsGet : httpGet;
        // agent: false: no pooled socket, which could have been connected to an address checked for another request.
        const req = get(url, { signal: o.signal, lookup: pinnedLookup(resolved), agent: false }, (res) => {
          // From here the body's own stall timer (in download) measures silence.
          req.setTimeout(0);
          resolve(res);
        });
        req.setTimeout(o.chunkTimeoutMs, () => {
          o.log(`upgrade: no response from ${url.href} (${resolved.address}) within ${o.chunkTimeoutMs} ms`);
          req.destroy(new UrlRefused(`the upgrade server did not answer within handlers.upgrade.chunkTimeoutMs (${o.chunkTimeoutMs} ms)`));
        });
        req.on('error', (e) => {
          // A stopped request (timeout, shutdown) is reported by download(); this is not the server failing.
          if (!(e instanceof UrlRefused) && o.signal?.aborted !== true) o.log(`upgrade: requesting ${url.href} (${resolved.address}) failed: ${e.message}`);
          reject(e instanceof UrlRefused ? e : new UrlRefused(FAILED));
        });
      }),
  );
}

async function open(url: URL, o: DownloadOptions): Promise<IncomingMessage> {
  checkOrigin(url, o.policy, 'the upgrade URL');
  let at = url;
  let what = 'the upgrade URL';
  for (let hop = 0; ; hop++) {
    const res = await request(at, o, what);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location !== undefined) {
      res.destroy();
      if (hop >= o.maxRedirects) throw new UrlRefused(`the upgrade URL redirected more than handlers.upgrade.maxRedirects (${o.maxRedirects}) times`);
      let next: URL;
      try {
        next = new URL(res.headers.location, at);
      } catch {
        o.log(`upgrade: ${at.href} redirected to an invalid location`);
        throw new UrlRefused(FAILED);
      }
      o.log(`upgrade: ${at.href} redirected to ${next.href}`);
      what = 'a redirect of the upgrade URL';
      checkOrigin(next, o.policy, what);
      at = next;
      continue;
    }
    if (status < 200 || status >= 300) {
      res.destroy();
      o.log(`upgrade: ${at.href} answered HTTP ${status} ${res.statusMessage ?? ''}`);
      throw new UrlRefused(FAILED);
    }
    return res;
  }
}

/** Writes every chunk through the agent's own descriptor. */
function intoHandle(handle: FileHandle): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      const all = async (): Promise<void> => {
        for (let off = 0; off < chunk.length; ) off += (await handle.write(chunk, off, chunk.length - off)).bytesWritten;
      };
      all().then(() => done(), done);
    },
  });
}

/** Downloads `url` into `into` (a fresh, empty file the agent holds open) and returns the hash of what was written. */
export async function download(url: string, into: FileHandle, o: DownloadOptions): Promise<Downloaded> {
  const u = checkDownloadUrl(url);
  const res = await open(u, o);
  const tooBig = `the upgrade image is larger than handlers.upgrade.maxBytes (${o.maxBytes} bytes)`;
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > o.maxBytes) {
    res.destroy();
    throw new UrlRefused(tooBig);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const stall = setTimeout(() => {
    o.log(`upgrade: downloading ${u.href} stalled after ${bytes} bytes`);
    res.destroy(new UrlRefused(`the upgrade download stalled: no data for handlers.upgrade.chunkTimeoutMs (${o.chunkTimeoutMs} ms)`));
  }, o.chunkTimeoutMs);
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      stall.refresh();
      bytes += chunk.length;
      if (bytes > o.maxBytes) return done(new UrlRefused(tooBig));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(res, meter, intoHandle(into), { signal: o.signal });
  } catch (e) {
    if (o.signal?.aborted) throw new Error(`downloading the upgrade was stopped: ${whyStopped(o.signal)}`);
    if (e instanceof UrlRefused) throw e;
    o.log(`upgrade: downloading ${u.href} failed after ${bytes} bytes: ${(e as Error).message}`);
    throw new UrlRefused(FAILED);
  } finally {
    clearTimeout(stall);
  }
  if (res.complete === false) {
    o.log(`upgrade: the body from ${u.href} ended early after ${bytes} bytes`);
    throw new UrlRefused(FAILED);
  }
  return { bytes, sha256: hash.digest('hex') };
}
