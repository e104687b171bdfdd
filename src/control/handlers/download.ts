/**
 * Downloads a URL (http or https) to a file while hashing it. The timeout applies to each wait (for the response
 * headers and for every body chunk), not to the whole download, so a big image on a slow link still completes
 * but a server that stalls is given up on. The size limit is checked against Content-Length and the bytes seen.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface DownloadOptions {
  maxBytes: number;
  chunkTimeoutMs: number;
  signal?: AbortSignal;
  maxRedirects?: number;
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
    throw new Error(`invalid upgrade URL '${url}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`unsupported upgrade URL '${url}': only http and https`);
  return u;
}

function request(url: URL, o: DownloadOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? httpsGet : httpGet;
    const req = get(url, { signal: o.signal }, (res) => {
      // From here the body's own stall timer (in download) measures silence.
      req.setTimeout(0);
      resolve(res);
    });
    req.setTimeout(o.chunkTimeoutMs, () => req.destroy(new Error(`no response from ${url.href} within ${o.chunkTimeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function open(url: URL, o: DownloadOptions): Promise<IncomingMessage> {
  let at = url;
  for (let hop = 0; ; hop++) {
    const res = await request(at, o);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location !== undefined) {
      res.resume();
      if (hop >= (o.maxRedirects ?? 5)) throw new Error(`too many redirects downloading ${url.href}`);
      at = checkDownloadUrl(new URL(res.headers.location, at).href);
      continue;
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw new Error(`downloading ${at.href} failed: HTTP ${status} ${res.statusMessage ?? ''}`.trim());
    }
    return res;
  }
}

/** Downloads `url` into `file`, which must not exist yet (it is created with mode 0600). */
export async function download(url: string, file: string, o: DownloadOptions): Promise<Downloaded> {
  const u = checkDownloadUrl(url);
  const res = await open(u, o);
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > o.maxBytes) {
    res.destroy();
    throw new Error(`the upgrade at ${u.href} is ${declared} bytes, more than the limit of ${o.maxBytes}`);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const stall = setTimeout(() => {
    res.destroy(new Error(`downloading ${u.href} stalled: no data for ${o.chunkTimeoutMs} ms after ${bytes} bytes`));
  }, o.chunkTimeoutMs);
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      stall.refresh();
      bytes += chunk.length;
      if (bytes > o.maxBytes) return done(new Error(`the upgrade at ${u.href} is larger than the limit of ${o.maxBytes} bytes`));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(res, meter, createWriteStream(file, { flags: 'wx', mode: 0o600 }), { signal: o.signal });
  } catch (e) {
    if (o.signal?.aborted) throw new Error(`downloading ${u.href} was stopped: the request timed out`);
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_STREAM_PREMATURE_CLOSE' || err.code === 'ECONNRESET') {
      throw new Error(`downloading ${u.href} failed: the server closed the connection after ${bytes} bytes`);
    }
    throw err;
  } finally {
    clearTimeout(stall);
  }
  if (res.complete === false) throw new Error(`downloading ${u.href} failed: the body ended early after ${bytes} bytes`);
  return { bytes, sha256: hash.digest('hex') };
}

/** Lowercase hex SHA-256 of a file. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}
