/**
 * Small HTTP helpers for `hostlink serve` (node:http, no framework): bounded body reading, JSON replies, and the
 * mapping of Hostlink errors to status codes. Every error reply is `{"error": "<one line: what and what to do>"}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { HostlinkError, type HostlinkErrorCode } from '../errors.js';
import { MAX_REQUEST_JSON_DEPTH, MAX_REQUEST_JSON_ITEMS } from '../protocol/bounds.generated.js';
import { scanJsonInSlices, type JsonScanFailure } from '../json-check.js';

/**
 * An error with its HTTP status; thrown by handlers, turned into a JSON reply by the server. Internal control
 * flow (src/errors.ts, INTERNAL_ERROR_CLASSES): it never leaves the server, so it is not in the closed set.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const STATUS_OF: Partial<Record<HostlinkErrorCode, number>> = { usage: 400, invalid_message: 400, not_found: 404, timeout: 504 };

export function statusOf(e: unknown): { status: number; message: string; headers: Record<string, string> } {
  if (e instanceof HttpError) return { status: e.status, message: e.message, headers: e.headers };
  if (e instanceof HostlinkError) return { status: STATUS_OF[e.code] ?? 500, message: e.message.split('\n')[0]!, headers: {} };
  return { status: 500, message: `internal error: ${(e as Error)?.message ?? String(e)}`, headers: {} };
}

/**
 * The bytes of request bodies still arriving, all requests together. Bodies are read before a request takes
 * one of the calls in flight (so a client that sends its body slowly holds no call), and this bounds what they
 * buffer meanwhile: a body that needs room beyond `limit` closes the oldest body still arriving (a stalled one,
 * most likely), or, when it is the only one, is refused itself.
 */
export class BodyBudget {
  private used = 0;
  /** Bodies still arriving, oldest first, with their bytes and how to drop them. */
  private readonly arriving = new Map<IncomingMessage, { bytes: number; drop: () => void }>();

  constructor(readonly limit: number) {}

  /** Counts `bytes` more for `req`; false when they cannot fit even after dropping every older body. */
  take(req: IncomingMessage, bytes: number, drop: () => void): boolean {
    const own = this.arriving.get(req) ?? { bytes: 0, drop };
    this.arriving.set(req, own);
    while (this.used + bytes > this.limit) {
      const oldest = [...this.arriving.keys()].find((r) => r !== req);
      if (oldest === undefined) return false;
      const entry = this.arriving.get(oldest)!;
      this.release(oldest);
      entry.drop();
    }
    own.bytes += bytes;
    this.used += bytes;
    return true;
  }

  /** The body is complete or gone: its bytes leave the budget (the handler holds them under the calls-in-flight limit). */
  release(req: IncomingMessage): void {
    const entry = this.arriving.get(req);
    if (entry === undefined) return;
    this.used -= entry.bytes;
    this.arriving.delete(req);
  }
}

/** How long, and for how many bytes, a connection answered before its body was read keeps discarding the body. */
export const LINGER_MS = 2_000;
export const LINGER_BYTES = 8 * 1024 * 1024;
const lingering = new WeakSet<IncomingMessage>();

/**
 * Closes the connection of a request answered before its body was read, without losing the answer: the answer
 * goes out with a FIN, then what still arrives of the body is read and thrown away for LINGER_MS or LINGER_BYTES,
 * whichever comes first, and only then is the connection closed. Node's own close on `Connection: close` shut
 * it as soon as the answer was written: with body bytes unread the kernel sent a reset, and a client still
 * sending saw no answer at all. Reading the body to its end instead (keeping the connection) read refused
 * uploads whole: 2 GB in about 12 s. Call it before answering with `Connection: close`.
 */
export function lingerThenClose(req: IncomingMessage): void {
  if (lingering.has(req)) return;
  lingering.add(req);
  const socket = req.socket;
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > LINGER_BYTES) socket.destroy();
  });
  req.resume();
  // Node calls destroySoon once an answer marked `Connection: close` is written.
  socket.destroySoon = () => {
    if (socket.writable) socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
}

/** Reads the whole body, refusing more than `limit` bytes (413) without buffering the excess. */
export function readBody(req: IncomingMessage, limit: number, budget?: BodyBudget): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, `request body of ${declared} bytes is over the limit of ${limit} bytes`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      budget?.release(req);
      req.removeAllListeners('data');
    };
    const dropped = (): void => {
      // Answered, then closed (lingerThenClose): closed at once, the client saw a reset and could not tell
      // whether the node had acted on its request.
      reject(new HttpError(503, "request bodies arriving at once are over the node's budget and this one was the oldest: send it again", { 'retry-after': '1', connection: 'close' }));
      stop();
      lingerThenClose(req);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `request body is over the limit of ${limit} bytes`));
        stop();
        req.resume();
        return;
      }
      if (budget !== undefined && !budget.take(req, chunk.length, dropped)) return dropped();
      chunks.push(chunk);
    });
    req.on('end', () => {
      budget?.release(req);
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      budget?.release(req);
      reject(new HttpError(400, `the request body ended early (${e.message})`));
    });
    req.once('close', () => budget?.release(req));
  });
}

/** The body a route takes: its kind (which fixes the Content-Types it accepts) and its largest size. */
export interface BodySpec {
  kind: 'json' | 'wasm';
  limit: number;
}

const BODY_TYPES: Record<BodySpec['kind'], string[]> = { json: ['application/json'], wasm: ['application/wasm', 'application/octet-stream'] };

