/**
 * An in-memory KvStore for unit tests and embedding: the LMDB store's semantics (key limits, copies in and out,
 * key order, call-order transactions applied on a later turn, rollback on throw), nothing durable.
 */
import { HostlinkError } from '../../errors.js';
import { checkSynchronous, checkTableKey, LAYOUT_KEY, LAYOUT_VERSION, TABLES, type KvStore, type KvTxn, type TableName } from './kv.js';
import { latin1 } from '../../latin1.js';

// Keys as latin1 strings: one char per byte, so string order is byte order (a proper prefix sorts first).
const str = latin1;
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const copy = (v: Uint8Array): Uint8Array => Uint8Array.from(v);

class Table {
  readonly map = new Map<string, Uint8Array>();
  private sorted: string[] | undefined; // key order, rebuilt lazily after writes

  keysWithPrefix(prefix: string): string[] {
    this.sorted ??= [...this.map.keys()].sort();
    const keys = this.sorted;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! < prefix) lo = mid + 1;
      else hi = mid;
    }
    const out: string[] = [];
    for (let i = lo; i < keys.length && keys[i]!.startsWith(prefix); i++) out.push(keys[i]!);
    return out;
  }

  set(key: string, value: Uint8Array | undefined): void {
    if (value === undefined) {
      if (this.map.delete(key)) this.sorted = undefined;
    } else {
      if (!this.map.has(key)) this.sorted = undefined;
      this.map.set(key, value);
    }
  }
}

export function createMemoryStore(): KvStore {
  const tables = new Map<TableName, Table>(TABLES.map((t) => [t, new Table()]));
  tables.get('meta')!.set(str(LAYOUT_KEY), Uint8Array.of(LAYOUT_VERSION)); // as the LMDB store stamps it
  const table = (name: TableName): Table => {
    const t = tables.get(name);
    if (t === undefined) throw new HostlinkError('usage', `unknown table '${String(name)}'`);
    return t;
  };
  let closed = false;
  let closing = false;
  let inWrite = false;
  let pending: Promise<unknown> = Promise.resolve();
  const check = (): void => {
    if (closed) throw new HostlinkError('store', 'the store is closed');
  };

  // Live snapshots keep, per table, the value each key had when they were taken (undefined: absent), recorded
  // by the first commit that changes the key after them.
  type Saved = Map<TableName, Map<string, Uint8Array | undefined>>;
  const snapshots = new Set<Saved>();
  const remember = (name: TableName, key: string): void => {
    for (const saved of snapshots) {
      let m = saved.get(name);
      if (m === undefined) saved.set(name, (m = new Map()));
      if (!m.has(key)) m.set(key, table(name).map.get(key));
    }
  };

  function runTxn<T>(fn: (txn: KvTxn) => T): T {
    check();
    // Writes go to an overlay (undefined = deleted) and reach the tables only if fn returns.
    const overlay = new Map<TableName, Map<string, Uint8Array | undefined>>();
    const layer = (name: TableName): Map<string, Uint8Array | undefined> => {
      table(name);
      let o = overlay.get(name);
      if (o === undefined) overlay.set(name, (o = new Map()));
      return o;
    };
    let open = true;
    const live = (): void => {
      if (!open) throw new HostlinkError('usage', 'transaction used after its write() callback returned');
    };
    const txn: KvTxn = {
      get(name, key) {
        live();
        const s = str(key);
        const o = overlay.get(name);
        const v = o !== undefined && o.has(s) ? o.get(s) : table(name).map.get(s);
        return v === undefined ? undefined : copy(v);
      },
      range(name, prefix) {
        live();
        const p = str(prefix);
        const merged = new Map<string, Uint8Array | undefined>();
        const t = table(name);
        for (const key of t.keysWithPrefix(p)) merged.set(key, t.map.get(key));
        for (const [key, v] of overlay.get(name) ?? []) if (key.startsWith(p)) merged.set(key, v);
        const keys = [...merged.keys()].sort();
        const out: [Uint8Array, Uint8Array][] = [];
        for (const key of keys) {
          const v = merged.get(key);
          if (v !== undefined) out.push([bytes(key), copy(v)]);
        }
        return out;
      },
      put(name, key, value) {
        live();
        checkTableKey(name, key);
        layer(name).set(str(key), copy(value));
      },
      del(name, key) {
        live();
        checkTableKey(name, key);
        layer(name).set(str(key), undefined);
      },
    };
    inWrite = true;
    let result: T;
    try {
      result = fn(txn);
      checkSynchronous(result);
    } finally {
      open = false;
      inWrite = false;
    }
    for (const [name, o] of overlay) {
      const t = table(name);
      for (const [key, v] of o) {
        remember(name, key);
        t.set(key, v);
      }
    }
    return result;
  }

  return {
    get(name, key) {
      check();
      const v = table(name).map.get(str(key));
      return v === undefined ? undefined : copy(v);
    },
    range(name, prefix) {
      check();
      const t = table(name);
      return t.keysWithPrefix(str(prefix)).map((key): [Uint8Array, Uint8Array] => [bytes(key), copy(t.map.get(key)!)]);
    },
    keys(name, prefix) {
      check();
      return table(name).keysWithPrefix(str(prefix)).map(bytes);
    },
    snapshot() {
      check();
      const saved: Saved = new Map();
      snapshots.add(saved);
      const value = (name: TableName, key: string): Uint8Array | undefined => {
        const m = saved.get(name);
        return m !== undefined && m.has(key) ? m.get(key) : table(name).map.get(key);
      };
      return {
        get(name, key) {
          const v = value(name, str(key));
          return v === undefined ? undefined : copy(v);
        },
        range(name, prefix) {
          const p = str(prefix);
          const keys = new Set(table(name).keysWithPrefix(p));
          for (const key of saved.get(name)?.keys() ?? []) if (key.startsWith(p)) keys.add(key);
          const out: [Uint8Array, Uint8Array][] = [];
          for (const key of [...keys].sort()) {
            const v = value(name, key);
            if (v !== undefined) out.push([bytes(key), copy(v)]);
          }
          return out;
        },
        release() {
          snapshots.delete(saved);
        },
      };
    },
    write<T>(fn: (txn: KvTxn) => T): Promise<T> {
      if (closing) return Promise.reject(new HostlinkError('store', 'the store is closed'));
      if (inWrite) throw new HostlinkError('usage', 'write() called inside a write() callback');
      // Like LMDB's batched transactions, fn runs on a later turn, in call order.
      const p = new Promise<T>((resolve, reject) => {
        setImmediate(() => {
          try {
            resolve(runTxn(fn));
          } catch (e) {
            reject(e);
          }
        });
      });
      pending = p.catch(() => undefined);
      return p;
    },
    async close() {
      closing = true;
      await pending;
      closed = true;
    },
  };
}
