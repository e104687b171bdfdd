/**
 * Where the Merkle tree's node records live: grouped into pages of 4 levels, so an update that walks ~log2(n)
 * levels reads and writes ~log2(n)/4 database records. (One record per node cost 3-4x more LMDB puts and dirty
 * pages per commit; docs/state.md has the figures.)
 *
 * A page holds the nodes at depths d..d+3 below one path prefix of length d (d a multiple of 4): up to
 * 1 + 2 + 4 + 8 = 15 slots, slot = 2^r - 1 + (the r path bits after d) for a node at depth d + r.
 *   key:   contextId ‖ u16be(d) ‖ the first d bits of the path, packed (trailing bits zero)
 *   value: u16be(bitmap of occupied slots, bit i = slot i) ‖ the 65-byte records of those slots, in slot order
 * Pages are read once per update, changed in memory and written back (or deleted when empty) by flush().
 */
import { HostlinkError } from '../../errors.js';
import type { KvTxn } from './kv.js';

export const RECORD_BYTES = 65;
const PAGE_LEVELS = 4;
const SLOTS = 15;
const CONTEXT_ID_BYTES = 32;

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
  /** The stored page, decoded lazily: slot i of `raw` is used until `slots[i]` says otherwise. */
  raw: Uint8Array | undefined;
  bitmap: number;
  /** undefined: as in raw; null: empty; else the record. */
  slots: (Uint8Array | null | undefined)[];
  dirty: boolean;
}

function loadPage(key: Uint8Array, raw: Uint8Array | undefined): Page {
  let bitmap = 0;
  if (raw !== undefined) {
    bitmap = raw.length >= 2 ? (raw[0]! << 8) | raw[1]! : 0;
    let n = 0;
    for (let i = 0; i < SLOTS; i++) if (bitmap & (1 << i)) n++;
    if (bitmap === 0 || bitmap >> SLOTS || raw.length !== 2 + n * RECORD_BYTES) {
      throw new HostlinkError('store', 'corrupt state tree page');
    }
  }
  return { key, raw, bitmap, slots: new Array<undefined>(SLOTS).fill(undefined), dirty: false };
}

function slotOf(page: Page, i: number): Uint8Array | undefined {
  const s = page.slots[i];
  if (s !== undefined) return s ?? undefined;
  if (page.raw === undefined || !(page.bitmap & (1 << i))) return undefined;
  let o = 2;
  for (let j = 0; j < i; j++) if (page.bitmap & (1 << j)) o += RECORD_BYTES;
  return (page.slots[i] = page.raw.subarray(o, o + RECORD_BYTES));
}

function encodePage(page: Page): Uint8Array | undefined {
  const recs: Uint8Array[] = [];
  let bitmap = 0;
  for (let i = 0; i < SLOTS; i++) {
    const rec = slotOf(page, i);
    if (rec === undefined) continue;
    bitmap |= 1 << i;
    recs.push(rec);
  }
  if (recs.length === 0) return undefined;
  const out = new Uint8Array(2 + recs.length * RECORD_BYTES);
  out[0] = bitmap >> 8;
  out[1] = bitmap & 0xff;
  recs.forEach((rec, j) => out.set(rec, 2 + j * RECORD_BYTES));
  return out;
}

/** Node records of one context addressed by (depth, path), cached per page for one update. */
export class NodePages {
  private readonly pages = new Map<string, Page>();
  // The page last used at each page depth: consecutive accesses mostly stay on one path.
  private readonly recent: (Page | undefined)[] = [];
  private slot = 0;

  constructor(
    private readonly txn: KvTxn,
    private readonly contextId: Uint8Array,
  ) {}

  /** The record at depth `depth` on `path` (any 32 bytes whose first `depth` bits are the path). */
  get(depth: number, path: Uint8Array): Uint8Array | undefined {
    const page = this.locate(depth, path);
    return slotOf(page, this.slot);
  }

  put(depth: number, path: Uint8Array, rec: Uint8Array): void {
    const page = this.locate(depth, path);
    page.slots[this.slot] = rec;
    page.dirty = true;
  }

  del(depth: number, path: Uint8Array): void {
    const page = this.locate(depth, path);
    if (slotOf(page, this.slot) === undefined) return;
    page.slots[this.slot] = null;
    page.dirty = true;
  }

  /** Writes back the pages changed since the last flush. */
  flush(): void {
    for (const page of this.pages.values()) {
      if (!page.dirty) continue;
      const bytes = encodePage(page);
      if (bytes === undefined) this.txn.del('merkle', page.key);
      else this.txn.put('merkle', page.key, bytes);
      page.dirty = false;
    }
  }

  /** The page holding (depth, path); sets this.slot to the node's slot in it. */
  private locate(depth: number, path: Uint8Array): Page {
    const pageDepth = depth - (depth % PAGE_LEVELS);
    let bits = 0;
    for (let i = pageDepth; i < depth; i++) bits = (bits << 1) | bitAt(path, i);
    this.slot = (1 << (depth - pageDepth)) - 1 + bits;
    const level = pageDepth / PAGE_LEVELS;
    const last = this.recent[level];
    if (last !== undefined && onPath(last.key, pageDepth, path)) return last;
    const key = pageKey(this.contextId, pageDepth, path);
    const id = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
    let page = this.pages.get(id);
    if (page === undefined) {
      page = loadPage(key, this.txn.get('merkle', key));
      this.pages.set(id, page);
    }
    this.recent[level] = page;
    return page;
  }
}

/** Whether the page key's path (its first `depth` bits) is a prefix of `path`. */
function onPath(key: Uint8Array, depth: number, path: Uint8Array): boolean {
  const full = depth >> 3;
  for (let i = 0; i < full; i++) if (key[CONTEXT_ID_BYTES + 2 + i] !== path[i]) return false;
  if (depth & 7) {
    const mask = 0xff << (8 - (depth & 7));
    if ((key[CONTEXT_ID_BYTES + 2 + full]! & mask) !== (path[full]! & mask & 0xff)) return false;
  }
  return true;
}
