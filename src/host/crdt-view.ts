/**
 * A context's raw entries read back as what the contract sees: CRDT collections (docs/crdt.md "Storage
 * layout") decoded into their visible contents, the root document, and the other (raw) keys. For display
 * (`hostlink state`); the contract-facing semantics live in src/vm/crdt/. A record that does not decode is
 * reported as undecodable rather than guessed at.
 */
import { compareBytes } from '../vm/crdt/bytes.js';
import { visibleValue, type Kind } from '../vm/crdt/model.js';
import { CRDT_PREFIX, decodeCell, decodeKind, decodeMember, decodeRoot, decodeShares, decodeU64, ID_LENGTH } from '../vm/crdt/records.js';

export interface CollectionView {
  id: Uint8Array;
  kind: Kind | 'unknown';
  /** map/user: key (user: the 32-byte user id) and value; frozen: hash and value. */
  entries?: [Uint8Array, Uint8Array][];
  /** set: members; vector: elements in position order. */
  values?: Uint8Array[];
  /** lww: the value (null: never set or cleared). */
  value?: Uint8Array | null;
  /** counter: the sum of every executor's share. */
  total?: bigint;
  /** Why the collection could not be decoded, when it could not. */
  error?: string;
}

export interface StateView {
  /** Entries outside the CRDT key space, as stored. */
  raw: [Uint8Array, Uint8Array][];
  clock?: bigint;
  rootDoc?: { doc: Uint8Array; created: bigint; updated: bigint; executor: Uint8Array };
  collections: CollectionView[];
}

const TAG_CLOCK = 0x4b;
const TAG_ROOT = 0x52;
const TAG_COLLECTION = 0x43;
const P = CRDT_PREFIX.length;

function isCrdtKey(k: Uint8Array): boolean {
  return k.length > P && compareBytes(k.subarray(0, P), CRDT_PREFIX) === 0;
}

function decodeCollection(id: Uint8Array, parts: [number, Uint8Array, Uint8Array][]): CollectionView {
  const meta = parts.find(([p]) => p === 0);
  if (!meta) return { id, kind: 'unknown', error: 'no kind record' };
  const kind = decodeKind(meta[2], 'kind record');
  const items = parts.filter(([p]) => p === 2);
  const head = parts.find(([p]) => p === 1)?.[2];
  switch (kind) {
    case 'map':
    case 'user': {
      const entries: [Uint8Array, Uint8Array][] = [];
      for (const [, , v] of items) {
        const m = decodeMember(v, false);
        const value = visibleValue(m.slots);
        if (value !== null) entries.push([m.member, value]);
      }
      return { id, kind, entries: entries.sort(([a], [b]) => compareBytes(a, b)) };
    }
    case 'set': {
      const values: Uint8Array[] = [];
      for (const [, , v] of items) {
        const m = decodeMember(v, true);
        if (visibleValue(m.slots) !== null) values.push(m.member);
      }
      return { id, kind, values: values.sort(compareBytes) };
    }
    case 'vector': {
      // Item keys end in the u64 BE position, so key order is position order.
      const values: Uint8Array[] = [];
      for (const [, , v] of items.sort(([, a], [, b]) => compareBytes(a, b))) {
        const c = decodeCell(v, 'vector element');
        if (c.value !== null) values.push(c.value);
      }
      return { id, kind, values };
    }
    case 'lww':
      return { id, kind, value: head === undefined ? null : decodeCell(head, 'register').value };
    case 'counter':
      return { id, kind, total: head === undefined ? 0n : decodeShares(head).reduce((n, [, s]) => n + s, 0n) };
    case 'frozen':
      return { id, kind, entries: items.map(([, sub, v]): [Uint8Array, Uint8Array] => [sub, v]) };
  }
}

/** Splits and decodes a context's entries (any order). */
export function viewState(entries: readonly [Uint8Array, Uint8Array][]): StateView {
  const view: StateView = { raw: [], collections: [] };
  const byId = new Map<string, [number, Uint8Array, Uint8Array][]>();
  for (const [k, v] of entries) {
    if (!isCrdtKey(k)) {
      view.raw.push([k, v]);
      continue;
    }
    const tag = k[P];
    try {
      if (tag === TAG_CLOCK && k.length === P + 1) view.clock = decodeU64(v, 'clock');
      else if (tag === TAG_ROOT && k.length === P + 1) view.rootDoc = decodeRoot(v);
      else if (tag === TAG_COLLECTION && k.length >= P + 1 + ID_LENGTH + 1) {
        const id = Buffer.from(k.subarray(P + 1, P + 1 + ID_LENGTH)).toString('hex');
        const part = k[P + 1 + ID_LENGTH]!;
        const list = byId.get(id) ?? [];
        list.push([part, k.subarray(P + 2 + ID_LENGTH), v]);
        byId.set(id, list);
      } else view.raw.push([k, v]);
    } catch {
      view.raw.push([k, v]);
    }
  }
  for (const [idHex, parts] of [...byId.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const id = Uint8Array.from(Buffer.from(idHex, 'hex'));
    try {
      view.collections.push(decodeCollection(id, parts));
    } catch (e) {
      view.collections.push({ id, kind: 'unknown', error: (e as Error).message });
    }
  }
  view.raw.sort(([a], [b]) => compareBytes(a, b));
  return view;
}
