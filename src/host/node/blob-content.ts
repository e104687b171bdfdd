/**
 * Where blob bytes live: content-addressed files under `<dataDir>/blobs/` or HostOptions.blobDir (one file per
 * blob, named by its hex id, in a directory per first byte), or a map for a host without either. Which blobs
 * exist is decided by the 'blobs' table, written in the same transaction as the rest of a call's outcome: a file
 * without a record is invisible (an interrupted commit leaves at most such an orphan).
 *
 * A blob being written goes to a staging file in a directory of this Host instance
 * (`blobs/staging/<pid>-<random>/`), removed at close; the directories of processes that no longer run are
 * removed when a Host opens.
 *
 * Durability: the record is fsynced by LMDB's commit, so the file must be on disk before that commit is issued,
 * or a power cut leaves a record whose file is missing or empty. The staged file is fsynced from finish() on,
 * in the background while the call goes on; store() waits for that, moves the file into place and fsyncs the
 * directories that name it, and the committer issues the transaction only after store() has resolved.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fstatSync, fsync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { HostlinkError } from '../../errors.js';
import { checkOwnSubdirectory, DATA_DIR_MODE, DATA_FILE_MODE, runsAs } from '../state/data-dir.js';
import { BLOB_CHUNK_BYTES, BlobHasher } from './blob-id.js';

/** A blob that was fully written: readable, then either committed or discarded. */
export interface StagedBlob {
  readonly id: Uint8Array;
  readonly size: bigint;
  read(offset: bigint, length: number): Uint8Array;
  /**
   * Moves the content into the store, durably (its bytes and its directory entry synced), before the transaction
   * that records it is issued. A copy already stored under this id is replaced: it may be one a power cut damaged
   * before this version synced blobs, and the staged copy is known sound (it was hashed as it was written).
   * Rejects with HostlinkError('store'); the call then ends with it and nothing is applied.
   */
  store(): Promise<void>;
  /** True once store() has resolved: only then may a transaction record the blob. */
  readonly stored: boolean;
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
          let stored = false;
          return {
            id,
            size: hasher.size,
            read: (offset, length) => sliceOf(content, offset, length),
            store: () => {
              if (!blobs.has(hex(id))) blobs.set(hex(id), content);
              stored = true;
              return Promise.resolve();
            },
            get stored() {
              return stored;
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

/**
 * Makes a blob's `<hh>` directory in the root; true when it was made here (its name in the root is then to sync).
 * Not `recursive`: the root exists from open on, and Node's asynchronous recursive mkdir reports a full disk
 * (ENOSPC) as ENOENT.
 */
async function makeDirectory(dir: string): Promise<boolean> {
  try {
    await mkdir(dir, { mode: DATA_DIR_MODE });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** fsync of a directory: makes the names in it (a file renamed in, a directory made) survive a power cut. */
async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function diskBlobContent(root: string): BlobContent {
  const stagingRoot = join(root, 'staging');
  checkOwnSubdirectory(root);
  checkOwnSubdirectory(stagingRoot);
  const made = mkdirSync(stagingRoot, { recursive: true, mode: DATA_DIR_MODE });
  // A root made here (and any parent made with it) is named in the directory above it: synced once, so the blobs
  // stored later are not lost with their root's entry.
  if (made !== undefined && resolve(made) !== resolve(stagingRoot)) {
    for (let dir = resolve(root); ; dir = dirname(dir)) {
      syncDirectoryNow(dirname(dir));
      if (dir === resolve(made) || dirname(dir) === dir) break;
    }
  }
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
  const storeFailed = (id: Uint8Array, e: unknown): HostlinkError =>
    new HostlinkError('store', `storing blob ${hex(id)} in ${root} failed: ${(e as Error).message}`, { cause: e });
  const dirOf = (id: Uint8Array): string => join(root, hex(id).slice(0, 2));
  /**
   * Each `<hh>` directory once it exists and its name in the root is durable. Shared: a store() that found the
   * directory another one had just made must still wait for that one's sync of the root before its commit.
   */
  const dirsReady = new Map<string, Promise<void>>();
  const directoryReady = (dir: string): Promise<void> => {
    let ready = dirsReady.get(dir);
    if (ready === undefined) {
      ready = makeDirectory(dir).then((made) => (made ? syncDirectory(root) : undefined));
      dirsReady.set(dir, ready);
    }
    return ready;
  };
  const finalPath = (id: Uint8Array): string => join(dirOf(id), hex(id));

  return {
    upload() {
      const path = join(staging, `${uploads++}.part`);
      let fd: number;
      try {
        fd = openSync(path, 'w', DATA_FILE_MODE);
      } catch (e) {
        throw stagingFailed(e);
      }
      let fdOpen = true;
      const hasher = new BlobHasher();
      const closeFd = (): void => {
        if (fdOpen) closeSync(fd);
        fdOpen = false;
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
          // The fsync runs in libuv's pool while the call goes on (a sync one here would stop every other VM's
          // requests for it); store() waits for it. It never rejects: its error, if any, is store()'s to report.
          fdOpen = false;
          const synced = new Promise<Error | null>((done) => {
            fsync(fd, (e) => {
              let error: Error | null = e;
              try {
                closeSync(fd);
              } catch (c) {
                error ??= c as Error;
              }
              done(error);
            });
          });
          const id = hasher.digest();
          let present = true;
          let stored = false;
          return {
            id,
            size: hasher.size,
            read: (offset, length) => readFileRange(path, offset, length) ?? new Uint8Array(0),
            store: async () => {
              if (!present) return;
              const dir = dirOf(id);
              try {
                const error = await synced;
                if (error !== null) throw error;
                await directoryReady(dir);
                // Over a copy already there too: it may be damaged (see StagedBlob.store), this one is not.
                await rename(path, finalPath(id));
                await syncDirectory(dir);
              } catch (e) {
                dirsReady.delete(dir); // made again (or found) by the next store(), in case it was removed
                // A store failure (no space, no inodes, an I/O error): the call ends with it and nothing is applied.
                throw storeFailed(id, e);
              }
              present = false;
              stored = true;
            },
            get stored() {
              return stored;
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

function syncDirectoryNow(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * What is wrong with the stored file of a recorded blob (`hostlink verify`), or undefined when it holds the
 * `size` bytes its id names. Reads the whole file, a chunk at a time.
 */
export function blobFileProblem(root: string, id: Uint8Array, size: bigint): string | undefined {
  const path = join(root, hex(id).slice(0, 2), hex(id));
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `its record says ${size} bytes, but its file ${path} is missing` : `its file ${path} cannot be opened: ${(e as Error).message}`;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return `${path} is not a regular file`;
    if (BigInt(st.size) !== size) return `its record says ${size} bytes, but its file ${path} has ${st.size}`;
    const hasher = new BlobHasher();
    const buf = Buffer.alloc(BLOB_CHUNK_BYTES);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hasher.update(buf.subarray(0, n));
    }
    if (hasher.size !== size) return `its record says ${size} bytes, but reading its file ${path} gave ${hasher.size}`;
    const actual = hasher.digest();
    if (Buffer.compare(actual, id) !== 0) return `its file ${path} has the recorded ${size} bytes, but they hash to ${hex(actual)}: the content is damaged`;
    return undefined;
  } catch (e) {
    return `reading its file ${path} failed: ${(e as Error).message}`;
  } finally {
    closeSync(fd);
  }
}
