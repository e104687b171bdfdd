/**
 * Contract state per context and its Merkle root, updated incrementally (docs/state.md has the definition and
 * worked examples).
 *
 * The tree is a binary radix tree over the 256 bits of kh = sha256(key), most significant bit first:
 *   - an empty subtree hashes to 32 zero bytes;
 *   - a subtree holding one entry is that entry's leaf, wherever it sits:  H(0x00 ‖ kh ‖ sha256(value));
 *   - a subtree holding two or more entries is an inner node:             H(0x01 ‖ left ‖ right).
 * So the root depends only on the set of entries, and an update touches one path of about log2(n) nodes.
 *
 * Each node is stored as its 65-byte preimage (the "record"), so a node's hash is sha256(record), an inner
 * record carries both child hashes (no sibling reads on the way up), and a leaf record says which key it is.
 * Records are grouped four levels to a page in the 'merkle' table (merkle-pages.ts); the root hash also lives
 * at contextId alone, so stateRoot() is one read.
 *
 * Pages are written back only at a checkpoint (every few dozen changed keys): in between, each commit stores the
 * root together with the checkpoint's root and the keys changed since (merkle-log.ts), and the cache holds the
 * changed pages. Invariant, after every commit (so after any crash): the stored pages are the canonical tree of
 * the checkpoint root, the logged keys include every key whose entry differs from that tree, and the stored
 * root is the root of the 'state' entries. Without the cached pages (a new process, an evicted context, a
 * rolled-back or failed write) an update first rebuilds them: the stored pages plus each logged key's current
 * entry, checked against both roots (recover()).
 */
import { HostlinkError } from '../../errors.js';
import { bytesEqual, concatBytes, ScratchChunks } from './bytes.js';
import { HASH_BYTES } from './hash.js';
import type { KvReader, KvTxn } from './kv.js';
import { checkpointRootOf, checkStoredRootValue, loggedKeyAt, loggedKeyCount, nextStoredValue, rootOf } from './merkle-log.js';
import { bitAt, NodePages, RECORD_BYTES } from './merkle-pages.js';
import { hashChain, hashRecordInto, leafRecordInto, sha256Into } from './sha256-record.js';
import { latin1 } from '../../latin1.js';

export { setStateLogLimit } from './merkle-log.js';

export { computeRootFromScratch } from './merkle-reference.js';

export const CONTEXT_ID_BYTES = 32;
/** A storage change: a new value, or null to delete the key. */
export type StateChange = readonly [key: Uint8Array, value: Uint8Array | null];

const LEAF = 0x00;
const INNER = 0x01;
const MAX_DEPTH = 256;
const ZERO = new Uint8Array(HASH_BYTES);

/** The root of a context without entries: 32 zero bytes (a fresh array each call). */
export function emptyRoot(): Uint8Array {
  return new Uint8Array(HASH_BYTES);
}

function checkContextId(contextId: Uint8Array): void {
  if (contextId.length !== CONTEXT_ID_BYTES) {
    throw new HostlinkError('usage', `context id of ${contextId.length} bytes (must be ${CONTEXT_ID_BYTES})`);
  }
}

// ---- 'state' table: contextId ‖ sha256(key) -> u32be(key length) ‖ key ‖ value ----

function encodeEntry(key: Uint8Array, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + key.length + value.length);
  // Byte by byte, not through a DataView: reading `.buffer` of an entry of at most 64 bytes would move it out of
  // V8's heap (src/latin1.ts says why that costs).
  const n = key.length;
  out[0] = n >>> 24;
  out[1] = (n >>> 16) & 0xff;
  out[2] = (n >>> 8) & 0xff;
  out[3] = n & 0xff;
  out.set(key, 4);
  out.set(value, 4 + key.length);
  return out;
}

/** A 'state' table value as [key, value]; HostlinkError('store') when its key length does not fit. */
export function decodeEntry(bytes: Uint8Array): [Uint8Array, Uint8Array] {
  const n = bytes.length < 4 ? -1 : new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  if (n < 0 || 4 + n > bytes.length) throw new HostlinkError('store', 'corrupt state entry (bad key length)');
  return [bytes.subarray(4, 4 + n), bytes.subarray(4 + n)];
}

