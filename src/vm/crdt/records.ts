/**
 * Where and how collections live in the context's ordinary storage (docs/crdt.md, "Storage layout"). Every
 * key starts with the reserved prefix 0xFF "crdt", so the host's state root covers the collections and a
 * failed execution leaves nothing. Records are decoded strictly: a record the guest overwrote through
 * storage_write with something else is a CrdtFormatError (DeserializationError), never guessed at.
 */
import { ByteReader, ByteWriter, compareBytes } from './bytes.js';
import { KIND_CODES, kindOfCode, type Kind, type LwwCell, type RootDoc, type Slot } from './model.js';

export const CRDT_PREFIX = Uint8Array.of(0xff, 0x63, 0x72, 0x64, 0x74); // 0xFF "crdt"
export const ID_LENGTH = 32;

const TAG_CLOCK = 0x4b; // 'K'
const TAG_ROOT = 0x52; // 'R'
const TAG_COLLECTION = 0x43; // 'C'
const PART_META = 0;
const PART_HEAD = 1;
const PART_ITEM = 2;
const PART_BUCKET = 3;

function key(...parts: (Uint8Array | number)[]): Uint8Array {
  let size = CRDT_PREFIX.length;
  for (const p of parts) size += typeof p === 'number' ? 1 : p.length;
  const out = new Uint8Array(size);
  out.set(CRDT_PREFIX);
  let at = CRDT_PREFIX.length;
  for (const p of parts) {
    if (typeof p === 'number') out[at++] = p;
    else {
      out.set(p, at);
      at += p.length;
    }
  }
  return out;
}

export const clockKey = (): Uint8Array => key(TAG_CLOCK);
export const rootKey = (): Uint8Array => key(TAG_ROOT);
/** The collection's kind. */
export const metaKey = (id: Uint8Array): Uint8Array => key(TAG_COLLECTION, id, PART_META);
/** The collection's head: member or vector index head (indices.ts), LWW register or counter shares. */
export const headKey = (id: Uint8Array): Uint8Array => key(TAG_COLLECTION, id, PART_HEAD);
/** One item: a member (by SHA-256 of its bytes), a vector element (u64 BE index) or a frozen value (its hash). */
export const itemKey = (id: Uint8Array, sub: Uint8Array): Uint8Array => key(TAG_COLLECTION, id, PART_ITEM, sub);
/** One bucket of a member or vector index (indices.ts). */
export const bucketKey = (id: Uint8Array, sub: Uint8Array): Uint8Array => key(TAG_COLLECTION, id, PART_BUCKET, sub);

export function indexBytes(index: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, index, false);
  return b;
}

// ---------------------------------------------------------------- small records

export function encodeKind(kind: Kind): Uint8Array {
  return Uint8Array.of(KIND_CODES[kind]);
}

export function decodeKind(b: Uint8Array, what: string): Kind {
  const r = new ByteReader(b, what);
  const code = r.u8('kind');
  r.end();
  return kindOfCode(code) ?? r.fail(`unknown collection kind ${code}`);
}

export function encodeU64(v: bigint): Uint8Array {
  return new ByteWriter().u64(v).finish();
}

export function decodeU64(b: Uint8Array, what: string): bigint {
  const r = new ByteReader(b, what);
  const v = r.u64('value');
  r.end();
  return v;
}

// ---------------------------------------------------------------- slots (records and artifacts share them)

export function writeSlots(w: ByteWriter, slots: Slot[]): void {
  w.u32(slots.length);
  for (const s of slots) {
    w.raw(s.executor).u64(s.removed).bool(s.live !== null);
    if (s.live !== null) w.u64(s.live.time).bytes(s.live.value);
  }
}

/** Reads a slot list in canonical form: at least one slot, executors strictly ascending, no empty slot. */
export function readSlots(r: ByteReader, emptyValues: boolean): Slot[] {
  const n = r.u32('slot count');
  if (n === 0) r.fail('a member needs at least one slot');
  const slots: Slot[] = [];
  for (let i = 0; i < n; i++) {
    const executor = r.fixed(ID_LENGTH, 'slot executor');
    const removed = r.u64('slot removed time');
    const live = r.bool('slot live flag') ? { time: r.u64('slot time'), value: r.bytes('slot value') } : null;
    const prev = slots[slots.length - 1];
    if (prev !== undefined && compareBytes(prev.executor, executor) >= 0) r.fail('slots are not sorted by executor');
    if (live === null && removed === 0n) r.fail('empty slot');
    if (live !== null && live.time <= removed) r.fail('slot adds at or below its removed time');
    if (live !== null && emptyValues && live.value.length !== 0) r.fail('set members carry no value');
    slots.push({ executor, removed, live });
  }
  return slots;
}

// ---------------------------------------------------------------- members

export interface MemberRecord {
  member: Uint8Array;
  slots: Slot[];
}

export function encodeMember(m: MemberRecord): Uint8Array {
  const w = new ByteWriter().bytes(m.member);
  writeSlots(w, m.slots);
  return w.finish();
}

export function decodeMember(b: Uint8Array, emptyValues: boolean): MemberRecord {
  const r = new ByteReader(b, 'member record');
  const member = r.bytes('member');
  const slots = readSlots(r, emptyValues);
  r.end();
  return { member, slots };
}

// ---------------------------------------------------------------- LWW cells (vector elements, registers)

export function writeCell(w: ByteWriter, c: LwwCell): void {
  w.u64(c.time).raw(c.executor).bool(c.value !== null);
  if (c.value !== null) w.bytes(c.value);
}

export function readCell(r: ByteReader): LwwCell {
  const time = r.u64('time');
  const executor = r.fixed(ID_LENGTH, 'executor');
  const value = r.bool('present flag') ? r.bytes('value') : null;
  return { time, executor, value };
}

export function encodeCell(c: LwwCell): Uint8Array {
  const w = new ByteWriter();
  writeCell(w, c);
  return w.finish();
}

export function decodeCell(b: Uint8Array, what: string): LwwCell {
  const r = new ByteReader(b, what);
  const c = readCell(r);
  r.end();
  return c;
}

// ---------------------------------------------------------------- counters

export function encodeShares(shares: [Uint8Array, bigint][]): Uint8Array {
  const w = new ByteWriter().u32(shares.length);
  for (const [e, n] of shares) w.raw(e).u64(n);
  return w.finish();
}

export function decodeShares(b: Uint8Array): [Uint8Array, bigint][] {
  const r = new ByteReader(b, 'counter record');
  const n = r.u32('count');
  const out: [Uint8Array, bigint][] = [];
  for (let i = 0; i < n; i++) {
    const e = r.fixed(ID_LENGTH, 'executor');
    if (i > 0 && compareBytes(out[i - 1]![0], e) >= 0) r.fail('shares are not sorted by executor');
    out.push([e, r.u64('share')]);
  }
  r.end();
  return out;
}

// ---------------------------------------------------------------- root document

export function writeRoot(w: ByteWriter, d: RootDoc): void {
  w.u64(d.created).u64(d.updated).raw(d.executor).bytes(d.doc);
}

export function readRoot(r: ByteReader): RootDoc {
  return { created: r.u64('created'), updated: r.u64('updated'), executor: r.fixed(ID_LENGTH, 'executor'), doc: r.bytes('doc') };
}

export function encodeRoot(d: RootDoc): Uint8Array {
  const w = new ByteWriter();
  writeRoot(w, d);
  return w.finish();
}

export function decodeRoot(b: Uint8Array): RootDoc {
  const r = new ByteReader(b, 'root document record');
  const d = readRoot(r);
  r.end();
  return d;
}
