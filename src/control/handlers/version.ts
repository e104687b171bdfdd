/** get-vsock-protocol (the channel's own version) and get-hostos-version (from configuration or a version file). */
import { open } from 'node:fs/promises';
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
  const version = (await readVersionFile(h.versionFile)).trim();
  if (version === '') throw new Error(`the HostOS version file ${h.versionFile} is empty`);
  return { kind: 'HostOSVersion', version };
}

/** A version is a short line: more than this is not a version file (`/dev/zero` would never end). */
const MAX_VERSION_FILE_BYTES = 4096;

/** Reads the version file, at most MAX_VERSION_FILE_BYTES of it, without blocking the agent's event loop. */
async function readVersionFile(path: string): Promise<string> {
  let file;
  try {
    file = await open(path, 'r');
  } catch (e) {
    throw new Error(`cannot read the HostOS version file ${path}: ${(e as Error).message}`);
  }
  try {
    const buf = Buffer.alloc(MAX_VERSION_FILE_BYTES + 1);
    let total = 0;
    while (total < buf.length) {
      const { bytesRead } = await file.read(buf, total, buf.length - total, null);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
    if (total > MAX_VERSION_FILE_BYTES) throw new Error(`the HostOS version file ${path} holds more than ${MAX_VERSION_FILE_BYTES} bytes: it should hold one version line`);
    return buf.subarray(0, total).toString('utf8');
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('the HostOS version file')) throw e;
    throw new Error(`cannot read the HostOS version file ${path}: ${(e as Error).message}`);
  } finally {
    await file.close();
  }
}
