/**
 * One process owns a data directory. LMDB lets several processes open the same environment, but two Hosts
 * applying calls on one directory overwrite each other's state roots and lose committed writes, so Host.open
 * takes an exclusive lock first: the file `<dataDir>/hostlink.lock`, holding "pid nonce", created atomically
 * (written under a private name, then hard-linked into place, which fails if the lock exists). A second opener,
 * in this process or another, gets an error naming the holder's pid. A lock left by a process that no longer
 * runs (or whose pid now belongs to a process of another uid than the lock's owner) is taken over: it is renamed
 * away (only one taker wins the rename), checked to be the dead holder's, and then replaced the same atomic way. Several processes share one node by talking to the one process that
 * holds its Host (docs/state.md, "One process per data directory").
 *
 * The directory holds the node's state, private storage and blobs, so before anything is written there it must
 * be this user's alone: created with mode 0700 when missing, owned by this process's uid, writable by nobody
 * else, and inside directories that only root or this user can rename (checkDataDirOwner). Otherwise another
 * local account could have made it first (a predictable path in /tmp), plant links where LMDB creates its
 * files, or swap the files under a running node.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, lstatSync, mkdirSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { dirname, join, parse, resolve } from 'node:path';
import { HostlinkError } from '../../errors.js';

export const LOCK_FILE = 'hostlink.lock';
/** The data directory's mode when the node creates it: nobody else may list or enter it. */
export const DATA_DIR_MODE = 0o700;
/** The mode of every file the node creates in its data directory (LMDB's files, the lock, blobs). */
export const DATA_FILE_MODE = 0o600;

const code = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;

/** The error for a data directory this process cannot use because `p` (it or a folder on its path) refused `e`. */
export function unusableDataDir(abs: string, p: string, e: unknown): HostlinkError {
  const c = code(e) ?? String(e);
  const fix = c === 'EACCES' || c === 'EPERM' ? ': permission denied; run as the user that owns the node\'s data, or give this user access' : '';
  return new HostlinkError('usage', `data directory ${abs}: cannot use ${p} (${c})${fix}`);
}

/**
 * Creates `dir` and its missing parents one level at a time (fs.mkdirSync's recursive mode never returns for
 * some paths under /proc), with an error naming the path that cannot be a directory. `dir` itself is created
 * with DATA_DIR_MODE.
 */
export function ensureDirectory(dir: string): void {
  const abs = resolve(dir);
  const missing: string[] = [];
  for (let p = abs; ; p = dirname(p)) {
    try {
      if (!statSync(p).isDirectory()) throw new HostlinkError('usage', `data directory ${abs}: ${p} exists and is not a directory`);
      break;
    } catch (e) {
      if (e instanceof HostlinkError) throw e;
      if (code(e) !== 'ENOENT') throw unusableDataDir(abs, p, e);
      if (p === parse(p).root) throw new HostlinkError('usage', `data directory ${abs}: ${p} does not exist`);
      missing.push(p);
    }
  }
  for (const p of missing.reverse()) {
    try {
      mkdirSync(p, p === abs ? { mode: DATA_DIR_MODE } : {});
    } catch (e) {
      if (code(e) !== 'EEXIST') throw new HostlinkError('usage', `data directory ${abs}: cannot create ${p} (${code(e) ?? String(e)})`);
    }
  }
}

/** True when a process with this pid exists (EPERM: it exists, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return code(e) === 'EPERM';
  }
}

/** The effective uid of a running process from /proc; undefined when this system has no /proc to ask. */
function processUid(pid: number): number | 'gone' | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch (e) {
    if (code(e) !== 'ENOENT') return undefined;
    return existsSync('/proc/self/status') ? 'gone' : undefined;
  }
  const m = /^Uid:\s+\d+\s+(\d+)/m.exec(status);
  return m ? Number(m[1]) : undefined;
}

/**
 * Whether the lock's holder still runs: a process with its pid exists and runs as the lock file's owner (the
 * holder created the file). A process of another uid cannot be the holder, so another local account that gets
 * a dead node's pid (forking until the pid comes round) does not keep the node's directory locked.
 */
