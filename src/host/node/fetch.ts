/**
 * The host side of the guest's fetch. Blocked unless the host's policy lists the URL's origin; an allowed
 * request is made by the host with bounds that keep it predictable: http(s) only, a fixed method set, no
 * redirects followed, no cookies or response headers passed back, a time limit over the whole exchange and a
 * size limit on the response body. Only a 2xx answer succeeds. A fetch is still outside input: contracts
 * that need replayable results should store what they fetched.
 */
import { HostlinkError } from '../../errors.js';
import { MAX_FETCH_RESPONSE_BYTES } from '../../protocol/node-limits.js';
import type { FetchAnswer, FetchRequest } from './backend.js';

export interface FetchPolicy {
  /** Origins the guest may reach, e.g. `http://127.0.0.1:8080` (scheme, host and port must match). */
  allow: readonly string[];
  /** Limit on the whole request, response body included (default 5000 ms). */
  timeoutMs?: number;
  /**
   * Largest response body accepted (default 1 MiB); a larger one fails the fetch. At most
   * MAX_FETCH_RESPONSE_BYTES, what one answer frame carries: Host.open refuses more.
   */
  maxResponseBytes?: number;
}

export const DEFAULT_FETCH_TIMEOUT_MS = 5000;
export const DEFAULT_FETCH_MAX_RESPONSE_BYTES = 1024 * 1024;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

export class FetchGate {
  private readonly origins: Set<string>;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;

  constructor(policy: FetchPolicy | undefined) {
    this.origins = new Set(
      (policy?.allow ?? []).map((o) => {
        let url: URL;
        try {
          url = new URL(o);
        } catch {
          throw new HostlinkError('usage', `fetch policy: ${JSON.stringify(o)} is not an origin such as http://127.0.0.1:8080`);
        }
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HostlinkError('usage', `fetch policy: ${o} is not http or https`);
        return url.origin;
      }),
    );
    this.timeoutMs = policy?.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
    const most = policy?.maxResponseBytes ?? DEFAULT_FETCH_MAX_RESPONSE_BYTES;
    // Refused, not clamped: a body over one frame could never reach the guest (the host answered limit_exceeded
    // and the call ended internal_error), and an operator who asked for more should learn it at once.
    if (!Number.isSafeInteger(most) || most < 0 || most > MAX_FETCH_RESPONSE_BYTES) {
      throw new HostlinkError('usage', `fetch policy: maxResponseBytes ${most} is not a whole number of bytes from 0 to ${MAX_FETCH_RESPONSE_BYTES}, the most one answer frame carries`);
    }
    this.maxResponseBytes = most;
  }

  /** Why a request may not be made, or undefined when the policy allows it. Decided without waiting. */
  blocked(request: FetchRequest): string | undefined {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return `fetch blocked: ${JSON.stringify(request.url.slice(0, 200))} is not a URL`;
    }
    if (!this.origins.has(url.origin)) return `fetch blocked: the host's policy does not allow ${url.origin}`;
    if (!METHODS.has(request.method)) return `fetch blocked: method ${JSON.stringify(request.method)} is not one of ${[...METHODS].join(', ')}`;
    if ((request.method === 'GET' || request.method === 'HEAD') && request.body.length > 0) return `fetch blocked: a ${request.method} request has no body`;
    return undefined;
  }

  /**
   * Answers at once when blocked; otherwise performs the request. Never rejects. `affordable` is the largest body
   * the call's gas pays to receive: a longer one is neither read to its end nor kept (`unaffordable`).
   */
  fetch(request: FetchRequest, affordable: number): FetchAnswer | Promise<FetchAnswer> {
    const reason = this.blocked(request);
    if (reason !== undefined) return { succeeded: false, reason };
    return this.perform(request, affordable);
  }

  private async perform(request: FetchRequest, affordable: number): Promise<FetchAnswer> {
    // The body is read up to the smaller bound: the policy's, or what the gas pays for. Passing the gas's bound
    // is `unaffordable` (the VM runs out of gas, as reading it would have made it), checked on the declared
    // length before any byte and then on each chunk, so the host neither downloads nor buffers a body the call
    // cannot pay for (a 1 MiB body cost ~5 ms of host CPU for 1,000 gas before). Which answer it is depends on
    // the two bounds and the body's length only, never on how the body was cut into chunks.
    const within = Math.min(this.maxResponseBytes, affordable);
    const tooLong = (): FetchAnswer =>
      affordable < this.maxResponseBytes ? { unaffordable: true } : { succeeded: false, reason: `fetch failed: the response is larger than ${this.maxResponseBytes} bytes` };
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      const response = await fetch(request.url, {
        method: request.method,
        headers: request.headers,
        ...(request.body.length > 0 ? { body: request.body } : {}),
        redirect: 'manual',
        signal,
      });
      if (response.status < 200 || response.status > 299) {
        await response.body?.cancel();
        return { succeeded: false, reason: `fetch failed: HTTP status ${response.status}` };
      }
      // A HEAD answer declares the length of a body it does not have.
      const declared = request.method === 'HEAD' ? NaN : Number(response.headers.get('content-length') ?? NaN);
      if (declared > within) {
        await response.body?.cancel();
        return tooLong();
      }
      const parts: Uint8Array[] = [];
      let total = 0;
      if (response.body !== null) {
        const reader = response.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          total += value.length;
          if (total > within) {
            await reader.cancel();
            return tooLong();
          }
          parts.push(value);
        }
      }
      return { succeeded: true, body: new Uint8Array(Buffer.concat(parts)) };
    } catch (e) {
      if (signal.aborted) return { succeeded: false, reason: `fetch failed: no complete answer within ${this.timeoutMs} ms` };
      const cause = (e as { cause?: { message?: string } }).cause?.message;
      return { succeeded: false, reason: `fetch failed: ${(e as Error).message}${cause ? ` (${cause})` : ''}` };
    }
  }
}
