/**
 * Where the Merkle tree's node records live: grouped into pages of 4 levels, so an update that walks ~log2(n)
 * levels reads and writes ~log2(n)/4 database records. (One record per node cost 3-4x more LMDB puts and dirty
 * pages per commit; docs/state.md has the figures.)
 *
 * A page holds the nodes at depths d..d+3 below one path prefix of length d (d a multiple of 4): up to
 * 1 + 2 + 4 + 8 = 15 slots, slot = 2^r - 1 + (the r path bits after d) for a node at depth d + r.
 *   key:   contextId ‖ u16be(d) ‖ the first d bits of the path, packed (trailing bits zero)
 *   value: u16be(bitmap of occupied slots, bit i = slot i) ‖ the 65-byte records of those slots, in slot order
 *
 * Decoded pages are kept across transactions in a bounded, process-wide cache (the page tree cache below), so
 * a one-key update reads no page from the store once its path is warm. Changed pages are written back to the
 * store only at a checkpoint (merkle-log.ts: meanwhile the context's stored root value logs the changed keys);
 * the cache keeps every page changed since, until the checkpoint writes it. A cached context is used only while
 * the root value stored in the transaction equals the value the cache was left at: it names the current root
 * and the checkpoint's (each identifies its entries, and the pages of a canonical tree are a function of its
 * entries), so equal values mean equal current pages and equal stored pages. A rolled-back or failed write
 * leaves the stored value different from the cached one, and the context's pages are dropped (then rebuilt
 * from the stored pages and the log by merkle.ts).
 */
import { HostlinkError } from '../../errors.js';
import { ScratchChunks } from './bytes.js';
import type { KvTxn } from './kv.js';
import { latin1 } from '../../latin1.js';

export const RECORD_BYTES = 65;
const PAGE_LEVELS = 4;
const SLOTS = 15;
const CONTEXT_ID_BYTES = 32;
const ROOT_BYTES = 32;

export const bitAt = (path: Uint8Array, i: number): number => (path[i >> 3]! >> (7 - (i & 7))) & 1;

/** contextId ‖ u16be(depth) ‖ the first `depth` bits of `path`, packed. */
export function pageKey(contextId: Uint8Array, depth: number, path: Uint8Array): Uint8Array {
  const n = (depth + 7) >> 3;
  const key = new Uint8Array(CONTEXT_ID_BYTES + 2 + n);
  key.set(contextId);
  key[CONTEXT_ID_BYTES] = depth >> 8;
  key[CONTEXT_ID_BYTES + 1] = depth & 0xff;
  for (let i = 0; i < n; i++) key[CONTEXT_ID_BYTES + 2 + i] = path[i]!;
  if (depth & 7) key[key.length - 1]! &= 0xff << (8 - (depth & 7));
  return key;
}

interface Page {
  key: Uint8Array;
  /**
   * The page's records in a fixed layout, slot i at i * 65 (undefined until the page holds one): updated in
   * place at flush(), so writing a page allocates nothing. Slot i is occupied when `bitmap` bit i is set.
   */
  recs: Uint8Array | undefined;
  bitmap: number;
  /** Changes not yet flushed: undefined: as in recs; null: emptied; else the new record (not copied yet). */
  slots: (Uint8Array | null | undefined)[];
  dirty: boolean;
  /** Changed since the last checkpoint (listed in the context's `unflushed`): the store holds an older form. */
  unflushed: boolean;
  /** The cached pages 4 levels below, by the 4 path bits after this page's depth. */
  children: (Page | undefined)[] | undefined;
  /** What this page is charged against the cache's byte cap. */
  cost: number;
}

// Charges besides the bytes themselves: the objects and arrays that hold a page (its key, slot and child arrays)
// and a context's entry. Estimates: a 100,000-key tree, fully cached and after 20,000 one-key updates, was charged
// 105 MiB, with 143 MiB of heap and external memory in the whole process.
const PAGE_OVERHEAD_BYTES = 700;
const CONTEXT_OVERHEAD_BYTES = 300;
const FULL_PAGE_BYTES = SLOTS * RECORD_BYTES;

/** What a page is charged: its key, its records' fixed layout (once it has one), its objects. */
const pageCost = (key: Uint8Array, recs: Uint8Array | undefined): number => PAGE_OVERHEAD_BYTES + key.length + (recs === undefined ? 0 : FULL_PAGE_BYTES);

