/**
 * The KvStore on LMDB (the `lmdb` package): one environment per directory, one named database per table,
 * binary keys and values.
 *
 * Commits (measured in docs/state.md): each write() runs as an LMDB child transaction inside lmdb's batched
 * asynchronous write transaction. Calls made in the same event turn share one commit (one fsync) while a
 * throwing callback only aborts its own child transaction. The commit and its fsync happen on lmdb's writer
 * thread, so the event loop is not blocked. overlappingSync is off: the write() promise then resolves only after
 * LMDB's synced commit, which is plain LMDB durability (after a crash, the store is exactly as of some
 * committed transaction, and every resolved write() is in it).
 */
import { chmodSync, closeSync, fstatSync, lstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase, type Transaction } from 'lmdb';
import { HostlinkError } from '../../errors.js';
import { plain } from './bytes.js';
import { extend } from '../../extend.js';
import { DATA_DIR_MODE, DATA_FILE_MODE } from './data-dir.js';
import {
  checkSynchronous,
  checkTableKey,
  LAYOUT_KEY,
  LAYOUT_VERSION,
  layoutOnOpen,
  prefixEnd,
  TABLES,
  type KvStore,
  type KvTxn,
  type TableName,
} from './kv.js';

export interface LmdbStoreOptions {
  /**
   * 'sync' (default): a resolved write() survives a power loss. 'nosync': no fsync at all (LMDB MDB_NOSYNC),
   * several times faster for a single writer; a process crash loses nothing, but an OS crash or power loss can
   * lose recent transactions or corrupt the file. For scratch data and benchmarks only.
   */
  durability?: 'sync' | 'nosync';
  /** Initial map size in bytes (lmdb grows it when full). */
  mapSize?: number;
}

type Db = Database<Buffer, Uint8Array>;

const ignore = (): void => undefined;
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const storeError = (what: string, e: unknown): HostlinkError => {
  // lmdb rejects a failed commit's callers with an error whose `commitError` is a second promise, rejected
  // with the cause (ENOSPC, EIO) and awaited by nobody: left alone it is an unhandled rejection that kills
  // the process. Observe it here; the caller gets the named store error.
  const detail = (e as { commitError?: unknown } | null)?.commitError;
  if (detail !== null && typeof detail === 'object' && typeof (detail as Promise<unknown>).catch === 'function') (detail as Promise<unknown>).catch(() => undefined);
  return e instanceof HostlinkError ? e : new HostlinkError('store', `LMDB ${what} failed: ${message(e)}`, { cause: e });
};

/** Whether `e` is lmdb's generic "Commit failed": the batch's commit failed and none of its writes were kept. */
const isCommitFailure = (e: unknown): boolean => (e as { commitError?: unknown } | null)?.commitError instanceof Promise;

/**
 * The reason behind lmdb's generic "Commit failed" (its `commitError` promise) if lmdb has given it already;
 * never waits for it. lmdb (write.js) rejects `commitError` in the error branch of the failed commit's completion
 * callback, right after failing the batch's writes and before any of their handlers run, but only if the
 * promise exists then. When a write for the next batch is queued before that callback runs, the callback finds
 * no failed batch (its failure flag sits in the slot the new write took), so the promise does not exist yet and
 * the cause is dropped. The next batch's callback then fails the earlier batch's writes with a new `commitError`
 * that nothing ever settles, and awaiting it would leave the call pending forever. A promise that is already
 * settled wins Promise.race against Promise.resolve(): its reaction job is queued first.
 */
export async function commitCause(e: unknown): Promise<string | undefined> {
  const detail = (e as { commitError?: unknown } | null)?.commitError;
  if (!(detail instanceof Promise)) return undefined;
  return Promise.race([detail, Promise.resolve()]).then(
    () => undefined,
    (c: unknown) => message(c),
  );
}

function rangeOf(db: Db, prefix: Uint8Array, transaction?: Transaction): Iterable<[Uint8Array, Uint8Array]> {
  const end = prefix.length === 0 ? undefined : prefixEnd(prefix);
  const options = {
    ...(prefix.length === 0 ? {} : end === undefined ? { start: prefix } : { start: prefix, end }),
    ...(transaction !== undefined ? { transaction } : {}),
  };
  return {
    *[Symbol.iterator]() {
      for (const { key, value } of db.getRange(options)) yield [plain(key as Uint8Array), plain(value)];
    },
  };
}

