/**
 * The VM's side of the host connection: one blocking request/response at a time. WebAssembly imports are
 * synchronous, so `request` must return the host's answer before the import returns; every implementation
 * (native addon, pure JS, in-process) hides how it blocks behind this interface.
 */
import { HostlinkError } from '../errors.js';

export type HostChannelKind = 'native' | 'js' | 'in-process';

export interface HostChannel {
  readonly kind: HostChannelKind;
  /**
   * Sends one frame body and blocks until the host's whole response frame has arrived; returns its body.
   * Throws HostlinkError: 'channel_closed' (EOF, reset, or the channel already failed or was closed),
   * 'protocol' (response above maxFrameBytes, bytes beyond the response), 'timeout' (native impl only).
   * After any error the channel is closed and every later call throws 'channel_closed'.
   */
  request(body: Uint8Array): Uint8Array;
  /**
   * Sends two frame bodies without waiting in between (one write when they fit the channel's buffer), then
   * blocks for both responses, in order. The host answers requests strictly in order, so this is `request`
   * twice minus one round trip; errors and closing as for `request`. `checkFirst` sees the first response as
   * soon as it arrives: what it throws is thrown (and the channel closed) without waiting for the second, so a
   * host that refuses the first request and hangs up is reported by its refusal, not as a lost connection.
   */
  requestPair(first: Uint8Array, second: Uint8Array, checkFirst?: (response: Uint8Array) => void): [Uint8Array, Uint8Array];
  /** Closes the connection; idempotent. */
  close(): void;
}

/**
 * `requestPair` for a channel that answers synchronously in-process (nothing to save by sending together):
 * the two requests in turn, with the same contract (a `checkFirst` failure closes the channel).
 */
export function requestInTurn(
  channel: HostChannel,
  first: Uint8Array,
  second: Uint8Array,
  checkFirst?: (response: Uint8Array) => void,
): [Uint8Array, Uint8Array] {
  const answer = channel.request(first);
  try {
    checkFirst?.(answer);
  } catch (e) {
    channel.close();
    throw e;
  }
  return [answer, channel.request(second)];
}

/** The error for "the host went away", shared so every implementation says it the same way. */
export function hostClosedError(detail?: string, cause?: unknown): HostlinkError {
  return new HostlinkError('channel_closed', `the host closed the connection${detail ? ` (${detail})` : ''}`, { cause });
}

/** The error for using a channel after close() or after an earlier failure. */
export function channelUnusableError(earlier: Error | undefined): HostlinkError {
  return new HostlinkError(
    'channel_closed',
    earlier ? `the host channel is unusable after an earlier error: ${earlier.message}` : 'the host channel was closed',
    { cause: earlier },
  );
}
