/**
 * The upgrade staging directory: the only place the agent writes images and the place the installer reads
 * them from. The installed bytes must be exactly the bytes whose hash was checked, so nobody but root and the
 * agent's user may be able to change anything there between the check and the install:
 *
 * - the path is resolved one component at a time, from `/`, and every object met on the way is checked as it
 *   is met: each directory is owned by root or the agent's user and not writable by others unless sticky (as
 *   /tmp), each symbolic link is owned by root or the agent's user (it lies in a directory already checked,
 *   so no one else can replace it), and the leaf is a directory of the agent's user with mode 0700, not a
 *   symbolic link. Missing directories are created (0700) in directories already checked;
 * - the real path that resolution ends in is what is used. Because every directory and link on the way is
 *   one only root or the agent's user can change, the path keeps resolving to the same directory: checking
 *   one resolution and using another (lstat through the configured path, then realpath) let another user's
 *   symbolic link pass, or be flipped in between so that the agent staged into that user's directory;
 * - each download goes to a fresh file created with O_CREAT|O_EXCL|O_NOFOLLOW (never an existing file or a
 *   link someone planted) and hashed while the agent writes it through its own descriptor;
 * - files the agent did not write in this process are deleted, never reused.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, rm, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';

const MODE_BITS = 0o7777;
/** As the kernel's limit on links followed in one lookup (ELOOP). */
const MAX_LINKS = 40;

function uid(): number {
  return process.getuid?.() ?? 0;
}

function trusted(owner: number): boolean {
  return owner === 0 || owner === uid();
}

function problem(dir: string, what: string): Error {
  return new Error(
    `the upgrade staging directory ${dir} ${what}: it must be a directory owned by the agent's user with mode 0700 that only root and that user can replace; fix it or set handlers.upgrade.stagingDir`,
  );
}

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/**
 * Creates (when missing) and checks the staging directory; returns its real path, which only root and the
 * agent's user can make resolve elsewhere. Throws naming the problem.
 */
export async function prepareStagingDir(dir: string): Promise<string> {
  // Components still to visit; a link's target is put in front of the rest.
  const todo = resolve(dir).split('/').filter((c) => c !== '');
  if (todo.length === 0) throw problem(dir, 'is /');
  let at = '/';
  const top = await lstat(at);
  if (!trusted(top.uid) || othersMayWrite(top.mode)) throw problem(dir, `is inside /, which ${othersMayWrite(top.mode) ? 'others may write to' : `belongs to uid ${top.uid}`}`);
  let links = 0;
  while (todo.length > 0) {
    const name = todo.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      // `at` is a real path (no link in it), so its parent is the directory `..` names, and was checked.
      at = dirname(at);
      continue;
    }
    // A link's target goes in front of what follows it, so the configured last component stays last (the
    // path is normalised: it ends in a name, not in `.` or `..`).
    const last = todo.length === 0;
    const next = join(at, name);
    let st = await lstat(next).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw problem(dir, `cannot be checked: ${next} (${errno(e)})`);
    });
    if (st === undefined) {
      // In a directory already checked; if someone else creates it first, the check below sees whose it is.
      await mkdir(next, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw problem(dir, `cannot be created (${errno(e)})`);
      });
      st = await lstat(next);
    }
    if (st.isSymbolicLink()) {
      if (last) throw problem(dir, 'is a symbolic link');
      if (!trusted(st.uid)) throw problem(dir, `goes through the symbolic link ${next}, which belongs to uid ${st.uid}`);
      if (++links > MAX_LINKS) throw problem(dir, `goes through more than ${MAX_LINKS} symbolic links`);
      const target = await readlink(next);
      if (target.startsWith('/')) at = '/';
      todo.unshift(...target.split('/').filter((c) => c !== ''));
      continue;
    }
    if (!st.isDirectory()) throw problem(dir, last ? 'is not a directory' : `is inside ${next}, which is not a directory`);
    if (last) {
      if (st.uid !== uid()) throw problem(dir, `is owned by uid ${st.uid}, not the agent's uid ${uid()}`);
      if ((st.mode & 0o077) !== 0) throw problem(dir, `has mode 0${(st.mode & MODE_BITS).toString(8)}, which lets others in`);
    } else if (!trusted(st.uid) || othersMayWrite(st.mode)) {
      throw problem(dir, `is inside ${next}, which ${othersMayWrite(st.mode) ? 'others may write to' : `belongs to uid ${st.uid}`}`);
    }
    at = next;
  }
  return at;
}

/** Others can add, rename or remove its entries: writable by group or others, and not sticky (as /tmp is). */
function othersMayWrite(mode: number): boolean {
  return (mode & 0o022) !== 0 && (mode & 0o1000) === 0;
}

/** Deletes everything in the staging directory except `keep` (a file this process wrote and verified). */
export async function clearStagingDir(dir: string, keep?: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if (path === keep) continue;
    await rm(path, { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** A new, empty file only the agent can write: never an existing file, never through a link. */
export async function createStagingFile(dir: string): Promise<{ path: string; handle: FileHandle }> {
  const path = join(dir, `upgrade-${randomBytes(12).toString('hex')}.img`);
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  return { path, handle };
}