// ---- incremental update ----

const isZero = (h: Uint8Array): boolean => {
  for (let i = 0; i < h.length; i++) if (h[i] !== 0) return false;
  return true;
};

/** A copy of `path` with bit i set to b (the path of a sibling). */
function withBit(path: Uint8Array, i: number, b: number): Uint8Array {
  const out = Uint8Array.from(path);
  const mask = 0x80 >> (i & 7);
  out[i >> 3] = b ? out[i >> 3]! | mask : out[i >> 3]! & ~mask;
  return out;
}

/** A node: its record (the hash preimage) and its hash. */
interface TreeNode {
  rec: Uint8Array;
  hash: Uint8Array;
}
/** One key's change: the new leaf record, or null for a delete. */
interface Op {
  kh: Uint8Array;
  leaf: Uint8Array | null;
}
/** A child position after an update (`path` reaches it at depth + 1). */
type Side =
  | { changed: false; hash: Uint8Array }
  | { changed: true; node: TreeNode | undefined; existed: boolean; path: Uint8Array };

// Records made during an update are views into shared scratch chunks (see ScratchChunks). They are short-lived:
// flush() copies records into the page values it writes and lets go of them, and a root leaving applyDelta is copied.
const records = new ScratchChunks();
const scratch = (n: number): Uint8Array => records.take(n);

// (A 32-byte hash is small enough for V8's heap: a fresh array is cheaper than a view.)
function leafNode(rec: Uint8Array): TreeNode {
  const hash = new Uint8Array(HASH_BYTES);
  hashRecordInto(rec, hash, 0);
  return { rec, hash };
}

function innerNode(left: Uint8Array, right: Uint8Array): TreeNode {
  const rec = scratch(RECORD_BYTES);
  rec[0] = INNER;
  rec.set(left, 1);
  rec.set(right, 1 + HASH_BYTES);
  const hash = new Uint8Array(HASH_BYTES);
  hashRecordInto(rec, hash, 0);
  return { rec, hash };
}

/** The leaf record 0x00 ‖ sha256(key) ‖ sha256(value), in scratch memory (its bytes 1..33 are the key hash). */
function leafRecord(key: Uint8Array, value: Uint8Array): Uint8Array {
  const rec = scratch(RECORD_BYTES);
  leafRecordInto(key, value, rec);
  return rec;
}

/** sha256(key) in scratch memory. */
function keyHash(key: Uint8Array): Uint8Array {
  const kh = scratch(HASH_BYTES);
  sha256Into(key, kh, 0);
  return kh;
}

const CHAIN_SLOTS = new Uint8Array(MAX_DEPTH + 2);

/**
 * The records of a one-key update from the lowest changed node up to the root, back to back in scratch memory,
 * hashed together at the end (one call into the native SHA-256 for the whole path). Each record after the
 * first is an inner node whose child on the path is the record before it: its slot for that child is filled
 * by the hashing. Records are handed to the pages before they are hashed; the pages copy them only at flush().
 */
class Chain {
  private readonly recs: Uint8Array;
  private count = 0;

  /** A chain whose first record sits at `depth` (so it ends with at most depth + 1 records, at the root). */
  constructor(depth: number) {
    this.recs = scratch((depth + 1) * RECORD_BYTES);
  }

  /** The first record: a copy of `rec`. */
  first(rec: Uint8Array): void {
    this.recs.set(rec, 0);
    this.count = 1;
  }

  /** The first record: the inner node with `child` on side `bit` and `other` on the other side. */
  firstInner(bit: number, child: Uint8Array, other: Uint8Array): void {
    this.recs[0] = INNER;
    this.recs.set(child, 1 + bit * HASH_BYTES);
    this.recs.set(other, 1 + (1 - bit) * HASH_BYTES);
    this.count = 1;
  }

