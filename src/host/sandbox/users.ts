/**
 * Resolving the account VM processes run as when the host is root. Read from /etc/passwd (no dependency, no
 * NSS): a dedicated local account is what an operator should configure, and the default `nobody` is local.
 */
import { readFileSync } from 'node:fs';

export interface VmUser {
  uid: number;
  gid: number;
  /** For messages: the name the operator gave, or the ids. */
  label: string;
}

/** A user name or explicit ids; throws an Error naming what to fix when the name is unknown. */
export function resolveVmUser(user: string | { uid: number; gid: number }): VmUser {
  if (typeof user !== 'string') {
    if (!Number.isInteger(user.uid) || !Number.isInteger(user.gid) || user.uid < 0 || user.gid < 0) {
      throw new Error(`the VM user must have non-negative integer uid and gid, got ${JSON.stringify(user)}`);
    }
    return { uid: user.uid, gid: user.gid, label: `uid ${user.uid} gid ${user.gid}` };
  }
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    // no passwd file: only explicit ids work
  }
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === user && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]), label: `${user} (uid ${f[2]} gid ${f[3]})` };
  }
  throw new Error(`the VM user '${user}' does not exist in /etc/passwd: create it (useradd --system --no-create-home ${user}) or configure { uid, gid }`);
}
