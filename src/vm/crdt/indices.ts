/**
 * The derived indices that let a collection be listed and counted without a range scan (the storage has
 * none): which members of a map, set or user storage are visible, and which vector positions hold an element.
 * Both are split into buckets so that a change rewrites one small record, not the whole index:
 *
 * - members: 256 buckets by the first byte of SHA-256(member); the head record holds the visible count and a
 *   256-bit map of the non-empty buckets; each bucket lists its members in byte order.
 * - vector positions: buckets of 256 positions (position >> 8), each a 256-bit map of present elements; the
 *   head record lists the non-empty buckets with their counts, ascending.
 *
 * Every record is a function of the visible set alone (an empty bucket or head is no record), so the bytes do
 * not depend on the order in which actions arrived.
 */
import { createHash } from 'node:crypto';
import { ByteReader, ByteWriter, compareBytes, CrdtFormatError } from './bytes.js';
import type { ByteStore } from './merge.js';
import { bucketKey, headKey } from './records.js';

const BITMAP_BYTES = 32;
const BUCKET_BITS = 8n;

export const memberHash = (member: Uint8Array): Uint8Array => Uint8Array.from(createHash('sha256').update(member).digest());

const hasBit = (map: Uint8Array, i: number): boolean => ((map[i >> 3]! >> (i & 7)) & 1) === 1;
function setBit(map: Uint8Array, i: number, on: boolean): void {
  if (on) map[i >> 3]! |= 1 << (i & 7);
  else map[i >> 3]! &= ~(1 << (i & 7));
}
const bitCount = (map: Uint8Array): number => {
  let n = 0;
  for (let i = 0; i < 256; i++) if (hasBit(map, i)) n++;
  return n;
};

function readBitmap(r: ByteReader): Uint8Array {
  const map = r.fixed(BITMAP_BYTES, 'bitmap');
  if (map.every((b) => b === 0)) r.fail('an empty bitmap is stored as no record');
  return map;
}

// ---------------------------------------------------------------- members

interface MemberHead {
  count: number;
  buckets: Uint8Array;
}

function decodeMemberHead(b: Uint8Array): MemberHead {
  const r = new ByteReader(b, 'member index head');
  const count = r.u32('count');
  const buckets = readBitmap(r);
  r.end();
  if (count < bitCount(buckets)) r.fail('fewer members than non-empty buckets');
  return { count, buckets };
}

function decodeBucket(b: Uint8Array): Uint8Array[] {
  const r = new ByteReader(b, 'member index bucket');
  const n = r.u32('count');
  if (n === 0) r.fail('an empty bucket is stored as no record');
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const m = r.bytes('member');
    if (i > 0 && compareBytes(out[i - 1]!, m) >= 0) r.fail('members are not sorted');
    out.push(m);
  }
  r.end();
  return out;
}

function encodeBucket(members: Uint8Array[]): Uint8Array {
  const w = new ByteWriter().u32(members.length);
  for (const m of members) w.bytes(m);
  return w.finish();
}

export class MemberIndex {
  constructor(
    private readonly store: ByteStore,
    private readonly id: Uint8Array,
  ) {}

  private head(): MemberHead | null {
    const b = this.store.read(headKey(this.id));
    return b === null ? null : decodeMemberHead(b);
  }

  count(): number {
    return this.head()?.count ?? 0;
  }

  /** Every visible member in byte order (the non-empty buckets fetched in one round trip). */
  all(): Uint8Array[] {
    const head = this.head();
    if (head === null) return [];
    const keys: Uint8Array[] = [];
    for (let i = 0; i < 256; i++) if (hasBit(head.buckets, i)) keys.push(bucketKey(this.id, Uint8Array.of(i)));
    this.store.prefetch?.(keys);
    const out = keys.flatMap((k) => {
      const b = this.store.read(k);
      if (b === null) throw new CrdtFormatError('member index: a bucket listed in the head is missing');
      return decodeBucket(b);
    });
    if (out.length !== head.count) throw new CrdtFormatError('member index: the head count does not match the buckets');
    return out.sort(compareBytes);
  }