  /** Appends the parent of the last record: it is on side `bit`, the hash at `from[fromAt..+32)` on the other side. */
  parent(bit: number, from: Uint8Array, fromAt = 0): void {
    const at = this.count * RECORD_BYTES;
    const recs = this.recs;
    recs[at] = INNER;
    const o = at + 1 + (1 - bit) * HASH_BYTES;
    for (let k = 0; k < HASH_BYTES; k++) recs[o + k] = from[fromAt + k]!;
    CHAIN_SLOTS[this.count] = 1 + bit * HASH_BYTES;
    this.count++;
  }

  /** The last record so far (a view: its child slot is filled by finish()). */
  last(): Uint8Array {
    return this.recs.subarray((this.count - 1) * RECORD_BYTES, this.count * RECORD_BYTES);
  }

  /** Hashes the chain; the last record with its hash. */
  finish(): TreeNode {
    const hash = new Uint8Array(HASH_BYTES);
    hashChain(this.recs, this.count, CHAIN_SLOTS, hash);
    return { rec: this.last(), hash };
  }
}

class TreeUpdate {
  readonly nodes: NodePages;

  /** The context's pages for an update, given its stored root value (undefined: no entries); see recover(). */
  constructor(txn: KvTxn, contextId: Uint8Array, stored: Uint8Array | undefined, detached = false) {
    this.nodes = new NodePages(txn, contextId, stored, detached);
    if (!this.nodes.reused && stored !== undefined && loggedKeyCount(stored) > 0) recover(this, txn, contextId, stored);
  }

  /** The stored node at (depth, path) whose hash its parent records as `hash`. */
  read(depth: number, path: Uint8Array, hash: Uint8Array): TreeNode {
    return { rec: this.record(depth, path), hash };
  }

  /** The stored record at (depth, path), which its parent says is there. */
  record(depth: number, path: Uint8Array): Uint8Array {
    const rec = this.nodes.get(depth, path);
    if (rec === undefined || (rec[0] !== LEAF && rec[0] !== INNER)) {
      throw new HostlinkError('store', 'corrupt state tree: a node is missing or malformed');
    }
    return rec;
  }

  /**
   * The subtree at (depth, path) after applying `ops` (all under that path) to `existing`. Writes every record
   * strictly below the position; the caller writes or deletes the record at the position itself.
   */
  update(depth: number, path: Uint8Array, existing: TreeNode | undefined, ops: Op[]): TreeNode | undefined {
    if (existing === undefined || existing.rec[0] === LEAF) {
      // Nothing is stored below an empty position or a leaf: rebuild from the entries that remain.
      const leaves: Uint8Array[] = [];
      for (const op of ops) if (op.leaf !== null) leaves.push(op.leaf);
      if (existing !== undefined) {
        const kh = existing.rec.subarray(1, 1 + HASH_BYTES);
        if (!ops.some((op) => bytesEqual(op.kh, kh))) leaves.push(existing.rec);
      }
      return this.build(depth, leaves);
    }
    const split: [Op[], Op[]] = [[], []];
    for (const op of ops) split[bitAt(op.kh, depth)]!.push(op);
    const sides: Side[] = [];
    for (const bit of [0, 1]) {
      const sideOps = split[bit]!;
      const old = existing.rec.subarray(1 + bit * HASH_BYTES, 1 + (bit + 1) * HASH_BYTES);
      if (sideOps.length === 0) {
        sides.push({ changed: false, hash: old });
        continue;
      }
      const childPath = sideOps[0]!.kh;
      const before = isZero(old) ? undefined : this.read(depth + 1, childPath, old);
      const node = this.update(depth + 1, childPath, before, sideOps);
      // Deleting absent keys under an empty side leaves it as it was.
      if (before === undefined && node === undefined) sides.push({ changed: false, hash: ZERO });
      else sides.push({ changed: true, node, existed: before !== undefined, path: childPath });
    }
    const hashOf = (s: Side): Uint8Array => (s.changed ? (s.node?.hash ?? ZERO) : s.hash);
    const drop = (s: Side): void => {
      if (s.changed && s.existed) this.nodes.del(depth + 1, s.path);
    };
    const empty0 = isZero(hashOf(sides[0]!));
    const empty1 = isZero(hashOf(sides[1]!));
    if (empty0 && empty1) {
      sides.forEach(drop);
      return undefined;
    }
    if (empty0 !== empty1) {
      // One side left. If it holds a single leaf, this whole subtree is that leaf: move it up.
      const bit = empty0 ? 1 : 0;
      const s = sides[bit]!;
      const other = sides[1 - bit]!;
      if (s.changed || other.changed) {
        const childPath = s.changed ? s.path : withBit(path, depth, bit);
        const node = s.changed ? s.node! : this.read(depth + 1, childPath, s.hash);
        if (node.rec[0] === LEAF) {
          if (!s.changed || s.existed) this.nodes.del(depth + 1, childPath);
          drop(other);
          return node;
        }
      }
    }
    for (const s of sides) {
      if (!s.changed) continue;
      if (s.node !== undefined) this.nodes.put(depth + 1, s.path, s.node.rec);
      else drop(s);
    }
    return innerNode(hashOf(sides[0]!), hashOf(sides[1]!));
  }

