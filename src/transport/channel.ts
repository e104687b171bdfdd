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
  /** Closes the connection; idempotent. */
  close(): void;
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
