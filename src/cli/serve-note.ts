/**
 * Which running `hostlink serve` owns a data directory: serve writes its URL beside the directory's lock once
 * it listens, so that a command refused by the lock can say where to send its request instead (--server URL)
 * rather than only naming a process id.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DATA_FILE_MODE } from '../host/state/data-dir.js';

export const SERVE_NOTE_FILE = 'hostlink-serve.json';

/** Records that this process serves `dir` at `url`; returns what removes the note again. */
export function writeServeNote(dir: string, url: string): () => void {
  const path = join(dir, SERVE_NOTE_FILE);
  const staging = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(staging, JSON.stringify({ pid: process.pid, url }) + '\n', { mode: DATA_FILE_MODE });
  renameSync(staging, path);
  return () => {
    try {
      if (readServeNote(dir, process.pid) !== undefined) unlinkSync(path);
    } catch {
      // already gone
    }
  };
}

/** The URL of the `hostlink serve` that is process `pid`, when its note is there; else undefined. */
export function readServeNote(dir: string, pid: number): string | undefined {
  try {
    const note = JSON.parse(readFileSync(join(dir, SERVE_NOTE_FILE), 'utf8').slice(0, 4096)) as { pid?: unknown; url?: unknown };
    // A note left by a serve that died names another pid than the lock's holder: it says nothing then.
    if (note.pid !== pid || typeof note.url !== 'string' || !/^https?:\/\/[!-~]{1,300}$/.test(note.url)) return undefined;
    return note.url;
  } catch {
    return undefined;
  }
}

/** The command line of process `pid` (from /proc), or undefined where it cannot be read. */
export function commandOf(pid: number): string | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    return argv.length > 0 ? argv.join(' ').slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}