  /** The subtree at `depth` holding exactly `leaves` (leaf records, distinct keys); writes the records below it. */
  build(depth: number, leaves: Uint8Array[]): TreeNode | undefined {
    if (leaves.length === 0) return undefined;
    if (leaves.length === 1) return leafNode(leaves[0]!);
    if (depth >= MAX_DEPTH) throw new HostlinkError('internal', 'two state keys with the same sha-256');
    const halves: [Uint8Array[], Uint8Array[]] = [[], []];
    for (const leaf of leaves) halves[bitAt(leaf, depth + 8)]!.push(leaf); // kh starts after the type byte
    const hashes = halves.map((half) => {
      const node = this.build(depth + 1, half);
      if (node === undefined) return ZERO;
      this.nodes.put(depth + 1, half[0]!.subarray(1, 1 + HASH_BYTES), node.rec);
      return node.hash;
    });
    return innerNode(hashes[0]!, hashes[1]!);
  }
}

/** Whether the 32 bytes of `rec` at `at` are all zero (an empty child). */
function zeroAt(rec: Uint8Array, at: number): boolean {
  for (let i = at; i < at + HASH_BYTES; i++) if (rec[i] !== 0) return false;
  return true;
}

/** The hash of child `bit` in an inner record (a view). */
const childHash = (rec: Uint8Array, bit: number): Uint8Array => rec.subarray(1 + bit * HASH_BYTES, 1 + (bit + 1) * HASH_BYTES);

/** Whether leaf record `rec` holds key hash `kh`. */
function sameKeyHash(rec: Uint8Array, kh: Uint8Array): boolean {
  for (let i = 0; i < HASH_BYTES; i++) if (rec[1 + i] !== kh[i]) return false;
  return true;
}

/** The first bit index >= `from` where two key hashes differ, or MAX_DEPTH when they are equal. */
function firstDifferentBit(a: Uint8Array, b: Uint8Array, from: number): number {
  for (let i = from; i < MAX_DEPTH; i++) if (bitAt(a, i) !== bitAt(b, i)) return i;
  return MAX_DEPTH;
}

/**
 * A one-key delta (what most executions commit): the same tree as TreeUpdate.update gives, computed by walking
 * down the key's path once and back up, without the batch bookkeeping. Returns 'unchanged' when the tree stays
 * as it is (a rewrite with the same value, or a delete of an absent key): nothing is written then.
 */