/**
 * lmdb's shared buffer (valid until its next read) copied when it holds at most `most` bytes, else its length.
 * The buffer is lmdb's whole reusable one with `length` set to the value's: copy that many bytes, not the buffer.
 */
function within(v: Buffer | undefined, most: number): Uint8Array | number | undefined {
  if (v === undefined) return undefined;
  const length = v.length;
  return length > most ? length : Uint8Array.prototype.slice.call(v, 0, length);
}

/**
 * How many keys rangeOf would yield, at most `most`, without copying a value: lmdb's cursor counts a whole range
 * natively, but does not stop at a limit, so a bounded count walks the keys up to it (one past what is paid for).
 */
function countOf(db: Db, prefix: Uint8Array, most: number, transaction?: Transaction): number {
  const end = prefix.length === 0 ? undefined : prefixEnd(prefix);
  const options = {
    ...(prefix.length === 0 ? {} : end === undefined ? { start: prefix } : { start: prefix, end }),
    ...(transaction !== undefined ? { transaction } : {}),
  };
  try {
    if (most >= Number.MAX_SAFE_INTEGER) return db.getKeysCount(options);
    let n = 0;
    for (const _ of db.getKeys(extend(options, { limit: most }))) n++;
    return n;
  } catch (e) {
    throw storeError('read', e);
  }
}

/** rangeOf's keys alone: lmdb's cursor then neither reads nor copies the values. */
function keysOf(db: Db, prefix: Uint8Array, transaction?: Transaction): Iterable<Uint8Array> {
  const end = prefix.length === 0 ? undefined : prefixEnd(prefix);
  const options = {
    ...(prefix.length === 0 ? {} : end === undefined ? { start: prefix } : { start: prefix, end }),
    ...(transaction !== undefined ? { transaction } : {}),
  };
  return {
    *[Symbol.iterator]() {
      for (const key of db.getKeys(options)) yield plain(key as Uint8Array);
    },
  };
}

// The data file's meta pages, as the LMDB 1.x bundled with the lmdb package writes them: a 24-byte page header,
// then the magic and format version, the page size (in the first database record), the last page used and the
// transaction id. Pages 0 and 1 hold one meta each; the one with the higher transaction id is current.
const LMDB_MAGIC = 0xbeefc0de;
const LMDB_VERSION = 2;
const META = { magic: 24, version: 28, pageSize: 48, freeRoot: 88, mainRoot: 136, txnId: 152, end: 160 } as const;
/** A root page number meaning "no pages" (an empty tree). */
const NO_PAGE = 0xffff_ffff_ffff_ffffn;

/**
 * Why the data file cannot be LMDB's own, or undefined (absent or empty files are LMDB's to create). lmdb's
 * native open does not refuse such a file: it crashes the process (SIGSEGV on foreign bytes, SIGBUS on a file
 * shorter than its meta says), taking every command and the node with it, so the meta pages are read first.
 * Damage inside the tree is not detected here: LMDB pages carry no checksums.
 */