/** A page read from the store (`raw`: its stored form, undefined when absent), decoded into the fixed layout. */
function loadPage(key: Uint8Array, raw: Uint8Array | undefined): Page {
  let bitmap = 0;
  let recs: Uint8Array | undefined;
  if (raw !== undefined) {
    bitmap = raw.length >= 2 ? (raw[0]! << 8) | raw[1]! : 0;
    if (bitmap === 0 || bitmap >> SLOTS || raw.length !== 2 + popcount15(bitmap) * RECORD_BYTES) {
      throw new HostlinkError('store', 'corrupt state tree page');
    }
    recs = new Uint8Array(FULL_PAGE_BYTES);
    let o = 2;
    for (let i = 0; i < SLOTS; i++) {
      if (!(bitmap & (1 << i))) continue;
      recs.set(raw.subarray(o, o + RECORD_BYTES), i * RECORD_BYTES);
      o += RECORD_BYTES;
    }
  }
  const cost = pageCost(key, recs);
  return { key, recs, bitmap, slots: new Array<undefined>(SLOTS).fill(undefined), dirty: false, unflushed: false, children: undefined, cost };
}

/** Set bits in a 15-bit bitmap. */
function popcount15(x: number): number {
  x = x - ((x >>> 1) & 0x5555);
  x = (x & 0x3333) + ((x >>> 2) & 0x3333);
  x = (x + (x >>> 4)) & 0x0f0f;
  return (x + (x >>> 8)) & 0x1f;
}

/** Slot i's record: the change not yet flushed, else a view into the page's records (undefined: empty). */
function slotOf(page: Page, i: number): Uint8Array | undefined {
  const s = page.slots[i];
  if (s !== undefined) return s ?? undefined;
  if (!(page.bitmap & (1 << i))) return undefined;
  return page.recs!.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES);
}

// Where flush() copies the changed records first: a change may be a view into a page's records (a leaf moving
// up to another slot), and applying the changes in place one by one could overwrite a record another change
// still reads.
let staging = new Uint8Array(64 * RECORD_BYTES);

/** The page's stored form, built in `out` from its (flushed) fixed layout; returns the bytes used. */
function encodeInto(page: Page, out: Uint8Array): number {
  const bitmap = page.bitmap;
  const recs = page.recs!;
  out[0] = bitmap >> 8;
  out[1] = bitmap & 0xff;
  let o = 2;
  let i = 0;
  while (i < SLOTS) {
    if (!(bitmap & (1 << i))) {
      i++;
      continue;
    }
    let j = i + 1; // a run of occupied slots is one copy
    while (j < SLOTS && bitmap & (1 << j)) j++;
    out.set(recs.subarray(i * RECORD_BYTES, j * RECORD_BYTES), o);
    o += (j - i) * RECORD_BYTES;
    i = j;
  }
  return o;
}

// Stored page forms are built in shared scratch chunks, not in an array each (see ScratchChunks): lmdb also looks
// up each new buffer's address, which cost more than encoding the page.
const pageChunks = new ScratchChunks();

// ---- the page tree cache ----

/** One context's cached pages, valid while the stored root value equals `stored`. */
interface CachedContext {
  id: string;
  /**
   * The stored root value (merkle-log.ts) the cached pages belong to (NO_ENTRIES: the context has none);
   * undefined while an update is in flight or after a failed one.
   */
  stored: Uint8Array | undefined;
  top: Page | undefined;
  /** Pages changed since the last checkpoint: the next checkpoint writes them. */
  unflushed: Page[];
  bytes: number;
}

/** What `stored` is for a context without entries (nothing stored under its id). */
const NO_ENTRIES = new Uint8Array(0);

/** Default cap on the page tree cache, in bytes (records, keys and per-page overhead, estimated). */
export const DEFAULT_TREE_CACHE_BYTES = 256 * 1024 * 1024;
let capBytes = DEFAULT_TREE_CACHE_BYTES;
let totalBytes = 0;
// Least recently used first (a Map iterates in insertion order; a use re-inserts).
const contexts = new Map<string, CachedContext>();

function dropContext(ctx: CachedContext): void {
  totalBytes -= ctx.bytes;
  ctx.bytes = 0;
  ctx.top = undefined;
  ctx.unflushed = [];
  ctx.stored = undefined;
}

/** Writes `pages` to the store in their current form (an empty page is deleted) and clears their marks. */
function writePages(txn: KvTxn, pages: readonly Page[]): void {
  for (const page of pages) {
    page.unflushed = false;
    if (page.bitmap === 0) {
      txn.del('merkle', page.key);
    } else {
      // The stored form goes through scratch memory: the store copies it (LMDB within put), nothing keeps it.
      const out = pageChunks.take(2 + popcount15(page.bitmap) * RECORD_BYTES);
      encodeInto(page, out);
      txn.put('merkle', page.key, out);
    }
  }
}