function updateOne(tree: TreeUpdate, oldRoot: Uint8Array | undefined, kh: Uint8Array, leaf: Uint8Array | null): TreeNode | undefined | 'unchanged' {
  // Down: the inner records on the path, then what sits at the end of it (nothing, or a leaf).
  const inner: Uint8Array[] = [];
  let endRec: Uint8Array | undefined = oldRoot === undefined ? undefined : tree.record(0, kh);
  while (endRec !== undefined && endRec[0] === INNER) {
    const at = 1 + bitAt(kh, inner.length) * HASH_BYTES;
    inner.push(endRec);
    endRec = zeroAt(endRec, at) ? undefined : tree.record(inner.length, kh);
  }
  const p = inner.length; // the depth of the position the key's change lands on
  // What sits at p (its hash is where its parent, or the stored root, says).
  const end: TreeNode | undefined =
    endRec === undefined ? undefined : { rec: endRec, hash: p === 0 ? oldRoot! : childHash(inner[p - 1]!, bitAt(kh, p - 1)) };
  const sameKey = end !== undefined && sameKeyHash(end.rec, kh);

  // The new subtree at position p (records strictly below p are written here): nothing, a node whose hash is
  // known, or the start of the chain of records hashed together once the walk reaches the root.
  let node: TreeNode | undefined;
  let chain: Chain | undefined;
  if (leaf === null) {
    if (!sameKey) return 'unchanged';
    node = undefined;
  } else if (end === undefined || sameKey) {
    if (sameKey && bytesEqual(end!.rec, leaf)) return 'unchanged';
    chain = new Chain(p);
    chain.first(leaf);
  } else {
    // Another key's leaf sits here: both go down to where their hashes part, under one-sided inner nodes.
    const otherKh = end.rec.subarray(1, 1 + HASH_BYTES);
    const split = firstDifferentBit(kh, otherKh, p);
    if (split >= MAX_DEPTH) throw new HostlinkError('internal', 'two state keys with the same sha-256');
    chain = new Chain(split + 1);
    chain.first(leaf);
    tree.nodes.put(split + 1, kh, chain.last());
    tree.nodes.put(split + 1, otherKh, end.rec);
    chain.parent(bitAt(kh, split), end.hash);
    for (let d = split - 1; d >= p; d--) {
      tree.nodes.put(d + 1, kh, chain.last());
      chain.parent(bitAt(kh, d), ZERO);
    }
  }

  // Up: rehash each inner node on the path; a subtree left with a single leaf becomes that leaf (moves up).
  for (let d = p - 1; d >= 0; d--) {
    const parent = inner[d]!;
    const bit = bitAt(kh, d);
    const sibAt = 1 + (1 - bit) * HASH_BYTES;
    if (chain !== undefined) {
      // Once the path holds an inner node it does up to the root: no leaf moves up past it.
      tree.nodes.put(d + 1, kh, chain.last());
      chain.parent(bit, parent, sibAt);
      continue;
    }
    const sibHash = parent.subarray(sibAt, sibAt + HASH_BYTES);
    const sibEmpty = zeroAt(parent, sibAt);
    // Position d + 1 on the path held a record before this change unless it was the empty end of the walk.
    const existed = d + 1 < p || end !== undefined;
    if (node === undefined) {
      if (existed) tree.nodes.del(d + 1, kh);
      if (sibEmpty) continue; // (not in a canonical tree: an inner node holds two entries or more)
      const sibPath = withBit(kh, d, 1 - bit);
      const sib = tree.read(d + 1, sibPath, sibHash);
      if (sib.rec[0] === LEAF) {
        tree.nodes.del(d + 1, sibPath);
        node = sib;
      } else {
        chain = new Chain(d);
        chain.firstInner(bit, ZERO, sibHash);
      }
      continue;
    }
    if (node.rec[0] === LEAF && sibEmpty) {
      if (existed) tree.nodes.del(d + 1, kh);
      continue;
    }
    tree.nodes.put(d + 1, kh, node.rec);
    chain = new Chain(d);
    chain.firstInner(bit, node.hash, sibHash);
  }
  return chain !== undefined ? chain.finish() : node;
}

/**
 * Deltas of up to this many keys are applied one key at a time (updateOne per key, each walking the tree the
 * previous one left): keys seldom share more than the top levels of their paths, so rehashing those once per key
 * costs less than the batch walk's bookkeeping. Measured on 10k keys (median µs per delta, batch walk -> per
 * key): 2 keys 95 -> 84, 4 keys 156 -> 128, 32 keys 937 -> 752, 100 keys 2240 -> 2067, 1,000 keys about even;
 * larger deltas (a first load) share most of their paths and keep the batch walk.
 */
