/**
 * Where blob bytes live: content-addressed files under `<dataDir>/blobs/` (one file per blob, named by its hex
 * id, in a directory per first byte), or a map for a host without a data directory. Which blobs exist is
 * decided by the 'blobs' table, written in the same transaction as the rest of a call's outcome: a file
 * without a record is invisible (an interrupted commit leaves at most such an orphan).
 *
 * A blob being written goes to a staging file in a directory of this Host instance
 * (`blobs/staging/<pid>-<random>/`), removed at close; the directories of processes that no longer run are
 * removed when a Host opens.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HostlinkError } from '../../errors.js';
import { checkOwnSubdirectory, DATA_DIR_MODE, DATA_FILE_MODE, runsAs } from '../state/data-dir.js';
import { BlobHasher } from './blob-id.js';

/** A blob that was fully written: readable, then either committed or discarded. */
export interface StagedBlob {
  readonly id: Uint8Array;
  readonly size: bigint;
  read(offset: bigint, length: number): Uint8Array;
  /** Moves the content into the store (a no-op when the store already holds this id). */
  commit(): void;
  discard(): void;
}

/** A blob being written. */
export interface BlobUpload {
  append(bytes: Uint8Array): void;
  finish(): StagedBlob;
  discard(): void;
}

export interface BlobContent {
  upload(): BlobUpload;
  /** Bytes of a committed blob from `offset` (fewer at the end); undefined when the content is missing. */
  read(id: Uint8Array, offset: bigint, length: number): Uint8Array | undefined;
  /** Removes this instance's staging area. */
  close(): void;
}

const hex = (id: Uint8Array): string => Buffer.from(id).toString('hex');

function sliceOf(bytes: Uint8Array, offset: bigint, length: number): Uint8Array {
  if (offset >= BigInt(bytes.length)) return new Uint8Array(0);
  const from = Number(offset);
  return bytes.slice(from, Math.min(bytes.length, from + length));
}

export function memoryBlobContent(): BlobContent {
  const blobs = new Map<string, Uint8Array>();
  return {
    upload() {
      const parts: Uint8Array[] = [];
      const hasher = new BlobHasher();
      return {
        append(bytes) {
          hasher.update(bytes);
          parts.push(Uint8Array.from(bytes));
        },
        finish() {
          const content = new Uint8Array(Buffer.concat(parts));
          const id = hasher.digest();
          return {
            id,
            size: hasher.size,
            read: (offset, length) => sliceOf(content, offset, length),
            commit: () => {
              if (!blobs.has(hex(id))) blobs.set(hex(id), content);
            },
            discard: () => undefined,
          };
        },
        discard: () => undefined,
      };
    },
    read(id, offset, length) {
      const content = blobs.get(hex(id));
      return content === undefined ? undefined : sliceOf(content, offset, length);
    },
    close: () => undefined,
  };
}

function readFileRange(path: string, offset: bigint, length: number): Uint8Array | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    // The offset comes from the VM as any u64: one at or past the end reads nothing (none past it, as for a blob
    // in memory). Passed on as it is, an offset of 2^63 or more made readSync throw a RangeError and one near it
    // EINVAL, ending the call as the host's failure instead of answering empty data.
    const size = BigInt(fstatSync(fd).size);
    if (offset >= size) return new Uint8Array(0);
    const want = BigInt(length) > size - offset ? Number(size - offset) : length;
    const buf = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const n = readSync(fd, buf, got, want - got, offset + BigInt(got));
      if (n === 0) break;
      got += n;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, got);
  } finally {
    closeSync(fd);
  }
}

/** Removes the staging directories of processes that are gone (their uploads can never finish). */
function sweepStaging(stagingRoot: string): void {
  for (const name of readdirSync(stagingRoot)) {
    const pid = Number(name.split('-')[0]);
    const path = join(stagingRoot, name);
    // Directories of this process (another Host on the same data directory) or of a live one stay: live means
    // running as the directory's owner (a process of another account that took a dead node's pid does not count).
    if (pid === process.pid || (Number.isInteger(pid) && pid > 0 && runsAs(pid, ownerOf(path)))) continue;
    rmSync(path, { recursive: true, force: true });
  }
}

/** The owner's uid, or -1 when the file is gone (no process runs as -1). */
function ownerOf(path: string): number {
  try {
    return lstatSync(path).uid;
  } catch {
    return -1;
  }
}

export function diskBlobContent(root: string): BlobContent {
  const stagingRoot = join(root, 'staging');
  checkOwnSubdirectory(root);
  checkOwnSubdirectory(stagingRoot);
  mkdirSync(stagingRoot, { recursive: true, mode: DATA_DIR_MODE });
  // Blobs are the node's data like its state: a root an earlier version created open to others is closed here.
  const st = lstatSync(root);
  if (st.isDirectory() && (st.mode & 0o077) !== 0 && st.uid === process.geteuid?.()) chmodSync(root, DATA_DIR_MODE);
  sweepStaging(stagingRoot);
  const staging = join(stagingRoot, `${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(staging, { mode: DATA_DIR_MODE });
  let uploads = 0;
  // The node's disk, not the VM: a store failure (the upload is discarded with the call).
  const stagingFailed = (e: unknown): HostlinkError =>
    new HostlinkError('store', `staging a blob in ${staging} failed: ${(e as Error).message}`, { cause: e });
  const finalPath = (id: Uint8Array): string => join(root, hex(id).slice(0, 2), hex(id));

  return {
    upload() {
      const path = join(staging, `${uploads++}.part`);
      let fd: number;
      try {
        fd = openSync(path, 'w', DATA_FILE_MODE);
      } catch (e) {
        throw stagingFailed(e);
      }
      let open = true;
      const hasher = new BlobHasher();
      const closeFd = (): void => {
        if (open) closeSync(fd);
        open = false;
      };
      return {
        append(bytes) {
          hasher.update(bytes);
          let at = 0;
          try {
            while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
          } catch (e) {
            throw stagingFailed(e);
          }
        },
        finish() {
          closeFd();
          const id = hasher.digest();
          let present = true;
          return {
            id,
            size: hasher.size,
            read: (offset, length) => readFileRange(path, offset, length) ?? new Uint8Array(0),
            commit: () => {
              if (!present) return;
              const target = finalPath(id);
              try {
                if (existsSync(target)) {
                  unlinkSync(path); // same id, same content: keep the stored copy
                } else {
                  mkdirSync(join(root, hex(id).slice(0, 2)), { recursive: true, mode: DATA_DIR_MODE });
                  renameSync(path, target);
                }
              } catch (e) {
                // A store failure (no space, no inodes, an I/O error): the call ends with it and nothing is applied.
                throw new HostlinkError('store', `storing blob ${hex(id)} in ${root} failed: ${(e as Error).message}`, { cause: e });
              }
              present = false;
            },
            discard: () => {
              if (present) rmSync(path, { force: true });
              present = false;
            },
          };
        },
        discard() {
          closeFd();
          rmSync(path, { force: true });
        },
      };
    },
    read: (id, offset, length) => readFileRange(finalPath(id), offset, length),
    close: () => rmSync(staging, { recursive: true, force: true }),
  };
}
