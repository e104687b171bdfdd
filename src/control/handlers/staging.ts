/**
 * The upgrade staging directory: the only place the agent writes images and the place the installer reads
 * them from. The installed bytes must be exactly the bytes whose hash was checked, so nobody but the agent's
 * user may be able to change anything there between the check and the install:
 *
 * - the directory is the agent's (same uid), mode 0700, not a symbolic link, created when missing;
 * - every directory above it is owned by root or the agent's user and not writable by others unless sticky
 *   (as /tmp), so it cannot be renamed away and replaced;
 * - each download goes to a fresh file created with O_CREAT|O_EXCL|O_NOFOLLOW (never an existing file or a
 *   link someone planted) and hashed while the agent writes it through its own descriptor;
 * - files the agent did not write in this process are deleted, never reused.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rm, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';

const MODE_BITS = 0o7777;

function uid(): number {
  return process.getuid?.() ?? 0;
}

function problem(dir: string, what: string): Error {
  return new Error(
    `the upgrade staging directory ${dir} ${what}: it must be a directory owned by the agent's user with mode 0700 that only root and that user can replace; fix it or set handlers.upgrade.stagingDir`,
  );
}

/** Creates (when missing) and checks the staging directory; returns its real path. Throws naming the problem. */
export async function prepareStagingDir(dir: string): Promise<string> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw problem(dir, `cannot be created (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const st = await lstat(dir);
  if (st.isSymbolicLink()) throw problem(dir, 'is a symbolic link');
  if (!st.isDirectory()) throw problem(dir, 'is not a directory');
  if (st.uid !== uid()) throw problem(dir, `is owned by uid ${st.uid}, not the agent's uid ${uid()}`);
  if ((st.mode & 0o077) !== 0) throw problem(dir, `has mode 0${(st.mode & MODE_BITS).toString(8)}, which lets others in`);
  const real = await realpath(dir);
  for (let d = dirname(real); ; d = dirname(d)) {
    const a = await lstat(d);
    const othersMayWrite = (a.mode & 0o022) !== 0 && (a.mode & 0o1000) === 0 /* sticky */;
    if ((a.uid !== 0 && a.uid !== uid()) || othersMayWrite) {
      throw problem(dir, `is inside ${d}, which ${othersMayWrite ? 'others may write to' : `belongs to uid ${a.uid}`}`);
    }
    if (d === dirname(d)) break;
  }
  return real;
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