const SMALL_DELTA = 64;

/** The tree after applying `ops` one after another with updateOne; the same tree as TreeUpdate.update gives. */
function updateEach(tree: TreeUpdate, oldRoot: Uint8Array | undefined, ops: Iterable<Op>): TreeNode | undefined {
  let root: TreeNode | undefined = oldRoot === undefined ? undefined : tree.read(0, ZERO, oldRoot);
  for (const op of ops) {
    const next = updateOne(tree, root?.hash, op.kh, op.leaf);
    if (next === 'unchanged') continue;
    root = next;
    // The next key's walk starts from the root record this one left (an emptied tree's walk reads none; the
    // caller removes the root record if the tree ends empty).
    if (root !== undefined) tree.nodes.put(0, ZERO, root.rec);
  }
  return root;
}

const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/**
 * Rebuilds the context's current tree in the (uncached) pages: the store holds the tree of the checkpoint root,
 * and each logged key gets its current entry from the 'state' table. Both roots are checked: a mismatch means
 * the stored pages, the log or the entries are not what the commits wrote, an internal error naming the context.
 * The rebuilt pages stay marked for the next checkpoint.
 */
function recover(tree: TreeUpdate, txn: KvTxn, contextId: Uint8Array, stored: Uint8Array): void {
  const checkpoint = checkpointRootOf(stored);
  let before: TreeNode | undefined;
  if (!isZero(checkpoint)) {
    const rec = tree.nodes.get(0, ZERO);
    const hash = new Uint8Array(HASH_BYTES);
    if (rec !== undefined) hashRecordInto(rec, hash, 0);
    if (rec === undefined || !bytesEqual(hash, checkpoint)) {
      throw new HostlinkError('internal', `the stored state tree of context ${hexOf(contextId)} is not the tree of its checkpoint root ${hexOf(checkpoint)}`);
    }
    before = { rec, hash: checkpoint };
  }
  const ops: Op[] = [];
  for (let i = 0, n = loggedKeyCount(stored); i < n; i++) {
    const kh = loggedKeyAt(stored, i);
    const entry = txn.get('state', concatBytes(contextId, kh));
    if (entry === undefined) {
      ops.push({ kh, leaf: null });
      continue;
    }
    const [key, value] = decodeEntry(entry);
    const leaf = leafRecord(key, value);
    if (!sameKeyHash(leaf, kh)) throw new HostlinkError('internal', `state entry of context ${hexOf(contextId)} stored under another key's hash`);
    ops.push({ kh, leaf });
  }
  const after = tree.update(0, ZERO, before, ops);
  if (after === undefined) tree.nodes.del(0, ZERO);
  else tree.nodes.put(0, ZERO, after.rec);
  const root = after?.hash ?? ZERO;
  if (!bytesEqual(root, rootOf(stored))) {
    throw new HostlinkError(
      'internal',
      `the state tree of context ${hexOf(contextId)} rebuilt from its checkpoint and ${ops.length} logged key(s) has root ${hexOf(root)}, but its stored root is ${hexOf(rootOf(stored))}`,
    );
  }
  tree.nodes.apply();
}

/** The stored root value under the context's id (undefined: no entries), checked for shape. */
function storedValue(reader: KvReader, contextId: Uint8Array): Uint8Array | undefined {
  const stored = reader.get('merkle', contextId);
  if (stored !== undefined) checkStoredRootValue(stored, contextId);
  return stored;
}

/**
 * Stores the update's new root (the tree is applied to the pages): with the changed keys logged, or, when the
 * log is full, the cache is off or this context alone outgrows it, as a checkpoint that writes back every page
 * changed since the last one. Returns the stored value.
 */
function storeRoot(tree: TreeUpdate, txn: KvTxn, contextId: Uint8Array, stored: Uint8Array | undefined, root: Uint8Array, khs: readonly Uint8Array[]): Uint8Array {
  let value = tree.nodes.overCap ? undefined : nextStoredValue(stored, root, khs);
  if (value === undefined) {
    tree.nodes.writeBack();
    value = root.slice(); // out of scratch memory: the store may keep the array it is given
  }
  txn.put('merkle', contextId, value);
  return value;
}

