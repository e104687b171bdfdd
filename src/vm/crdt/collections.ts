/**
 * The collection operations of one execution. Each change is made as an action (a delta of one cell),
 * joined into storage through CrdtStore.apply (the same path as a remote artifact) and kept as pending until
 * flush() turns the pending actions into the artifact. Pending actions belong to this object, which lives
 * exactly as long as one Execution: nothing leaks into the next call (a defect of the reference system).
 *
 * Collection ids are derived, not random: SHA-256 of a domain string, the context, the executor, the
 * call seed (which covers the whole message), the HLC time of the creation and a per-execution counter.
 */
import { createHash } from 'node:crypto';
import { ByteWriter, CrdtDomainError, hex, sameBytes, U64_MAX } from './bytes.js';
import { cellOf, decodeArtifact, encodeArtifact, frozenHash, joinActions, type Action } from './actions.js';
import { nextTime, physicalTime } from './hlc.js';
import { CrdtStore, type ByteStore } from './merge.js';
import { canonicalSlots, visibleValue, type Kind, type LwwCell, type MemberKind, type Slot } from './model.js';
import { ID_LENGTH } from './records.js';

/** What the collections need from the execution. */
export interface CollectionsEnv {
  store: ByteStore;
  contextId: Uint8Array;
  executorId: Uint8Array;
  datetimeNanos: bigint;
  /** The call seed (protocol/call-ids.ts callSeed): the message's seed, or a hash of everything in the message. */
  seed: Uint8Array;
}

const ID_DOMAIN = new TextEncoder().encode('hostlink.crdt.collection-id.v1');

const satAdd = (a: bigint, b: bigint): bigint => (a + b > U64_MAX ? U64_MAX : a + b);

export class Collections {
  readonly state: CrdtStore;
  private readonly pending = new Map<string, Action>();
  private readonly flushed: Action[] = [];
  private readonly physical: bigint;
  private created = 0;

  constructor(private readonly env: CollectionsEnv) {
    this.state = new CrdtStore(env.store);
    this.physical = physicalTime(env.datetimeNanos);
  }

  private get me(): Uint8Array {
    return this.env.executorId;
  }

  /** A new HLC time: after everything this replica has seen, at least the message time. */
  private tick(): bigint {
    return nextTime(this.physical, this.state.clock());
  }

  /** Applies a local action and keeps it pending (joined with an earlier one on the same cell). */
  private record(a: Action): void {
    this.state.apply(a);
    const cell = cellOf(a);
    const prev = this.pending.get(cell);
    this.pending.set(cell, prev === undefined ? a : joinActions(prev, a));
  }

  /** Checks the id (32 bytes) and that it does not name a collection of another kind. */
  private expect(id: Uint8Array, kind: Kind): void {
    if (id.length !== ID_LENGTH) throw new CrdtDomainError(`collection id must be ${ID_LENGTH} bytes, got ${id.length}`);
    const have = this.state.kind(id);
    if (have !== null && have !== kind) throw new CrdtDomainError(`collection ${hex(id)} is a ${have}, not a ${kind}`);
  }

  create(kind: Kind): Uint8Array {
    const time = this.tick();
    const material = new ByteWriter()
      .raw(ID_DOMAIN).raw(this.env.contextId).raw(this.me).raw(this.env.seed).u64(time).u32(this.created++)
      .finish();
    const id = Uint8Array.from(createHash('sha256').update(material).digest());
    this.record({ type: 'create', id, kind, time });
    return id;
  }

  // ---------------------------------------------------------------- members (map, set, user storage)

  memberGet(id: Uint8Array, kind: MemberKind, member: Uint8Array): Uint8Array | null {
    this.expect(id, kind);
    return visibleValue(this.state.member(id, kind, member));
  }

  /** Adds (or replaces) the executor's value; every add it has observed is removed. Returns the previous value. */
  memberPut(id: Uint8Array, kind: MemberKind, member: Uint8Array, value: Uint8Array): Uint8Array | null {
    this.expect(id, kind);
    const slots = this.state.member(id, kind, member);
    const previous = visibleValue(slots);
    const delta: Slot[] = slots
      .filter((s) => s.live !== null && !sameBytes(s.executor, this.me))
      .map((s) => ({ executor: s.executor, removed: s.live!.time, live: null }));
    delta.push({ executor: this.me, removed: 0n, live: { time: this.tick(), value } });
    this.record({ type: 'member', id, kind, member, slots: canonicalSlots(delta) });
    return previous;
  }

  /** Removes every add the executor has observed (a concurrent add elsewhere survives). Returns the removed value. */
  memberRemove(id: Uint8Array, kind: MemberKind, member: Uint8Array): Uint8Array | null {
    this.expect(id, kind);
    const slots = this.state.member(id, kind, member);
    const previous = visibleValue(slots);
    if (previous === null) return null;
    const delta = slots.filter((s) => s.live !== null).map((s) => ({ executor: s.executor, removed: s.live!.time, live: null }));
    this.record({ type: 'member', id, kind, member, slots: canonicalSlots(delta) });
    return previous;
  }