/**
 * A checkpoint of an evicted context, in the transaction of the update that evicts it, so that its next update
 * (or a restart) does not have to rebuild its logged keys. Only while its stored value, as this transaction
 * sees it, is the one the cache was left at (a rolled-back update leaves another one): else it is just dropped.
 */
function writeBackEvicted(ctx: CachedContext, txn: KvTxn): void {
  if (ctx.unflushed.length === 0 || ctx.stored === undefined || ctx.stored.length <= ROOT_BYTES) return;
  const id = new Uint8Array(Buffer.from(ctx.id, 'latin1'));
  const stored = txn.get('merkle', id);
  if (stored === undefined || !sameValue(stored, ctx.stored)) return;
  writePages(txn, ctx.unflushed);
  txn.put('merkle', id, stored.slice(0, ROOT_BYTES));
}

/**
 * Evicts least recently used contexts (then, if still over, `keep`'s own pages) until the cache fits its cap;
 * an evicted context's changed pages are written back in `txn` (the evicting update's transaction).
 */
function enforceCap(keep: CachedContext, txn?: KvTxn): void {
  if (totalBytes <= capBytes) return;
  for (const ctx of contexts.values()) {
    if (totalBytes <= capBytes) return;
    if (ctx === keep) continue;
    try {
      if (txn !== undefined) writeBackEvicted(ctx, txn);
    } finally {
      dropContext(ctx);
      contexts.delete(ctx.id);
      totalBytes -= CONTEXT_OVERHEAD_BYTES;
    }
  }
  if (totalBytes > capBytes) {
    // One context larger than the cap: start it over (it refills along the paths it uses). With pages not yet
    // written back it is dropped entirely instead (the store's pages are older: the next update rebuilds).
    const stored = keep.unflushed.length === 0 ? keep.stored : undefined;
    dropContext(keep);
    keep.stored = stored;
  }
}

/**
 * Sets the page tree cache's cap in bytes (0 disables caching across transactions) and evicts down to it.
 * The default is DEFAULT_TREE_CACHE_BYTES. Returns the previous cap.
 */
export function setTreeCacheLimit(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new HostlinkError('usage', `tree cache limit ${bytes}: must be a whole number of bytes >= 0`);
  const previous = capBytes;
  capBytes = bytes;
  for (const ctx of contexts.values()) dropContext(ctx);
  contexts.clear();
  totalBytes = 0;
  return previous;
}

/** Bytes the page tree cache holds now and its cap (for tests and metrics). */
export function treeCacheUsage(): { bytes: number; cap: number; contexts: number } {
  return { bytes: totalBytes, cap: capBytes, contexts: contexts.size };
}

