/**
 * The host's storage abstraction: named tables of binary keys and values, synchronous reads and atomic write
 * transactions. LMDB implements it for real (lmdb-store.ts); an in-memory version serves unit tests
 * (memory-store.ts), and every behaviour test runs against both.
 */
import { HostlinkError } from '../../errors.js';

/** Tables the host keeps. Add a name here to add a table (the LMDB store opens one named database per entry). */
export const TABLES = [
  'code',
  // Each code's length (code-store.ts): listing codes reads these, not every module's bytes.
  'code_sizes',
  'state',
  'merkle',
  'meta',
  // Node tables (src/host/node/): private storage, contexts, governance, blobs.
  'private',
  'contexts',
  'aliases',
  'members',
  'proposals',
  'approvals',
  'blobs',
  'blob_announcements',
] as const;
export type TableName = (typeof TABLES)[number];

/**
 * Longest table key: LMDB's compiled-in limit in the lmdb package (`maxKeySize`). Both stores enforce it, and
 * reject empty keys (LMDB cannot store them), so code tested on the memory store behaves the same on LMDB.
 */
export const MAX_TABLE_KEY_BYTES = 1978;

/** meta-table key of the layout stamp: bumped when a table's key or value layout changes incompatibly. */
export const LAYOUT_KEY = new TextEncoder().encode('layout');
/** 2: a context's root value in 'merkle' may carry a log of changed keys (merkle-log.ts); 1 had the bare root. */
export const LAYOUT_VERSION = 2;

/**
 * What opening a store stamped `stamp` does: 'ok'; 'upgrade' (restamp it: the data is already valid in this
 * layout); or a message saying why it is refused and what to do. A layout-1 store is a layout-2 store whose
 * contexts all have an empty log; the new stamp keeps older Hostlinks, which would misread a logged root value,
 * from opening it.
 */
export function layoutOnOpen(stamp: Uint8Array, dir: string): 'ok' | 'upgrade' | string {
  if (stamp.length === 1 && stamp[0] === LAYOUT_VERSION) return 'ok';
  if (stamp.length === 1 && stamp[0] === 1) return 'upgrade';
  const newer = stamp.length === 1 && stamp[0]! > LAYOUT_VERSION;
  return `the store in ${dir} has layout ${stamp.join(',')}, this Hostlink reads layout ${LAYOUT_VERSION}${newer ? ' (and 1): open it with the newer Hostlink that wrote it' : ': it was not written by Hostlink, or is damaged'}`;
}

export interface KvReader {
  /** The value, or undefined. The returned array is the caller's (mutating it does not change the store). */
  get(table: TableName, key: Uint8Array): Uint8Array | undefined;
  /** The value's length without copying it, or undefined when absent; a reader without it is asked get(). */
  valueLength?(table: TableName, key: Uint8Array): number | undefined;
  /**
   * The value (the caller's copy) when it holds at most `most` bytes, else its length with nothing copied;
   * undefined when absent. One lookup either way; a reader without it is asked get().
   */
  getWithin?(table: TableName, key: Uint8Array, most: number): Uint8Array | number | undefined;
  /**
   * Entries whose key starts with `prefix` (empty: the whole table), in key byte order. Inside a transaction,
   * consume the iterable before the transaction callback returns.
   */
  range(table: TableName, prefix: Uint8Array): Iterable<[Uint8Array, Uint8Array]>;
  /**
   * The keys of `range`, without reading or copying the values; a reader without it is asked range() (see
   * tableKeys).
   */
  keys?(table: TableName, prefix: Uint8Array): Iterable<Uint8Array>;
  /**
   * How many keys start with `prefix`, at most `most` (counting stops there), counted without reading them; a
   * reader without it is asked keys().
   */
  count?(table: TableName, prefix: Uint8Array, most: number): number;
}

/** How many keys start with `prefix`, at most `most`, counted without copying them where the reader can. */
export function tableCount(reader: KvReader, table: TableName, prefix: Uint8Array, most = Number.MAX_SAFE_INTEGER): number {
  if (reader.count !== undefined) return reader.count(table, prefix, most);
  let n = 0;
  for (const _ of tableKeys(reader, table, prefix)) if (++n >= most) break;
  return n;
}

/** The keys starting with `prefix`, read without the values where the reader can. */
export function tableKeys(reader: KvReader, table: TableName, prefix: Uint8Array): Iterable<Uint8Array> {
  if (reader.keys !== undefined) return reader.keys(table, prefix);
  return {
    *[Symbol.iterator]() {
      for (const [key] of reader.range(table, prefix)) yield key;
    },
  };
}

/** A write transaction: reads see its own writes. Valid only while the write() callback runs. */
export interface KvTxn extends KvReader {
  put(table: TableName, key: Uint8Array, value: Uint8Array): void;
  del(table: TableName, key: Uint8Array): void;
}

/** A consistent read view of the committed state as of its creation; release() it when done. */
export interface KvSnapshot extends KvReader {
  release(): void;
}

export interface KvStore extends KvReader {
  /**
   * True when the tables outlive the process (LMDB). A Host given such a store refuses to keep blob contents in
   * memory (HostOptions.blobDir); a store of your own that persists should say so here.
   */
  readonly persistent?: boolean;
  /**
   * A read view that later commits do not change (a call's view of other contexts stays as it began). Every
   * snapshot must be released; while one is held the store keeps the old versions it may read.
   */
  snapshot(): KvSnapshot;
  /**
   * How many entries the table holds by its own header (LMDB's count, kept apart from its pages), where the store
   * keeps one: a walk that finds fewer or more read damaged pages (hostlink verify).
   */
  entryCount?(table: TableName): number;
  /**
   * Runs `fn` in one atomic transaction and resolves with its result once the transaction is committed (and,
   * on a durable store, synced). `fn` must be synchronous. If it throws, nothing it wrote is kept and the
   * promise rejects with that error. Calls are applied in call order; concurrent calls may share one commit.
   * Inside `fn`, read through `txn`: whether the store's own reads (or reads elsewhere before the promise
   * resolves) see the transaction's writes is unspecified.
   */
  write<T>(fn: (txn: KvTxn) => T): Promise<T>;
  /** Waits for pending writes, then closes. Any later call fails with HostlinkError('store'). */
  close(): Promise<void>;
}

/** The smallest key greater than every key with this prefix (undefined when there is none: all 0xff). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}

export function checkTableKey(table: TableName, key: Uint8Array): void {
  if (key.length === 0 || key.length > MAX_TABLE_KEY_BYTES) {
    throw new HostlinkError('usage', `table '${table}': key of ${key.length} bytes (must be 1..${MAX_TABLE_KEY_BYTES})`);
  }
}

/** Rejects async callbacks: a transaction cannot stay open across an await (LMDB holds its write lock). */
export function checkSynchronous(result: unknown): void {
  if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
    throw new HostlinkError('usage', 'the write() callback returned a promise; it must be synchronous');
  }
}