function holderRuns(pid: number, lockPath: string): boolean {
  let owner: number;
  try {
    owner = statSync(lockPath).uid;
  } catch {
    return pidAlive(pid); // replaced meanwhile: the caller's next round reads the new one
  }
  return runsAs(pid, owner);
}

/**
 * Whether a process with this pid runs as `uid`: what a file named after its creator's pid (a lock, a socket or
 * staging directory) needs to still have its creator. A live process of another uid is not the creator: another
 * local account that forks until it gets a dead node's pid must not keep its files in place. Without /proc, any
 * live process counts.
 */
export function runsAs(pid: number, uid: number): boolean {
  if (!pidAlive(pid)) return false;
  const actual = processUid(pid);
  return actual === undefined || (actual !== 'gone' && actual === uid);
}

function holderPid(text: string): number | undefined {
  const pid = Number(text.split(' ')[0]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (code(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** The data directory is locked by a running process (a HostlinkError 'usage' that callers may wait on). */
export class DataDirInUse extends HostlinkError {
  constructor(
    message: string,
    readonly holderPid: number,
  ) {
    super('usage', message);
  }
}

export interface DataDirLock {
  readonly path: string;
  release(): void;
}

/** Why the lock file cannot be written in `dir`, and what to do about it. */
function notWritable(dir: string, e: unknown): string {
  switch (code(e)) {
    case 'ENOSPC':
    case 'EDQUOT':
      return `cannot lock data directory ${dir}: no space left on its filesystem (${code(e)}): free some space there`;
    case 'EROFS':
      return `cannot lock data directory ${dir}: its filesystem is read-only (EROFS): remount it read-write, or copy the directory to a writable place and use that --data-dir`;
    default:
      return `data directory ${dir} is not writable (${code(e) ?? String(e)}): check its permissions, or choose another --data-dir`;
  }
}

/** Writable by an account other than this process's user (and root): mode bits and the owning group. */
function othersMayWrite(st: Stats, egid: number): boolean {
  return (st.mode & 0o002) !== 0 || ((st.mode & 0o020) !== 0 && st.gid !== egid && st.gid !== 0);
}

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8)}`;

/**
 * Refuses a path to the data directory that passes through a symbolic link of another account: the link is
 * followed, so its owner chooses where the node's files go (and can point it elsewhere later). Run before
 * anything is created on that path.
 */
function checkDataDirLinks(dir: string): void {
  const euid = process.geteuid?.();
  if (euid === undefined) return;
  const abs = resolve(dir);
  for (let p = abs; p !== dirname(p); p = dirname(p)) {
    let l: Stats;
    try {
      l = lstatSync(p);
    } catch {
      continue; // not there yet
    }
    if (l.isSymbolicLink() && l.uid !== 0 && l.uid !== euid) {
      throw new HostlinkError('usage', `data directory ${abs} is reached through the symbolic link ${p} of uid ${l.uid}: that account chooses where the node's state goes; use a path without links of other accounts, or choose another --data-dir`);
    }
  }
}

/**
 * Refuses a data directory another local account controls: one it owns or may write to, or one inside a
 * directory it owns or may write to without the sticky bit (it could rename the data directory away and put
 * its own in place). Checked on the resolved path, so a symbolic link to the directory is judged by its target.
 */
export function checkDataDirOwner(dir: string): void {
  checkDataDirLinks(dir);
  const euid = process.geteuid?.();
  const egid = process.getegid?.();
  if (euid === undefined || egid === undefined) return; // no POSIX owners (Windows)
  const abs = resolve(dir);
  const refuse = (what: string, fix: string): never => {
    throw new HostlinkError('usage', `data directory ${abs} ${what}: another local account could read or replace the node's state there; ${fix}, or choose another --data-dir`);
  };
  let real: string;
  let st: Stats;
  try {
    real = realpathSync(abs);
    st = statSync(real);
  } catch (e) {
    throw new HostlinkError('usage', `data directory ${abs} cannot be resolved (${code(e) ?? String(e)}): check the path, or choose another --data-dir`);
  }
  if (st.uid !== euid) refuse(`belongs to uid ${st.uid}, not to this process's uid ${euid}`, `chown it to uid ${euid}`);
  if (othersMayWrite(st, egid)) refuse(`is writable by others (mode ${octal(st.mode)}, group ${st.gid})`, `run chmod go-w ${real}`);
  for (let d = dirname(real); ; d = dirname(d)) {
    const a = statSync(d);
    if (a.uid !== 0 && a.uid !== euid) refuse(`is inside ${d}, which belongs to uid ${a.uid}`, 'move it under a directory of root or of this user');
    if (othersMayWrite(a, egid) && (a.mode & 0o1000) === 0) {
      refuse(`is inside ${d}, which others may write to (mode ${octal(a.mode)}, group ${a.gid}) without the sticky bit`, 'move it under a directory only root or this user can change');
    }
    if (d === dirname(d)) break;
  }
}