/**
 * Applies one execution's storage delta to a context inside `txn`: the 'state' entries, the tree and the
 * stored root. Returns the new root. If a key appears more than once, its last change wins. Deleting an absent
 * key is a no-op.
 */
export function applyDelta(txn: KvTxn, contextId: Uint8Array, changes: readonly StateChange[]): Uint8Array {
  checkContextId(contextId);
  // A one-key delta (the common case) needs no map to find repeated keys.
  const ops = changes.length === 1 ? undefined : new Map<string, Op>();
  let single: Op | undefined;
  const khs: Uint8Array[] = [];
  for (const [key, value] of changes) {
    const leaf = value === null ? null : leafRecord(key, value);
    const kh = leaf === null ? keyHash(key) : leaf.subarray(1, 1 + HASH_BYTES);
    khs.push(kh);
    if (ops === undefined) single = { kh, leaf };
    else ops.set(latin1(kh), { kh, leaf });
  }
  if (ops !== undefined && ops.size === 1) [single] = ops.values();
  const stored = storedValue(txn, contextId);
  const oldRoot = stored === undefined ? undefined : rootOf(stored);
  if (single === undefined && (ops === undefined || ops.size === 0)) return oldRoot?.slice() ?? emptyRoot();
  // Opened (and rebuilt if need be, from the entries as they were) before this delta's entries are written.
  const tree = new TreeUpdate(txn, contextId, stored);
  for (let i = 0; i < changes.length; i++) {
    const [key, value] = changes[i]!;
    const stateKey = concatBytes(contextId, khs[i]!);
    if (value === null) txn.del('state', stateKey);
    else txn.put('state', stateKey, encodeEntry(key, value));
  }
  let after: TreeNode | undefined;
  if (single !== undefined) {
    const one = updateOne(tree, oldRoot, single.kh, single.leaf);
    if (one === 'unchanged') {
      tree.nodes.commit(stored);
      return oldRoot?.slice() ?? emptyRoot();
    }
    after = one;
  } else if (ops!.size <= SMALL_DELTA) {
    after = updateEach(tree, oldRoot, ops!.values());
  } else {
    const before = oldRoot === undefined ? undefined : tree.read(0, ZERO, oldRoot);
    after = tree.update(0, ZERO, before, [...ops!.values()]);
  }
  if (after === undefined) {
    // No entries left: every page goes (a checkpoint), and nothing is stored under the context's id.
    tree.nodes.del(0, ZERO);
    tree.nodes.apply();
    tree.nodes.writeBack();
    tree.nodes.commit(undefined);
    if (stored !== undefined) txn.del('merkle', contextId);
    return emptyRoot();
  }
  // Same root, same entries: the stored tree is already right (e.g. values rewritten unchanged). The pages the
  // walk changed in memory are not applied, so the cache does not keep the context either.
  if (oldRoot !== undefined && bytesEqual(oldRoot, after.hash)) {
    tree.nodes.commit(stored, false);
    return oldRoot.slice();
  }
  tree.nodes.put(0, ZERO, after.rec);
  tree.nodes.apply();
  const changed = single !== undefined ? [single.kh] : [...ops!.values()].map((op) => op.kh);
  tree.nodes.commit(storeRoot(tree, txn, contextId, stored, after.hash, changed));
  return after.hash.slice();
}

/**
 * Writes back the context's tree pages now (a checkpoint), so the stored pages are the current tree and
 * nothing is logged. applyDelta does this by itself when the log is full; this is for a node that wants a
 * checkpoint at a moment of its choosing (before a backup, at shutdown) and for tests.
 */
export function checkpointState(txn: KvTxn, contextId: Uint8Array): void {
  checkContextId(contextId);
  const stored = storedValue(txn, contextId);
  if (stored === undefined || loggedKeyCount(stored) === 0) return;
  const tree = new TreeUpdate(txn, contextId, stored);
  tree.nodes.writeBack();
  const value = rootOf(stored).slice();
  txn.put('merkle', contextId, value);
  tree.nodes.commit(value);
}

