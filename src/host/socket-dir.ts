/**
 * The private directory of this process's VM sockets: `<tmpdir>/hostlink-<pid>-XXXXXX`, removed at exit. A host
 * killed by a signal cannot remove its own, so each new one first removes the directories of earlier hosts that
 * are gone: only names of this exact shape, owned by this user, whose pid no longer runs as this user.
 */
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runsAs } from './state/data-dir.js';

const NAME = /^hostlink-([1-9][0-9]{0,9})-[A-Za-z0-9]{6}$/;

/** Removes socket directories left by dead hosts of this user; returns how many it removed. */
export function sweepStaleSocketDirs(base = tmpdir()): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return 0;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const m = NAME.exec(name);
    if (m === null || Number(m[1]) === process.pid) continue;
    const path = join(base, name);
    try {
      const st = lstatSync(path);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || runsAs(Number(m[1]), st.uid)) continue;
      rmSync(path, { recursive: true, force: true });
      removed++;
    } catch {
      // raced with another sweeper or not ours to remove: leave it
    }
  }
  return removed;
}

/** Creates this process's socket directory (after sweeping stale ones) and removes it at exit. */
export function createSocketDir(): string {
  sweepStaleSocketDirs();
  const dir = mkdtempSync(join(tmpdir(), `hostlink-${process.pid}-`));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
