/**
 * The VM's typed view of the host: one method per protocol request, over a blocking HostChannel.
 * Non-ok statuses other than `absent` become HostlinkErrors, because the VM cannot continue without an answer.
 */
import { HostlinkError } from '../errors.js';
import type { MethodName } from '../protocol/generated.js';
import { decodeResponse, encodeRequest, type RequestOf, type Response, type ResponseOf } from '../protocol/messages.js';
import type { HostChannel } from '../transport/channel.js';

export class HostClient {
  constructor(readonly channel: HostChannel) {}

  /** Sends one request and decodes the answer. */
  call<M extends MethodName>(method: M, fields: RequestOf<M>): Response<M> {
    return decodeResponse(method, this.channel.request(encodeRequest(method, fields)));
  }

  /** Like call, but `absent` becomes undefined and any other failure status throws. */
  fetch<M extends MethodName>(method: M, fields: RequestOf<M>): ResponseOf<M> | undefined {
    return fetched(method, this.call(method, fields));
  }

  /**
   * `call(first)` then `fetch(then)`, sent together: the host answers in order, so the second request need not
   * wait for the first answer. A pool VM hands in its result and asks for its next message this way (one round
   * trip per execution instead of two). A first answer other than ok throws before the second is looked at.
   */
  callThenFetch<A extends MethodName, B extends MethodName>(first: A, firstFields: RequestOf<A>, then: B, thenFields: RequestOf<B>): ResponseOf<B> | undefined {
    const [, b] = this.channel.requestPair(encodeRequest(first, firstFields), encodeRequest(then, thenFields), (a) => {
      const answer = decodeResponse(first, a);
      if (answer.status !== 'ok') throw statusError(first, answer);
    });
    return fetched(then, decodeResponse(then, b));
  }
}

function fetched<M extends MethodName>(method: M, r: Response<M>): ResponseOf<M> | undefined {
  if (r.status === 'ok') return r.fields as ResponseOf<M>;
  if (r.status === 'absent') return undefined;
  throw statusError(method, r);
}

export function statusError(method: string, r: { status: string; fields: object }): HostlinkError {
  const reason = 'reason' in r.fields ? `: ${String((r.fields as { reason: unknown }).reason)}` : '';
  return new HostlinkError('protocol', `host answered ${r.status} to ${method}${reason}`);
}
