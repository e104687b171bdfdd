/**
 * Opens the VM's channel to the host, choosing the implementation: the native addon when it is built
 * (lowest latency, read timeouts), else the pure-JS blocking-fd channel.
 */
import { HostlinkError } from '../errors.js';
import type { HostAddress } from './address.js';
import type { HostChannel } from './channel.js';
import { connectJs, jsChannelUnavailableReason } from './js-channel.js';
import { NATIVE_ADDON_PATH, connectNative, nativeAddonStatus } from './native-channel.js';

export type ChannelImpl = 'auto' | 'native' | 'js';

export interface ConnectHostOptions {
  /** Largest response accepted; default MAX_FRAME_BYTES. */
  maxFrameBytes?: number;
  /** Default 'auto': native when available, else js. */
  impl?: ChannelImpl;
}

/** Connect failures throw HostlinkError('channel_closed', 'could not connect to host at ADDR: ...'). */
export async function connectHost(address: HostAddress, options: ConnectHostOptions = {}): Promise<HostChannel> {
  const impl = options.impl ?? 'auto';
  const opts = options.maxFrameBytes === undefined ? {} : { maxFrameBytes: options.maxFrameBytes };
  if (impl !== 'js') {
    const channel = connectNative(address, opts);
    if (channel) return channel;
    if (impl === 'native') {
      throw new HostlinkError('usage', `the native host channel is unavailable: ${nativeAddonStatus().reason}`);
    }
  }
  return connectJs(address, opts);
}

export interface ChannelInfo {
  /** What connectHost(..., { impl: 'auto' }) will use. */
  auto: 'native' | 'js';
  native: { available: boolean; path: string; reason?: string };
  js: { available: boolean; reason?: string };
}

/** For diagnostics (`hostlink doctor`, bench headers): which implementations work here and why not. */
export function channelInfo(): ChannelInfo {
  const n = nativeAddonStatus();
  const jsReason = jsChannelUnavailableReason();
  return {
    auto: n.addon ? 'native' : 'js',
    native: n.addon ? { available: true, path: NATIVE_ADDON_PATH } : { available: false, path: NATIVE_ADDON_PATH, reason: n.reason },
    js: jsReason ? { available: false, reason: jsReason } : { available: true },
  };
}
