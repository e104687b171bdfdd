/**
 * The VM's view of a context's storage: a read cache plus a write-back overlay. Only a cold read goes to the
 * host; writes stay here and leave as one delta with the result. A key written back to its original value
 * drops out of the delta, so the delta is exactly the set of keys whose committed value changes. What a slot
 * holds (its key, the committed value read, a different current value) is counted in the execution's
 * MemoryBudget when one is given.
 */
import { ENTRY_OVERHEAD, type MemoryBudget } from './memory-budget.js';
import { extend } from '../extend.js';
import { latin1 } from '../latin1.js';

export interface StorageSource {
  /** Committed values of keys (null when absent), in request order; one host round trip. */
  readMany(keys: Uint8Array[]): (Uint8Array | null)[];
}

interface Slot {
  key: Uint8Array;
  /** Committed value at the start of the execution (null: absent). */
  original: Uint8Array | null;
  /** Current value as the execution sees it. */
  current: Uint8Array | null;
}

// Keys as latin1 strings: one char per byte, so string order is byte order and Map lookup is by value.
const keyId = latin1;

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export class StorageOverlay {
  private readonly slots = new Map<string, Slot>();
  /** Number of round trips made, for diagnostics and tests. */
  coldReads = 0;

  constructor(
    private readonly source: StorageSource,
    private readonly budget?: MemoryBudget,
  ) {}

  /** Bytes a slot holds for the budget: the key, the committed value, and the current value if it differs. */
  private static held(s: Slot): number {
    return ENTRY_OVERHEAD + s.key.length + (s.original?.length ?? 0) + (s.current !== s.original ? (s.current?.length ?? 0) : 0);
  }

  private add(id: string, s: Slot): void {
    this.budget?.adjust(StorageOverlay.held(s), `storage key of ${s.key.length} bytes`);
    this.slots.set(id, s);
  }

  /** Sets a slot's current value, counting the change in the budget first. */
  private setCurrent(s: Slot, value: Uint8Array | null): void {
    const before = StorageOverlay.held(s);
    const after = StorageOverlay.held(extend(s, { current: value }));
    this.budget?.adjust(after - before, `storage value of ${value?.length ?? 0} bytes`);
    s.current = value;
  }

  private slot(key: Uint8Array): Slot {
    const id = keyId(key);
    let s = this.slots.get(id);
    if (s === undefined) {
      this.coldReads++;
      const [value] = this.source.readMany([key]);
      s = { key: key.slice(), original: value ?? null, current: value ?? null };
      this.add(id, s);
    }
    return s;
  }

  /** Fetches several cold keys in one round trip (keys already known are skipped). */
  prefetch(keys: Uint8Array[]): void {
    const cold = [...new Map(keys.map((k) => [keyId(k), k])).entries()].filter(([id]) => !this.slots.has(id));
    if (cold.length === 0) return;
    this.coldReads++;
    const values = this.source.readMany(cold.map(([, k]) => k));
    cold.forEach(([id, k], i) => {
      const v = values[i] ?? null;
      this.add(id, { key: k.slice(), original: v, current: v });
    });
  }

  read(key: Uint8Array): Uint8Array | null {
    return this.slot(key).current;
  }

  /** Sets a value; returns the previous one (null when the key was absent). */
  write(key: Uint8Array, value: Uint8Array): Uint8Array | null {
    const s = this.slot(key);
    const old = s.current;
    this.setCurrent(s, value);
    return old;
  }

  /** Removes a key; returns the previous value (null when it was absent). */
  remove(key: Uint8Array): Uint8Array | null {
    const s = this.slot(key);
    const old = s.current;
    this.setCurrent(s, null);
    return old;
  }

  /** The changes to commit, sorted by key bytes: [key, value] or [key, null] for a removal. */
  delta(): [Uint8Array, Uint8Array | null][] {
    return [...this.slots.entries()]
      .filter(([, s]) => !sameBytes(s.original, s.current))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, s]) => [s.key, s.current]);
  }
}