/**
 * What can be refused from the headers alone (415, 413 on a declared length), before a byte of the body is read
 * and before a client that asked (Expect: 100-continue) is told to send it.
 */
export function checkBodyHeaders(req: IncomingMessage, spec: BodySpec): void {
  requireType(req, ...BODY_TYPES[spec.kind]);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > spec.limit) throw new HttpError(413, `request body of ${declared} bytes is over the limit of ${spec.limit} bytes`);
}

/** Reads a route's body, once checkBodyHeaders has passed: bytes, or a JSON object (readJson). */
export async function readRouteBody(req: IncomingMessage, spec: BodySpec, budget: BodyBudget): Promise<unknown> {
  return spec.kind === 'json' ? readJson(req, spec.limit, budget) : readBody(req, spec.limit, budget);
}

/** A JSON object body; requires Content-Type application/json (a cross-site form cannot send it without a CORS preflight). */
export async function readJson(req: IncomingMessage, limit: number, budget?: BodyBudget): Promise<Record<string, unknown>> {
  requireType(req, 'application/json');
  const text = (await readBody(req, limit, budget)).toString('utf8');
  // Checked before JSON.parse, whose cost follows what it builds rather than the body's size.
  const failure = await scanJsonInSlices(text, { maxDepth: MAX_REQUEST_JSON_DEPTH, maxItems: MAX_REQUEST_JSON_ITEMS });
  if (failure !== undefined) throw new HttpError(400, `request body ${jsonFailure(failure)}`);
  const value: unknown = JSON.parse(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, 'request body must be a JSON object');
  return value as Record<string, unknown>;
}

/** What a JSON scan found, as the end of a sentence about the text. */
export function jsonFailure(failure: JsonScanFailure): string {
  if ('syntax' in failure) return `is not valid JSON (unexpected character at position ${failure.syntax})`;
  if ('tooDeep' in failure) {
    return `nests more than ${failure.tooDeep} brackets deep (max_request_json_depth): a request names a few fields; send contract input as the 'input' string`;
  }
  return `has more than ${failure.tooMany} values and keys (max_request_json_items): a request names a few fields; send contract input as the 'input' string`;
}

export function requireType(req: IncomingMessage, ...types: string[]): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (!types.includes(type)) throw new HttpError(415, `Content-Type must be ${types.join(' or ')} (got '${type || 'none'}')`);
}

/** JSON.stringify with bigints as decimal strings. */
export const toJson = (value: unknown): string => JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

/**
 * The bytes of answers written and not yet taken by the kernel, all connections together. An answer the reader
 * does not read stays in the node's memory until the connection ends: 100 connections that each asked for the
 * recent calls and never read held 6 GiB. An answer that needs room beyond `limit` closes the connections
 * holding the oldest unread answers (stalled readers, most likely); one larger than the limit alone is still sent.
 */
export class ReplyBudget {
  private used = 0;
  /** Answers not yet handed to the kernel whole, oldest first, with their bytes. */
  private readonly unsent = new Map<ServerResponse, number>();
  /** The same answers by connection. */
  private readonly bySocket = new Map<Socket, Set<ServerResponse>>();

  constructor(readonly limit: number) {}

  /** Counts an answer of `bytes` about to be written on `res` until it is handed off or its connection ends. */
  hold(res: ServerResponse, bytes: number): void {
    // The request's socket is the connection's, also for an answer queued behind another one (res.socket is set
    // only when its turn comes). Such an answer gets neither 'finish' nor 'close' when the connection ends (Node
    // 20): freed with the connection instead, or 20 clients pipelining 5,000 requests each and leaving kept
    // 130 MiB for good, until the node ran out of memory.
    const socket = res.req.socket;
    if (socket.destroyed) return; // nothing of it will be written
    for (const [oldest] of this.unsent) {
      if (this.used + bytes <= this.limit) break;
      this.free(oldest);
      oldest.destroy();
    }
    this.unsent.set(res, bytes);
    this.used += bytes;
    let answers = this.bySocket.get(socket);
    if (answers === undefined) {
      const mine = new Set<ServerResponse>();
      this.bySocket.set(socket, mine);
      socket.once('close', () => {
        for (const r of mine) this.free(r);
        this.bySocket.delete(socket);
      });
      answers = mine;
    }
    answers.add(res);
    const free = (): void => this.free(res);
    res.once('finish', free);
    res.once('close', free);
  }

  /** Bytes counted now (for tests and metrics). */
  get bytes(): number {
    return this.used;
  }

  private free(res: ServerResponse): void {
    const bytes = this.unsent.get(res);
    if (bytes === undefined) return;
    this.used -= bytes;
    this.unsent.delete(res);
    this.bySocket.get(res.req.socket)?.delete(res);
  }
}

/** Writes a JSON answer, counted against `replies` (every answer is, errors too: they may quote what they refused). */
export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string>, replies: ReplyBudget): void {
  const body = toJson(value);
  const bytes = Buffer.byteLength(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': bytes, 'cache-control': 'no-store', ...headers });
  replies.hold(res, bytes);
  res.end(body);
}

/** A string field of a JSON body, or undefined; 400 when present with another type. */
export function optString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new HttpError(400, `field '${key}' must be a string`);
  return v;
}

export function needString(body: Record<string, unknown>, key: string): string {
  const v = optString(body, key);
  if (v === undefined || v === '') throw new HttpError(400, `field '${key}' is required (a non-empty string)`);
  return v;
}
