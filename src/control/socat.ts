/**
 * AF_VSOCK through socat. Node's `net` has no vsock (and cannot adopt a vsock fd), so vsock connections are made
 * by socat (Debian package `socat`, >= 1.7.4 for VSOCK-CONNECT / VSOCK-LISTEN), which we drive over pipes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { HostlinkError } from '../errors.js';

export const SOCAT_INSTALL_HINT =
  'vsock needs socat >= 1.7.4 (Debian/Ubuntu: apt-get install socat); or use a unix:// or HOST:PORT address';

/** Spawns socat; rejects with a clear message when it is missing or starts badly. */
export function spawnSocat(socatPath: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
  return spawn(socatPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
}

/** The error for a socat that could not be started (ENOENT and friends). */
export function socatStartError(socatPath: string, err: NodeJS.ErrnoException): HostlinkError {
  if (err.code === 'ENOENT') {
    return new HostlinkError('channel_closed', `cannot use vsock: '${socatPath}' was not found. ${SOCAT_INSTALL_HINT}`);
  }
  return new HostlinkError('channel_closed', `cannot start ${socatPath}: ${err.message}. ${SOCAT_INSTALL_HINT}`);
}

/** socat's error lines (`... socat[pid] E message`) reduced to their messages. */
export function socatErrors(stderr: string): string[] {
  const out: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /socat\[\d+\] [EF] (.*)$/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}