export function dataFileDamage(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return undefined;
    const meta = (at: number): Buffer | undefined => {
      const b = Buffer.alloc(META.end);
      return readSync(fd, b, 0, META.end, at) === META.end && b.readUInt32LE(META.magic) === LMDB_MAGIC ? b : undefined;
    };
    const first = meta(0);
    if (first === undefined) return 'is not an LMDB data file';
    const version = first.readUInt32LE(META.version);
    if (version !== LMDB_VERSION) return `has LMDB format version ${version}, not ${LMDB_VERSION}, the one this build reads`;
    const pageSize = first.readUInt32LE(META.pageSize);
    if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return `has a damaged meta page (page size ${pageSize})`;
    const second = meta(pageSize);
    if (second === undefined) return 'has a damaged second meta page';
    const current = first.readBigUInt64LE(META.txnId) >= second.readBigUInt64LE(META.txnId) ? first : second;
    // The two trees' root pages must be in the file: opening reads them. Not the meta's last page: LMDB counts
    // pages it allocated and freed again within a transaction without writing them, so a sound file may end
    // before it (a store was refused after one ordinary put). Pages deeper in the trees are checked only by
    // reading them (hostlink verify).
    const roots = [current.readBigUInt64LE(META.freeRoot), current.readBigUInt64LE(META.mainRoot)].filter((p) => p !== NO_PAGE);
    const needed = roots.reduce((n, p) => ((p + 1n) * BigInt(pageSize) > n ? (p + 1n) * BigInt(pageSize) : n), 0n);
    if (needed > BigInt(size)) return `is truncated: its root pages reach byte ${needed} and the file has ${size}`;
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * LMDB's files hold all state and private storage: only this user may read them. lmdb creates them with 0664
 * less the umask unless told; files an earlier version created that way are tightened here (never through a link).
 */
function makePrivate(dir: string): void {
  for (const name of ['data.mdb', 'lock.mdb']) {
    const file = join(dir, name);
    let st;
    try {
      st = lstatSync(file);
    } catch {
      continue; // LMDB creates it, with DATA_FILE_MODE
    }
    if (st.isFile() && (st.mode & 0o077) !== 0 && st.uid === process.geteuid?.()) chmodSync(file, DATA_FILE_MODE);
  }
}

/** lmdb's native open reads `permissionsMode` (the mode of the files it creates); its typings do not list it. */
const LMDB_FILE_MODE = { permissionsMode: DATA_FILE_MODE };

export async function openLmdbStore(dir: string, options: LmdbStoreOptions = {}): Promise<KvStore> {
  let root: RootDatabase<Buffer, Uint8Array>;
  const dbs = new Map<TableName, Db>();
  try {
    mkdirSync(dir, { recursive: true, mode: DATA_DIR_MODE });
    makePrivate(dir);
    const damage = dataFileDamage(join(dir, 'data.mdb'));
    if (damage !== undefined) {
      throw new HostlinkError('store', `the store in ${dir} cannot be opened: its data.mdb ${damage}. Nothing was changed: restore the directory from a backup, or move it away to start an empty store`);
    }
    root = open<Buffer, Uint8Array>(dir, {
      maxDbs: 64,
      keyEncoding: 'binary',
      encoding: 'binary',
      overlappingSync: false,
      noSync: options.durability === 'nosync',
      noSubdir: false, // lmdb would treat a directory name containing '.' as a file name
      ...LMDB_FILE_MODE,
      ...(options.mapSize !== undefined ? { mapSize: options.mapSize } : {}),
    });
    for (const t of TABLES) dbs.set(t, root.openDB<Buffer, Uint8Array>(t, { keyEncoding: 'binary', encoding: 'binary' }));
  } catch (e) {
    if (e instanceof HostlinkError) throw e;
    throw new HostlinkError('store', `cannot open the LMDB store in ${dir}: ${message(e)}`, { cause: e });
  }

  // lmdb ends each event turn's batch by making a commit promise of its own, which it rejects when the commit
  // fails (a full disk) and which nobody awaits: an unhandled rejection that ends the process. The write()
  // callers get the failure through their own promises. Observed here as soon as it exists: 'beforecommit' runs
  // in the task that ends the batch, just before lmdb makes it, and a microtask runs right after that task.
  // (Observing the current batch from a failed write's handler missed it whenever another batch had begun: the
  // node died on a full disk with several calls committing.)
  root.on('beforecommit', () => queueMicrotask(() => void root.committed.then(undefined, () => undefined)));

  const db = (t: TableName): Db => {
    const d = dbs.get(t);
    if (d === undefined) throw new HostlinkError('usage', `unknown table '${String(t)}'`);
    return d;
  };
  let closing = false;
  let closed = false;
  let inWrite = false;
  let pending: Promise<unknown> = Promise.resolve();
  const check = (): void => {
    if (closed) throw new HostlinkError('store', `the store in ${dir} is closed`);
  };

  // Inside a write() callback the same call reads the transaction's own view (lmdb routes it).
  const read = (t: TableName, key: Uint8Array): Uint8Array | undefined => {
    try {
      const v = db(t).getBinary(key);
      return v === undefined ? undefined : plain(v);
    } catch (e) {
      throw storeError('read', e);
    }
  };

  const store: KvStore = {
    persistent: true,
    get(t, key) {
      check();
      return read(t, key);
    },
    valueLength(t, key) {
      check();
      try {
        // lmdb's shared buffer, valid until its next read: only its length is kept.
        return db(t).getBinaryFast(key)?.length;
      } catch (e) {
        throw storeError('read', e);
      }
    },
    getWithin(t, key, most) {
      check();
      try {
        return within(db(t).getBinaryFast(key), most);
      } catch (e) {
        throw storeError('read', e);
      }
    },
    range(t, prefix) {
      check();
      return rangeOf(db(t), prefix);
    },
    keys(t, prefix) {
      check();
      return keysOf(db(t), prefix);
    },
    count(t, prefix, most) {
      check();
      return countOf(db(t), prefix, most);
    },
    snapshot() {
      check();
      // An LMDB read transaction: a consistent view until done() (it pins the pages it may read).
      const transaction = root.useReadTransaction();
      let released = false;
      const live = (): Transaction => {
        if (released) throw new HostlinkError('usage', 'snapshot used after release()');
        return transaction;
      };
      return {
        get(t, key) {
          try {
            const v = (db(t).getBinary as (k: Uint8Array, o: { transaction: Transaction }) => Buffer | undefined).call(db(t), key, { transaction: live() }); // lmdb accepts options; its typings omit them
            return v === undefined ? undefined : plain(v);
          } catch (e) {
            throw storeError('read', e);
          }
        },
        valueLength(t, key) {
          try {
            // lmdb's shared buffer, valid until its next read: only its length is kept.
            return (db(t).getBinaryFast as (k: Uint8Array, o: { transaction: Transaction }) => Buffer | undefined).call(db(t), key, { transaction: live() })?.length;
          } catch (e) {
            throw storeError('read', e);
          }
        },
        range(t, prefix) {
          return [...rangeOf(db(t), prefix, live())];
        },
        keys(t, prefix) {
          return [...keysOf(db(t), prefix, live())];
        },
        count(t, prefix, most) {
          return countOf(db(t), prefix, most, live());
        },
        release() {
          if (released) return;
          released = true;
          transaction.done();
        },
      };
    },
    entryCount(t) {
      check();
      try {
        return (db(t).getStats() as { entryCount: number }).entryCount;
      } catch (e) {
        throw storeError('read', e);
      }
    },
    write<T>(fn: (txn: KvTxn) => T): Promise<T> {
      if (closing) return Promise.reject(new HostlinkError('store', `the store in ${dir} is closed`));
      if (inWrite) throw new HostlinkError('usage', 'write() called inside a write() callback');
      let thrown: { error: unknown } | undefined;
      const committed = root.childTransaction(() => {
        let open = true;
        const live = (): void => {
          if (!open) throw new HostlinkError('usage', 'transaction used after its write() callback returned');
        };
        const txn: KvTxn = {
          get(t, key) {
            live();
            return read(t, key);
          },
          range(t, prefix) {
            live();
            return rangeOf(db(t), prefix);
          },
          put(t, key, value) {
            live();
            checkTableKey(t, key);
            const d = db(t);
            try {
              d.put(key, value as Buffer);
            } catch (e) {
              throw storeError('put', e);
            }
          },
          del(t, key) {
            live();
            checkTableKey(t, key);
            const d = db(t);
            try {
              d.remove(key);
            } catch (e) {
              throw storeError('delete', e);
            }
          },
        };
        inWrite = true;
        try {
          const result = fn(txn);
          checkSynchronous(result);
          return result;
        } catch (error) {
          thrown = { error }; // lmdb aborts this child transaction; the rest of the batch commits
          throw error;
        } finally {
          open = false;
          inWrite = false;
        }
      });
      const done = committed.then(
        (r) => r,
        async (e: unknown) => {
          if (thrown !== undefined) throw thrown.error;
          const error = storeError('commit', e);
          if (!isCommitFailure(e)) throw error;
          // A batch lmdb noticed late gets its cause (if ever) when the commit in progress ends: look once more then.
          let cause = await commitCause(e);
          if (cause === undefined) cause = await root.committed.then(ignore, ignore).then(() => commitCause(e));
          cause ??= 'lmdb did not report the cause';
          throw new HostlinkError('store', `LMDB commit failed: ${cause} (disk full or I/O error: nothing of this write was kept)`, { cause: e });
        },
      );
      pending = done.catch(() => undefined);
      return done;
    },
    async close() {
      if (closing) return;
      closing = true;
      await pending;
      closed = true;
      try {
        await root.close();
      } catch (e) {
        throw storeError('close', e);
      }
    },
  };

  // The layout stamp: a store written by an incompatible layout is refused instead of misread.
  const stamp = store.get('meta', LAYOUT_KEY);
  if (stamp === undefined) {
    await store.write((txn) => txn.put('meta', LAYOUT_KEY, Uint8Array.of(LAYOUT_VERSION)));
  } else {
    const action = layoutOnOpen(stamp, dir);
    if (action === 'upgrade') {
      await store.write((txn) => txn.put('meta', LAYOUT_KEY, Uint8Array.of(LAYOUT_VERSION)));
    } else if (action !== 'ok') {
      await store.close();
      throw new HostlinkError('store', action);
    }
  }
  return store;
}
