/**
 * The channel backed by native/hostlink_channel.c: blocking send/recv with poll() timeouts. Optional: built
 * at `npm install`; when it is missing the VM uses the pure-JS channel (js-channel.ts).
 */
import { MAX_FRAME_BYTES } from '../protocol/generated.js';
import { type HostAddress, formatAddress } from './address.js';
import { BlockingFrameChannel, connectError } from './blocking-channel.js';
import type { HostChannel } from './channel.js';
import { addonStatus, nativeArtifact, type AddonStatus } from '../native-addon.js';

/** The addon's exports (see native/hostlink_channel.c). A timeout < 0 means none. Errors carry errno `code`s. */
interface NativeAddon {
  connectUnix(path: string, timeoutMs: number): number;
  connectTcp(host: string, port: number, timeoutMs: number): number;
  write(fd: number, bytes: Uint8Array, offset: number, length: number, timeoutMs: number): void;
  read(fd: number, buf: Uint8Array, offset: number, length: number, min: number, timeoutMs: number): number;
  close(fd: number): void;
}

export interface NativeChannelOptions {
  maxFrameBytes?: number;
  /** Per read/write wait; a request that waits longer throws HostlinkError('timeout'). Default: none. */
  timeoutMs?: number;
  /** Default 10 000 ms. */
  connectTimeoutMs?: number;
}

export const NATIVE_ADDON_PATH = nativeArtifact('hostlink_channel.node');

/** Loads the addon once; the reason says why it is unavailable. */
export function nativeAddonStatus(): AddonStatus<NativeAddon> {
  return addonStatus<NativeAddon>(NATIVE_ADDON_PATH, 'native channel');
}

/** Connects synchronously (a local connect does not wait for the host's event loop); undefined when not built. */
export function connectNative(address: HostAddress, options: NativeChannelOptions = {}): HostChannel | undefined {
  const { addon } = nativeAddonStatus();
  if (!addon) return undefined;
  const timeout = options.timeoutMs ?? -1;
  const connectTimeout = options.connectTimeoutMs ?? 10_000;
  let fd: number;
  try {
    fd = address.kind === 'unix'
      ? addon.connectUnix(address.path, connectTimeout)
      : addon.connectTcp(address.host, address.port, connectTimeout);
  } catch (err) {
    throw connectError(formatAddress(address), err);
  }
  let open = true;
  const stream = {
    write: (bytes: Uint8Array, offset: number, length: number) => addon.write(fd, bytes, offset, length, timeout),
    read: (buf: Uint8Array, offset: number, length: number, min: number) => addon.read(fd, buf, offset, length, min, timeout),
    close: () => {
      if (open) addon.close(fd);
      open = false;
    },
  };
  return new BlockingFrameChannel('native', stream, options.maxFrameBytes ?? MAX_FRAME_BYTES, options.timeoutMs);
}