/**
 * Refuses a folder inside the data directory (blobs, their staging) that is a link, belongs to another account
 * or is writable by others: the data directory's own checks do not reach what is already inside it (a folder left
 * from when it was open to others), and its owner could replace the node's files there. Absent: nothing to check.
 */
export function checkOwnSubdirectory(path: string): void {
  const euid = process.geteuid?.();
  const egid = process.getegid?.();
  if (euid === undefined || egid === undefined) return;
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    if (code(e) === 'ENOENT') return;
    throw e;
  }
  const what = st.isSymbolicLink()
    ? `is a symbolic link of uid ${st.uid}`
    : !st.isDirectory()
      ? 'is not a directory'
      : st.uid !== euid
        ? `belongs to uid ${st.uid}, not to this process's uid ${euid}`
        : othersMayWrite(st, egid)
          ? `is writable by others (mode ${octal(st.mode)}, group ${st.gid})`
          : undefined;
  if (what !== undefined) {
    throw new HostlinkError('usage', `${path} ${what}: another local account could replace the node's files there; remove it (the node creates it again) or choose another --data-dir`);
  }
}

/** Takes the data directory's lock or throws HostlinkError('usage') naming the process that holds it. */
export function lockDataDir(dir: string): DataDirLock {
  checkDataDirLinks(dir);
  ensureDirectory(dir);
  checkDataDirOwner(dir);
  const path = join(resolve(dir), LOCK_FILE);
  const token = `${process.pid} ${randomBytes(8).toString('hex')}\n`;
  const staging = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(staging, token, { flag: 'wx', mode: DATA_FILE_MODE });
  } catch (e) {
    // 'wx' may have created the file before the write failed (a full disk): leave nothing behind.
    try {
      unlinkSync(staging);
    } catch {
      // never created
    }
    throw new HostlinkError('usage', notWritable(dir, e));
  }
  try {
    // Three rounds suffice: each failed round removed one dead holder's lock.
    for (let round = 0; round < 3; round++) {
      try {
        linkSync(staging, path);
        return {
          path,
          release() {
            if (readOrUndefined(path) === token) unlinkSync(path);
          },
        };
      } catch (e) {
        if (code(e) !== 'EEXIST') throw new HostlinkError('usage', `cannot lock data directory ${dir} (${code(e) ?? String(e)})`);
      }
      const held = readOrUndefined(path);
      if (held === undefined) continue; // released meanwhile
      const pid = holderPid(held);
      if (pid !== undefined && holderRuns(pid, path)) {
        throw new DataDirInUse(
          `data directory ${dir} is in use by process ${pid}${pid === process.pid ? ' (this process: another Host is open on it)' : ''}: ` +
            `one process owns a data directory; share its Host, or remove ${path} if process ${pid} is not Hostlink`,
          pid,
        );
      }
      // The holder is gone: move its lock aside. If another opener replaced it in between, we moved a live
      // lock: put it back (link fails if a third opener got in first, which then holds the directory).
      const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
      try {
        renameSync(path, aside);
      } catch (e) {
        if (code(e) === 'ENOENT') continue; // another opener took it over first
        throw e;
      }
      if (readOrUndefined(aside) !== held) {
        try {
          linkSync(aside, path);
        } catch {
          // someone else holds it now; the next round reports them
        }
      }
      unlinkSync(aside);
    }
    throw new HostlinkError('usage', `cannot lock data directory ${dir}: its lock file ${path} keeps changing; is another Hostlink starting?`);
  } finally {
    unlinkSync(staging);
  }
}
