/**
 * Typed access to the collection records in a context's storage, and the merge: apply(action) joins one
 * action into the stored cell and keeps the derived records (member and vector indices, the clock) in step.
 * Local changes and remote artifacts both go through apply, so a replica's state is always the join of the
 * actions it has seen, whatever their order (docs/crdt.md, "Merge rules").
 */
import { CrdtFormatError, hex, sameBytes } from './bytes.js';
import { actionTimes, frozenHash, type Action } from './actions.js';
import { joinCells, joinRoots, joinShares, joinSlots, visibleValue, type Kind, type LwwCell, type MemberKind, type RootDoc, type Slot } from './model.js';
import {
  clockKey, decodeCell, decodeKind, decodeMember, decodeRoot, decodeShares, decodeU64,
  encodeCell, encodeKind, encodeMember, encodeRoot, encodeShares, encodeU64,
  headKey, indexBytes, itemKey, metaKey, rootKey,
} from './records.js';
import { memberHash, MemberIndex, VectorIndex } from './indices.js';

/** The storage the collections live in: the execution's StorageOverlay, or a Map in unit tests. */
export interface ByteStore {
  read(key: Uint8Array): Uint8Array | null;
  write(key: Uint8Array, value: Uint8Array): unknown;
  remove(key: Uint8Array): unknown;
  /** Optional: fetch several cold keys in one round trip before reading them. */
  prefetch?(keys: Uint8Array[]): void;
}

export class CrdtStore {
  constructor(private readonly bytes: ByteStore) {}

  /** Writes a record unless it already holds these bytes. */
  private put(key: Uint8Array, value: Uint8Array): void {
    if (!sameBytes(this.bytes.read(key), value)) this.bytes.write(key, value);
  }

  // ---------------------------------------------------------------- reads

  kind(id: Uint8Array): Kind | null {
    const b = this.bytes.read(metaKey(id));
    return b === null ? null : decodeKind(b, `kind record of collection ${hex(id)}`);
  }

  /** Highest time of every action applied to this replica (0 before the first). */
  clock(): bigint {
    const b = this.bytes.read(clockKey());
    return b === null ? 0n : decodeU64(b, 'clock record');
  }

  member(id: Uint8Array, kind: MemberKind, member: Uint8Array): Slot[] {
    const b = this.bytes.read(itemKey(id, memberHash(member)));
    if (b === null) return [];
    const rec = decodeMember(b, kind === 'set');
    if (!sameBytes(rec.member, member)) throw new CrdtFormatError(`member record of collection ${hex(id)} holds another member`);
    return rec.slots;
  }

  /** Visible members (maps, sets, user storage). */
  memberIndex(id: Uint8Array): MemberIndex {
    return new MemberIndex(this.bytes, id);
  }

  /** Visible members with their visible values, in byte order (one round trip for the cold ones). */
  entries(id: Uint8Array, kind: MemberKind): [Uint8Array, Uint8Array][] {
    const members = this.memberIndex(id).all();
    this.bytes.prefetch?.(members.map((m) => itemKey(id, memberHash(m))));
    return members.map((m) => {
      const v = visibleValue(this.member(id, kind, m));
      if (v === null) throw new CrdtFormatError(`member index of collection ${hex(id)} lists a removed member`);
      return [m, v];
    });
  }

  element(id: Uint8Array, index: bigint): LwwCell | null {
    const b = this.bytes.read(itemKey(id, indexBytes(index)));
    return b === null ? null : decodeCell(b, `element ${index} of vector ${hex(id)}`);
  }

  /** Physical positions of the present elements. */
  vectorIndex(id: Uint8Array): VectorIndex {
    return new VectorIndex(this.bytes, id);
  }

  lww(id: Uint8Array): LwwCell | null {
    const b = this.bytes.read(headKey(id));
    return b === null ? null : decodeCell(b, `register ${hex(id)}`);
  }

  shares(id: Uint8Array): [Uint8Array, bigint][] {
    const b = this.bytes.read(headKey(id));
    return b === null ? [] : decodeShares(b);
  }

  frozen(id: Uint8Array, hash: Uint8Array): Uint8Array | null {
    return this.bytes.read(itemKey(id, hash));
  }

  root(): RootDoc | null {
    const b = this.bytes.read(rootKey());
    return b === null ? null : decodeRoot(b);
  }

  // ---------------------------------------------------------------- the merge

  /** Joins one action into storage. */
  apply(a: Action): void {
    this.observe(actionTimes(a));
    switch (a.type) {
      case 'create':
        this.ensureKind(a.id, a.kind);
        return;
      case 'member':
        return this.applyMember(a.id, a.kind, a.member, a.slots);
      case 'element':
        return this.applyElement(a.id, a.index, a.cell);
      case 'lww': {
        this.ensureKind(a.id, 'lww');
        this.put(headKey(a.id), encodeCell(joinCells(this.lww(a.id), a.cell)));
        return;
      }
      case 'counter':
        this.ensureKind(a.id, 'counter');
        this.put(headKey(a.id), encodeShares(joinShares(this.shares(a.id), [[a.executor, a.share]])));
        return;
      case 'frozen': {
        this.ensureKind(a.id, 'frozen');
        const key = itemKey(a.id, frozenHash(a.value));
        if (this.bytes.read(key) === null) this.bytes.write(key, a.value);
        return;
      }
      case 'root':
        this.put(rootKey(), encodeRoot(joinRoots(this.root(), a.root)));
        return;
    }
  }

  private observe(times: bigint[]): void {
    if (times.length === 0) return;
    const clock = this.clock();
    const max = times.reduce((m, t) => (t > m ? t : m), clock);
    if (max > clock) this.bytes.write(clockKey(), encodeU64(max));
  }

  private ensureKind(id: Uint8Array, kind: Kind): void {
    const have = this.kind(id);
    if (have === null) this.bytes.write(metaKey(id), encodeKind(kind));
    else if (have !== kind) throw new CrdtFormatError(`collection ${hex(id)} is a ${have} here, the action uses it as a ${kind}`);
  }

  private applyMember(id: Uint8Array, kind: MemberKind, member: Uint8Array, slots: Slot[]): void {
    this.ensureKind(id, kind);
    const old = this.member(id, kind, member);
    const joined = joinSlots(old, slots);
    const hash = memberHash(member);
    this.put(itemKey(id, hash), encodeMember({ member, slots: joined }));
    const was = visibleValue(old) !== null;
    const is = visibleValue(joined) !== null;
    if (was !== is) this.memberIndex(id).set(member, hash, is);
  }

  private applyElement(id: Uint8Array, index: bigint, cell: LwwCell): void {
    this.ensureKind(id, 'vector');
    const old = this.element(id, index);
    const joined = joinCells(old, cell);
    this.put(itemKey(id, indexBytes(index)), encodeCell(joined));
    const was = old !== null && old.value !== null;
    const is = joined.value !== null;
    if (was !== is) this.vectorIndex(id).set(index, is);
  }
}
