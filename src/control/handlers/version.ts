/** get-vsock-protocol (the channel's own version) and get-hostos-version (from configuration or a version file). */
import { readFile } from 'node:fs/promises';
import { VSOCK_PROTOCOL_VERSION, type Payload } from '../wire.js';
import type { HandlerContext } from './context.js';

export async function getVsockProtocol(): Promise<Payload> {
  return { kind: 'HostOSVsockVersion', version: { ...VSOCK_PROTOCOL_VERSION } };
}

export async function getHostosVersion(_c: unknown, ctx: HandlerContext): Promise<Payload> {
  const h = ctx.config.handlers['get-hostos-version'];
  if (h.version !== undefined) return { kind: 'HostOSVersion', version: h.version };
  if (h.versionFile === undefined) {
    throw new Error("the host has no HostOS version configured (set handlers.get-hostos-version.version or .versionFile)");
  }
  let text: string;
  try {
    text = await readFile(h.versionFile, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the HostOS version file ${h.versionFile}: ${(e as Error).message}`);
  }
  const version = text.trim();
  if (version === '') throw new Error(`the HostOS version file ${h.versionFile} is empty`);
  return { kind: 'HostOSVersion', version };
}
