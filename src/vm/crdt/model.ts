/**
 * The CRDT state model: collection kinds and the state of one cell (a map/set/user-storage member, a vector
 * element, an LWW register, a counter share, the root document), with the join (least upper bound) of two
 * states of the same cell. Joins are commutative, associative and idempotent and their results are in one
 * canonical form, so merging the same actions in any order gives the same bytes (docs/crdt.md, "Merge rules").
 */
import { compareBytes } from './bytes.js';
import { compareStamps } from './hlc.js';

/** Collection kinds and their byte codes in records and artifacts. */
export const KIND_CODES = { map: 1, vector: 2, set: 3, lww: 4, counter: 5, user: 6, frozen: 7 } as const;
export type Kind = keyof typeof KIND_CODES;
/** Kinds whose cells are members with per-executor slots. */
export type MemberKind = 'map' | 'set' | 'user';

export function kindOfCode(code: number): Kind | undefined {
  return (Object.keys(KIND_CODES) as Kind[]).find((k) => KIND_CODES[k] === code);
}

/**
 * One executor's part of a member (add-wins, observed-remove): the latest value it added, and the highest of
 * its add times that some executor has removed. Every add of an executor on a member replaces (and so
 * removes) its earlier ones, so a slot needs only these two times.
 */
export interface Slot {
  executor: Uint8Array;
  /** Highest removed add time of this executor (0: none). */
  removed: bigint;
  live: { time: bigint; value: Uint8Array } | null;
}

/** A last-writer-wins cell: a vector element or an LWW register. `value` null: popped element / cleared register. */
export interface LwwCell {
  time: bigint;
  executor: Uint8Array;
  value: Uint8Array | null;
}

/** The root state document (persist_root_state). */
export interface RootDoc {
  created: bigint;
  updated: bigint;
  executor: Uint8Array;
  doc: Uint8Array;
}

const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);

function joinSlot(a: Slot, b: Slot): Slot | null {
  const removed = maxBig(a.removed, b.removed);
  let live = a.live;
  if (b.live !== null) {
    // The later add wins; equal times (one executor on two replicas) fall back to the value bytes.
    if (live === null || b.live.time > live.time || (b.live.time === live.time && compareBytes(b.live.value, live.value) > 0)) {
      live = b.live;
    }
  }
  if (live !== null && live.time <= removed) live = null;
  if (live === null && removed === 0n) return null;
  return { executor: a.executor, removed, live };
}

/** Canonical slot list: sorted by executor, no empty slot, no live add at or below its removed time. */
export function canonicalSlots(slots: Slot[]): Slot[] {
  return joinSlots([], slots);
}

/** Join of two slot lists (each sorted by executor). */
export function joinSlots(a: Slot[], b: Slot[]): Slot[] {
  const byExecutor = new Map<string, Slot>();
  for (const s of [...a, ...b]) {
    const k = Buffer.from(s.executor).toString('latin1');
    const prev = byExecutor.get(k);
    const empty: Slot = { executor: s.executor, removed: 0n, live: null };
    const joined = joinSlot(prev ?? empty, s);
    if (joined === null) byExecutor.delete(k);
    else byExecutor.set(k, joined);
  }
  return [...byExecutor.values()].sort((x, y) => compareBytes(x.executor, y.executor));
}

/** The member's visible value: the live add with the highest (time, node), or null when there is none. */
export function visibleValue(slots: Slot[]): Uint8Array | null {
  let best: Slot | null = null;
  for (const s of slots) {
    if (s.live === null) continue;
    if (best === null || compareStamps(s.live.time, s.executor, best.live!.time, best.executor) > 0) best = s;
  }
  return best === null ? null : best.live!.value;
}

/** Total order of LWW cells: stamp, then present over absent, then value bytes. */
function compareCells(a: LwwCell, b: LwwCell): number {
  const s = compareStamps(a.time, a.executor, b.time, b.executor);
  if (s !== 0) return s;
  if (a.value === null || b.value === null) return a.value === b.value ? 0 : a.value === null ? -1 : 1;
  return compareBytes(a.value, b.value);
}

export function joinCells(a: LwwCell | null, b: LwwCell): LwwCell {
  return a === null || compareCells(b, a) > 0 ? b : a;
}

/** Root documents: the later update wins (then node, creation time and bytes, so that any order agrees). */
export function joinRoots(a: RootDoc | null, b: RootDoc): RootDoc {
  if (a === null) return b;
  let c = compareStamps(a.updated, a.executor, b.updated, b.executor);
  if (c === 0) c = a.created === b.created ? compareBytes(a.doc, b.doc) : a.created < b.created ? -1 : 1;
  return c >= 0 ? a : b;
}

/** Counter shares: per executor the maximum (sorted by executor). */
export function joinShares(a: [Uint8Array, bigint][], b: [Uint8Array, bigint][]): [Uint8Array, bigint][] {
  const m = new Map<string, [Uint8Array, bigint]>();
  for (const [e, n] of [...a, ...b]) {
    const k = Buffer.from(e).toString('latin1');
    const prev = m.get(k);
    if (prev === undefined || n > prev[1]) m.set(k, [e, n]);
  }
  return [...m.values()].sort(([x], [y]) => compareBytes(x, y));
}