/**
 * Rebuilds the context's tree from what is stored, without the page cache (as after a restart): the stored
 * pages, checked against the checkpoint root, plus the logged keys' entries, checked against the stored root.
 * Throws HostlinkError('internal') naming the context if they disagree. Returns how many keys were logged. For
 * tests and consistency checks; reads only.
 */
export function verifyStateTree(reader: KvReader, contextId: Uint8Array): { logged: number } {
  checkContextId(contextId);
  const stored = storedValue(reader, contextId);
  if (stored === undefined) return { logged: 0 };
  const readOnly: KvTxn = {
    get: (t, k) => reader.get(t, k),
    range: (t, p) => reader.range(t, p),
    put: () => {
      throw new HostlinkError('internal', 'verifyStateTree wrote to the store');
    },
    del: () => {
      throw new HostlinkError('internal', 'verifyStateTree wrote to the store');
    },
  };
  const tree = new TreeUpdate(readOnly, contextId, stored, true);
  if (loggedKeyCount(stored) === 0) {
    // No log: the top record itself must hash to the root (recover() checks this against the checkpoint root).
    const hash = new Uint8Array(HASH_BYTES);
    const rec = tree.record(0, ZERO);
    hashRecordInto(rec, hash, 0);
    if (!bytesEqual(hash, rootOf(stored))) throw new HostlinkError('internal', `the stored state tree of context ${hexOf(contextId)} is not the tree of its root`);
  }
  return { logged: loggedKeyCount(stored) };
}

/** The context's current state root (32 zero bytes for a context without entries). */
export function stateRoot(reader: KvReader, contextId: Uint8Array): Uint8Array {
  checkContextId(contextId);
  const stored = storedValue(reader, contextId);
  return stored === undefined ? emptyRoot() : rootOf(stored).slice();
}

export function readState(reader: KvReader, contextId: Uint8Array, key: Uint8Array): Uint8Array | undefined {
  const stored = reader.get('state', stateTableKey(contextId, key));
  return stored === undefined ? undefined : entryValue(stored, key);
}

/**
 * A state value when it holds at most `most` bytes, else its length (nothing copied where the reader can tell);
 * undefined when absent. One lookup, so that a read the gas cannot pay for costs no copy.
 */
export function readStateWithin(reader: KvReader, contextId: Uint8Array, key: Uint8Array, most: number): Uint8Array | number | undefined {
  const tableKey = stateTableKey(contextId, key);
  // An entry is the key's length (u32), the key, then the value.
  const extra = 4 + key.length;
  const stored = reader.getWithin !== undefined ? reader.getWithin('state', tableKey, most + extra) : reader.get('state', tableKey);
  if (stored === undefined) return undefined;
  if (typeof stored === 'number') return stored - extra;
  const value = entryValue(stored, key);
  return value.length > most ? value.length : value;
}

/** Where a context's key is stored: the context id, then sha256(key). */
function stateTableKey(contextId: Uint8Array, key: Uint8Array): Uint8Array {
  checkContextId(contextId);
  const tableKey = new Uint8Array(CONTEXT_ID_BYTES + HASH_BYTES);
  tableKey.set(contextId);
  sha256Into(key, tableKey, CONTEXT_ID_BYTES);
  return tableKey;
}

/** A stored entry's value, after checking the entry is `key`'s. */
function entryValue(stored: Uint8Array, key: Uint8Array): Uint8Array {
  const [storedKey, value] = decodeEntry(stored);
  if (!bytesEqual(storedKey, key)) throw new HostlinkError('internal', 'two state keys with the same sha-256');
  return value;
}

/** The context's entries, ordered by sha256(key) (not by key). */
export function listState(reader: KvReader, contextId: Uint8Array): Iterable<[Uint8Array, Uint8Array]> {
  checkContextId(contextId);
  const entries = reader.range('state', contextId);
  return {
    *[Symbol.iterator]() {
      for (const [, stored] of entries) yield decodeEntry(stored);
    },
  };
}
