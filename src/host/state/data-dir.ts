/**
 * One process owns a data directory. LMDB lets several processes open the same environment, but two Hosts
 * applying calls on one directory overwrite each other's state roots and lose committed writes, so Host.open
 * takes an exclusive lock first: the file `<dataDir>/hostlink.lock`, holding "pid nonce", created atomically
 * (written under a private name, then hard-linked into place, which fails if the lock exists). A second opener,
 * in this process or another, gets an error naming the holder's pid. A lock left by a process that no longer
 * runs is taken over: it is renamed away (only one taker wins the rename), checked to be the dead holder's,
 * and then replaced the same atomic way. Several processes share one node by talking to the one process that
 * holds its Host (docs/state.md, "One process per data directory").
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, parse, resolve } from 'node:path';
import { HostlinkError } from '../../errors.js';

export const LOCK_FILE = 'hostlink.lock';

const code = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;

/**
 * Creates `dir` and its missing parents one level at a time (fs.mkdirSync's recursive mode never returns for
 * some paths under /proc), with an error naming the path that cannot be a directory.
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
      if (code(e) !== 'ENOENT') throw new HostlinkError('usage', `data directory ${abs}: cannot use ${p} (${code(e) ?? String(e)})`);
      if (p === parse(p).root) throw new HostlinkError('usage', `data directory ${abs}: ${p} does not exist`);
      missing.push(p);
    }
  }
  for (const p of missing.reverse()) {
    try {
      mkdirSync(p);
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

/** Takes the data directory's lock or throws HostlinkError('usage') naming the process that holds it. */
export function lockDataDir(dir: string): DataDirLock {
  ensureDirectory(dir);
  const path = join(resolve(dir), LOCK_FILE);
  const token = `${process.pid} ${randomBytes(8).toString('hex')}\n`;
  const staging = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(staging, token, { flag: 'wx', mode: 0o644 });
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
      if (pid !== undefined && pidAlive(pid)) {
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