  entries(id: Uint8Array, kind: MemberKind): [Uint8Array, Uint8Array][] {
    this.expect(id, kind);
    return this.state.entries(id, kind);
  }

  memberCount(id: Uint8Array, kind: MemberKind): number {
    this.expect(id, kind);
    return this.state.memberIndex(id).count();
  }

  /** Removes every visible member; false when there was none. */
  clear(id: Uint8Array, kind: MemberKind): boolean {
    this.expect(id, kind);
    const members = this.state.memberIndex(id).all();
    for (const m of members) this.memberRemove(id, kind, m);
    return members.length > 0;
  }

  // ---------------------------------------------------------------- vector

  vectorLength(id: Uint8Array): number {
    this.expect(id, 'vector');
    return this.state.vectorIndex(id).length();
  }

  vectorGet(id: Uint8Array, index: bigint): Uint8Array | null {
    this.expect(id, 'vector');
    const position = this.state.vectorIndex(id).at(index);
    return position === null ? null : (this.state.element(id, position)?.value ?? null);
  }

  /** Appends after the last present element (over popped ones: the new time wins their cells). */
  vectorPush(id: Uint8Array, value: Uint8Array): void {
    this.expect(id, 'vector');
    const last = this.state.vectorIndex(id).last();
    const index = last === null ? 0n : last + 1n;
    this.record({ type: 'element', id, index, cell: { time: this.tick(), executor: this.me, value } });
  }

  vectorPop(id: Uint8Array): Uint8Array | null {
    this.expect(id, 'vector');
    const last = this.state.vectorIndex(id).last();
    if (last === null) return null;
    const previous = this.state.element(id, last)?.value ?? null;
    this.record({ type: 'element', id, index: last, cell: { time: this.tick(), executor: this.me, value: null } });
    return previous;
  }

  // ---------------------------------------------------------------- LWW register

  lwwCell(id: Uint8Array): LwwCell | null {
    this.expect(id, 'lww');
    return this.state.lww(id);
  }

  /** Sets (or clears, value null) and restamps; true when the value changed. */
  lwwSet(id: Uint8Array, value: Uint8Array | null): boolean {
    const old = this.lwwCell(id);
    this.record({ type: 'lww', id, cell: { time: this.tick(), executor: this.me, value } });
    return !sameBytes(old?.value ?? null, value);
  }

  // ---------------------------------------------------------------- counter

  counterShare(id: Uint8Array, executor: Uint8Array | null): bigint {
    this.expect(id, 'counter');
    const who = executor ?? this.me;
    return this.state.shares(id).find(([e]) => sameBytes(e, who))?.[1] ?? 0n;
  }

  counterValue(id: Uint8Array): bigint {
    this.expect(id, 'counter');
    return this.state.shares(id).reduce((sum, [, n]) => satAdd(sum, n), 0n);
  }

  counterIncrement(id: Uint8Array): void {
    const share = this.counterShare(id, null);
    if (share < U64_MAX) this.record({ type: 'counter', id, executor: this.me, share: share + 1n });
  }

  // ---------------------------------------------------------------- frozen storage

  frozenAdd(id: Uint8Array, value: Uint8Array): Uint8Array {
    this.expect(id, 'frozen');
    const hash = frozenHash(value);
    if (this.state.frozen(id, hash) === null) this.record({ type: 'frozen', id, value });
    return hash;
  }

  frozenGet(id: Uint8Array, hash: Uint8Array): Uint8Array | null {
    this.expect(id, 'frozen');
    if (hash.length !== 32) throw new CrdtDomainError(`a frozen value's hash is 32 bytes, got ${hash.length}`);
    return this.state.frozen(id, hash);
  }

  // ---------------------------------------------------------------- root document

  /**
   * Stores the root document. As in the reference: created = created_at, or now when 0; updated is after
   * now, created and updated_at. "now" is an HLC time, so the write also wins over every document seen.
   */
  persistRoot(doc: Uint8Array, createdAt: bigint, updatedAt: bigint): void {
    const now = this.tick();
    const created = createdAt === 0n ? now : createdAt;
    const floor = satAdd(updatedAt > created ? updatedAt : created, 1n);
    const updated = floor > now ? floor : now;
    this.record({ type: 'root', root: { created, updated, executor: this.me, doc } });
  }

  readRoot(): Uint8Array | null {
    return this.state.root()?.doc ?? null;
  }

  // ---------------------------------------------------------------- deltas

  /** Merges an artifact from another execution (its actions are not this execution's: not pending). */
  applyArtifact(bytes: Uint8Array): number {
    const actions = decodeArtifact(bytes);
    for (const a of actions) this.state.apply(a);
    return actions.length;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Moves the pending actions to the artifact; returns the whole artifact so far, or null when nothing was pending. */
  flush(): Uint8Array | null {
    if (this.pending.size === 0) return null;
    this.flushed.push(...this.pending.values());
    this.pending.clear();
    return encodeArtifact(this.flushed);
  }
}
