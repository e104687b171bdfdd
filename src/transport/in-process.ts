/**
 * A channel whose host is a function in the same process: for tests, and for embedding the VM runner
 * inside the host. Copies both ways so neither side can see the other's later buffer mutations, exactly
 * as with a socket, and applies the same size limit and error behaviour as the socket channels.
 */
import { HostlinkError } from '../errors.js';
import { frameTooLarge } from '../protocol/frame.js';
import { MAX_FRAME_BYTES } from '../protocol/generated.js';
import { type HostChannel, channelUnusableError, requestInTurn } from './channel.js';

export type SyncHostHandler = (body: Uint8Array) => Uint8Array;

export class InProcessChannel implements HostChannel {
  readonly kind = 'in-process' as const;
  private closed = false;
  private failure: Error | undefined;
  private readonly maxFrameBytes: number;

  constructor(
    private readonly handler: SyncHostHandler,
    options: { maxFrameBytes?: number } = {},
  ) {
    this.maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
  }

  /** Errors thrown by the handler propagate unchanged (non-HostlinkErrors become 'internal') and close the channel. */
  request(body: Uint8Array): Uint8Array {
    if (this.closed) throw channelUnusableError(this.failure);
    try {
      const response = this.handler(Uint8Array.prototype.slice.call(body));
      if (response.length > this.maxFrameBytes) throw frameTooLarge(response.length, this.maxFrameBytes);
      return Uint8Array.prototype.slice.call(response);
    } catch (err) {
      const e = err instanceof HostlinkError
        ? err
        : new HostlinkError('internal', `in-process host failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      this.failure = e;
      this.closed = true;
      throw e;
    }
  }

  requestPair(first: Uint8Array, second: Uint8Array, checkFirst?: (response: Uint8Array) => void): [Uint8Array, Uint8Array] {
    return requestInTurn(this, first, second, checkFirst);
  }

  close(): void {
    this.closed = true;
  }
}
