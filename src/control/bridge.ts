/**
 * The agent's vsock listener: `socat VSOCK-LISTEN:PORT,fork EXEC:bridge.sh`. For every vsock connection socat
 * forks and runs the bridge script with SOCAT_PEERADDR set to the peer's CID as the kernel reported it at
 * accept(). The script connects to the agent's private unix socket and sends one header line,
 * `HOSTLINK-PEER-CID <cid>\n`, before the guest's bytes: that is how the agent learns the real CID and can
 * refuse a request that claims another one. The directory is 0700, so only this user can reach the socket
 * and forge a header.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostlinkError } from '../errors.js';

export const PEER_HEADER = 'HOSTLINK-PEER-CID';
export const MAX_PEER_HEADER = 64;

const SCRIPT = `#!/bin/sh
# Started by socat for one vsock connection (see src/control/bridge.ts): tell the agent the peer's real CID,
# then relay the guest's bytes; the agent's reply comes back through the same socat.
{ printf '${PEER_HEADER} %s\\n' "$SOCAT_PEERADDR"; exec cat; } | exec "$HOSTLINK_SOCAT" -t "$HOSTLINK_BRIDGE_LINGER" - "UNIX-CONNECT:$HOSTLINK_BRIDGE_SOCK"
`;

export interface BridgeFiles {
  dir: string;
  socketPath: string;
  scriptPath: string;
  /** Environment for socat (and so for the script) besides SOCAT_PEERADDR, which socat sets. */
  env: Record<string, string>;
}

export async function createBridgeFiles(socatPath: string, lingerSeconds: number): Promise<BridgeFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'hostlink-agent-'));
  await chmod(dir, 0o700);
  // socat reads these paths inside its own address syntax, where ':', ',' and spaces are special.
  if (/[\s:,!'"\\]/.test(dir)) {
    await rm(dir, { recursive: true, force: true });
    throw new HostlinkError('usage', `cannot bridge vsock: the temporary directory ${dir} contains characters socat cannot take; set TMPDIR to a plain path`);
  }
  const socketPath = join(dir, 'bridge.sock');
  const scriptPath = join(dir, 'bridge.sh');
  await writeFile(scriptPath, SCRIPT, { mode: 0o700 });
  return {
    dir,
    socketPath,
    scriptPath,
    env: {
      HOSTLINK_BRIDGE_SOCK: socketPath,
      HOSTLINK_BRIDGE_LINGER: String(Math.max(1, Math.ceil(lingerSeconds))),
      HOSTLINK_SOCAT: socatPath,
    },
  };
}

/** Parses the header line; undefined when it is not one. */
export function parsePeerHeader(line: string): number | undefined {
  const m = new RegExp(`^${PEER_HEADER} (\\d{1,10})$`).exec(line);
  if (!m || Number(m[1]) > 0xffff_ffff) return undefined;
  return Number(m[1]);
}

/**
 * socat arguments for listening on a vsock port and running the bridge per connection. `maxChildren` bounds the
 * connections bridged at once (socat stops accepting past it): each holds four processes (the forked socat, sh,
 * cat and the inner socat) for as long as the guest keeps its end open, up to the linger after the agent closed
 * its side; without the bound, 80 idle guest connections held 320 processes for minutes.
 */
export function listenArgs(port: number, files: BridgeFiles, maxChildren: number): string[] {
  return ['-d', '-d', '-t', files.env['HOSTLINK_BRIDGE_LINGER']!, `VSOCK-LISTEN:${port},fork,reuseaddr,max-children=${maxChildren}`, `EXEC:${files.scriptPath}`];
}