  /** Adds or removes a member (known to change visibility). */
  set(member: Uint8Array, hash: Uint8Array, visible: boolean): void {
    const bucket = hash[0]!;
    const key = bucketKey(this.id, Uint8Array.of(bucket));
    const raw = this.store.read(key);
    const members = raw === null ? [] : decodeBucket(raw);
    let at = 0;
    while (at < members.length && compareBytes(members[at]!, member) < 0) at++;
    const present = at < members.length && compareBytes(members[at]!, member) === 0;
    if (present === visible) return;
    if (visible) members.splice(at, 0, member);
    else members.splice(at, 1);
    if (members.length === 0) this.store.remove(key);
    else this.store.write(key, encodeBucket(members));
    const head = this.head() ?? { count: 0, buckets: new Uint8Array(BITMAP_BYTES) };
    head.count += visible ? 1 : -1;
    setBit(head.buckets, bucket, members.length > 0);
    if (head.count === 0) this.store.remove(headKey(this.id));
    else this.store.write(headKey(this.id), new ByteWriter().u32(head.count).raw(head.buckets).finish());
  }
}

// ---------------------------------------------------------------- vector positions

type Directory = [bucket: bigint, count: number][];

function decodeDirectory(b: Uint8Array): Directory {
  const r = new ByteReader(b, 'vector index head');
  const n = r.u32('count');
  if (n === 0) r.fail('an empty index is stored as no record');
  const out: Directory = [];
  for (let i = 0; i < n; i++) {
    const bucket = r.u64('bucket');
    const count = r.u32('bucket count');
    if (count < 1 || count > 256) r.fail(`bucket count ${count} out of 1..256`);
    if (i > 0 && out[i - 1]![0] >= bucket) r.fail('buckets are not ascending');
    out.push([bucket, count]);
  }
  r.end();
  return out;
}

function encodeDirectory(d: Directory): Uint8Array {
  const w = new ByteWriter().u32(d.length);
  for (const [bucket, count] of d) w.u64(bucket).u32(count);
  return w.finish();
}

const bucketSub = (bucket: bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, bucket, false);
  return b;
};

export class VectorIndex {
  constructor(
    private readonly store: ByteStore,
    private readonly id: Uint8Array,
  ) {}

  private directory(): Directory {
    const b = this.store.read(headKey(this.id));
    return b === null ? [] : decodeDirectory(b);
  }

  private bitmap(bucket: bigint): Uint8Array {
    const b = this.store.read(bucketKey(this.id, bucketSub(bucket)));
    const r = new ByteReader(b ?? new Uint8Array(0), 'vector index bucket');
    const map = readBitmap(r);
    r.end();
    return map;
  }

  length(): number {
    return this.directory().reduce((n, [, c]) => n + c, 0);
  }

  /** Physical position of the i-th present element, or null past the end. */
  at(i: bigint): bigint | null {
    let rest = i;
    for (const [bucket, count] of this.directory()) {
      if (rest >= BigInt(count)) {
        rest -= BigInt(count);
        continue;
      }
      const map = this.bitmap(bucket);
      for (let bit = 0; bit < 256; bit++) {
        if (hasBit(map, bit) && rest-- === 0n) return (bucket << BUCKET_BITS) + BigInt(bit);
      }
      throw new CrdtFormatError('vector index: a bucket holds fewer elements than its count');
    }
    return null;
  }

  /** Physical position of the last present element, or null when empty. */
  last(): bigint | null {
    const d = this.directory();
    const lastBucket = d[d.length - 1];
    if (lastBucket === undefined) return null;
    const map = this.bitmap(lastBucket[0]);
    for (let bit = 255; bit >= 0; bit--) if (hasBit(map, bit)) return (lastBucket[0] << BUCKET_BITS) + BigInt(bit);
    return null;
  }

  /** Marks a position present or not (known to change). */
  set(position: bigint, present: boolean): void {
    const bucket = position >> BUCKET_BITS;
    const bit = Number(position & 0xffn);
    const key = bucketKey(this.id, bucketSub(bucket));
    const raw = this.store.read(key);
    const map = raw === null ? new Uint8Array(BITMAP_BYTES) : this.bitmap(bucket);
    if (hasBit(map, bit) === present) return;
    setBit(map, bit, present);
    const count = bitCount(map);
    if (count === 0) this.store.remove(key);
    else this.store.write(key, map);
    const d = this.directory().filter(([b]) => b !== bucket);
    if (count > 0) {
      d.push([bucket, count]);
      d.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    }
    if (d.length === 0) this.store.remove(headKey(this.id));
    else this.store.write(headKey(this.id), encodeDirectory(d));
  }
}