function sameValue(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Node records of one context addressed by (depth, path), for one update; pages come from the cache or the txn. */
export class NodePages {
  private readonly ctx: CachedContext;
  private readonly dirtyPages: Page[] = [];
  private slot = 0;

  /**
   * Whether the cached pages were reused: they are the tree of the stored root. Otherwise the pages come from
   * the store, which holds the tree of the checkpoint root: the caller rebuilds the logged keys' paths.
   */
  readonly reused: boolean;

  /**
   * Opens the context's pages for an update, given its stored root value as read in `txn` (merkle-log.ts;
   * undefined for a context without entries). Until commit() the cache holds nothing valid for this context,
   * so an update that throws leaves no trace in it.
   */
  constructor(
    private readonly txn: KvTxn,
    private readonly contextId: Uint8Array,
    stored: Uint8Array | undefined,
    /** Pages of this update only, read from the store, neither taken from nor left in the cache (checks). */
    private readonly detached = false,
  ) {
    const id = latin1(contextId);
    if (detached) {
      this.reused = false;
      this.ctx = { id, stored: undefined, top: undefined, unflushed: [], bytes: 0 };
      return;
    }
    let ctx = contexts.get(id);
    if (ctx === undefined) {
      ctx = { id, stored: undefined, top: undefined, unflushed: [], bytes: 0 };
      contexts.set(id, ctx);
      totalBytes += CONTEXT_OVERHEAD_BYTES;
    }
    this.reused = ctx.stored !== undefined && sameValue(ctx.stored, stored ?? NO_ENTRIES);
    if (!this.reused) dropContext(ctx);
    // Not valid again before commit(): a throw in between leaves the pages unusable (dropped on next use).
    ctx.stored = undefined;
    this.ctx = ctx;
  }

  /** Whether this context's pages, with the update's changes, are over the cache's cap on their own. */
  get overCap(): boolean {
    return this.ctx.bytes + CONTEXT_OVERHEAD_BYTES > capBytes;
  }

  /** The record at depth `depth` on `path` (any 32 bytes whose first `depth` bits are the path). */
  get(depth: number, path: Uint8Array): Uint8Array | undefined {
    const page = this.locate(depth, path);
    return slotOf(page, this.slot);
  }

  put(depth: number, path: Uint8Array, rec: Uint8Array): void {
    const page = this.locate(depth, path);
    page.slots[this.slot] = rec;
    this.touch(page);
  }

  del(depth: number, path: Uint8Array): void {
    const page = this.locate(depth, path);
    if (slotOf(page, this.slot) === undefined) return;
    page.slots[this.slot] = null;
    this.touch(page);
  }

  /**
   * Applies the update's changes to the cached pages (in place) and marks those pages for the next
   * checkpoint. Nothing is written to the store: writeBack() does that.
   */
  apply(): void {
    // First every changed record into the staging area (they may be views into pages), then into the pages.
    let n = 0;
    for (const page of this.dirtyPages) for (const s of page.slots) if (s !== undefined && s !== null) n++;
    if (staging.length < n * RECORD_BYTES) staging = new Uint8Array(n * RECORD_BYTES * 2);
    let o = 0;
    for (const page of this.dirtyPages) {
      for (const s of page.slots) {
        if (s === undefined || s === null) continue;
        staging.set(s, o);
        o += RECORD_BYTES;
      }
    }
    o = 0;
    for (const page of this.dirtyPages) {
      const slots = page.slots;
      for (let i = 0; i < SLOTS; i++) {
        const s = slots[i];
        if (s === undefined) continue;
        slots[i] = undefined;
        if (s === null) {
          page.bitmap &= ~(1 << i);
          continue;
        }
        if (page.recs === undefined) {
          page.recs = new Uint8Array(FULL_PAGE_BYTES);
          const cost = pageCost(page.key, page.recs);
          this.charge(cost - page.cost);
          page.cost = cost;
        }
        page.recs.set(staging.subarray(o, o + RECORD_BYTES), i * RECORD_BYTES);
        o += RECORD_BYTES;
        page.bitmap |= 1 << i;
      }
      page.dirty = false;
      if (!page.unflushed) {
        page.unflushed = true;
        this.ctx.unflushed.push(page);
      }
    }
    this.dirtyPages.length = 0;
  }

  /** The checkpoint: writes every page changed since the last one (and applied) to the store. */
  writeBack(): void {
    writePages(this.txn, this.ctx.unflushed);
    this.ctx.unflushed = [];
  }

  /**
   * The update is done and applied: the cache now describes the tree whose stored root value is `stored`
   * (undefined: no entries). Without this call (a throw, or `keep` false) the context's pages are not reused.
   */
  commit(stored: Uint8Array | undefined, keep = true): void {
    if (this.detached) return;
    if (capBytes === 0) {
      dropContext(this.ctx);
      contexts.delete(this.ctx.id);
      totalBytes -= CONTEXT_OVERHEAD_BYTES;
      return;
    }
    if (!keep) {
      dropContext(this.ctx);
      enforceCap(this.ctx, this.txn);
      return;
    }
    this.ctx.stored = stored ?? NO_ENTRIES;
    contexts.delete(this.ctx.id); // most recently used last
    contexts.set(this.ctx.id, this.ctx);
    enforceCap(this.ctx, this.txn);
  }

  private charge(bytes: number): void {
    this.ctx.bytes += bytes;
    if (!this.detached) totalBytes += bytes;
  }

  private touch(page: Page): void {
    if (page.dirty) return;
    page.dirty = true;
    this.dirtyPages.push(page);
  }

  private load(depth: number, path: Uint8Array): Page {
    const key = pageKey(this.contextId, depth, path);
    const page = loadPage(key, this.txn.get('merkle', key));
    this.charge(page.cost);
    return page;
  }

  /** The page holding (depth, path); sets this.slot to the node's slot in it. */
  private locate(depth: number, path: Uint8Array): Page {
    const pageDepth = depth - (depth % PAGE_LEVELS);
    let bits = 0;
    for (let i = pageDepth; i < depth; i++) bits = (bits << 1) | bitAt(path, i);
    this.slot = (1 << (depth - pageDepth)) - 1 + bits;
    let page = this.ctx.top ?? (this.ctx.top = this.load(0, path));
    // Down the page tree: each level is chosen by the next 4 bits of the path (a nibble of a byte).
    for (let d = 0; d < pageDepth; d += PAGE_LEVELS) {
      const nibble = (path[d >> 3]! >> (d & 4 ? 0 : 4)) & 0x0f;
      const children = page.children ?? (page.children = new Array<Page | undefined>(16).fill(undefined));
      page = children[nibble] ?? (children[nibble] = this.load(d + PAGE_LEVELS, path));
    }
    return page;
  }
}
