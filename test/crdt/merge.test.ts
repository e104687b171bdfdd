/**
 * Merge rules, one collection kind at a time, and convergence at the storage-bytes level: replicas that
 * apply the same artifacts in any order, with repetitions, hold identical bytes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Collections } from '../../src/vm/crdt/collections.js';
import { compareNodes } from '../../src/vm/crdt/hlc.js';
import type { ByteStore } from '../../src/vm/crdt/merge.js';
import type { MemberKind } from '../../src/vm/crdt/model.js';
import { id32 } from '../helpers.js';

const latin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('utf8'));
const T0 = 1_700_000_000_000_000_000n;

/** One node's copy of a context: committed storage, and calls made by one executor. */
class Replica {
  readonly data = new Map<string, Uint8Array>();
  private calls = 0;
  readonly store: ByteStore = {
    read: (k) => this.data.get(latin1(k)) ?? null,
    write: (k, v) => this.data.set(latin1(k), Uint8Array.from(v)),
    remove: (k) => this.data.delete(latin1(k)),
  };

  constructor(
    readonly executor: Uint8Array,
    /** Message time of every call (a fixed time makes every concurrent stamp tie on time). */
    private readonly time: (call: number) => bigint = () => T0,
  ) {}

  /** Runs one call; returns its artifact (null when it changed nothing). */
  call(body: (c: Collections) => void): Uint8Array | null {
    const n = this.calls++;
    const c = new Collections({ store: this.store, contextId: id32('ctx'), executorId: this.executor, datetimeNanos: this.time(n), seed: id32(`seed ${n}`) });
    body(c);
    return c.flush();
  }

  /** A read-only look at the state. */
  read<T>(body: (c: Collections) => T): T {
    return body(new Collections({ store: this.store, contextId: id32('ctx'), executorId: this.executor, datetimeNanos: T0, seed: id32('read') }));
  }

  apply(...artifacts: (Uint8Array | null)[]): void {
    for (const a of artifacts) if (a !== null) this.call((c) => c.applyArtifact(a));
  }

  snapshot(): string[] {
    return [...this.data.entries()].map(([k, v]) => `${Buffer.from(k, 'latin1').toString('hex')}=${Buffer.from(v).toString('hex')}`).sort();
  }
}

const alice = id32('alice');
const bob = id32('bob');
const carol = id32('carol');

/** Three replicas that start from the same state: `setup` runs on the first, its artifact is applied to the others. */
function trio(setup: (c: Collections) => Uint8Array[]): { a: Replica; b: Replica; c: Replica; ids: Uint8Array[] } {
  const a = new Replica(alice);
  const b = new Replica(bob);
  const c = new Replica(carol);
  let ids: Uint8Array[] = [];
  const art = a.call((x) => (ids = setup(x)));
  b.apply(art);
  c.apply(art);
  assert.deepEqual(b.snapshot(), a.snapshot(), 'same start');
  return { a, b, c, ids };
}

function exchange(...rs: [Replica, (Uint8Array | null)[]][]): void {
  for (const [r] of rs) for (const [other, arts] of rs) if (other !== r) r.apply(...arts);
  const first = rs[0]![0].snapshot();
  for (const [r] of rs) assert.deepEqual(r.snapshot(), first, 'identical bytes');
}

describe('merge rules', () => {
  test('map: a concurrent insert wins over a remove; concurrent inserts: later stamp, then higher node', () => {
    const { a, b, c, ids } = trio((x) => {
      const m = x.create('map');
      x.memberPut(m, 'map', bytes('k'), bytes('base'));
      return [m];
    });
    const m = ids[0]!;
    const ra = a.call((x) => x.memberRemove(m, 'map', bytes('k')));
    const rb = b.call((x) => x.memberPut(m, 'map', bytes('k'), bytes('from bob')));
    const rc = c.call((x) => x.memberPut(m, 'map', bytes('other'), bytes('c')));
    exchange([a, [ra]], [b, [rb]], [c, [rc]]);
    assert.equal(str(a.read((x) => x.memberGet(m, 'map', bytes('k')))), 'from bob', 'add wins');
    // Same message time: the stamps tie on time and the higher node id wins.
    const pa = a.call((x) => x.memberPut(m, 'map', bytes('k'), bytes('alice')));
    const pb = b.call((x) => x.memberPut(m, 'map', bytes('k'), bytes('bob')));
    exchange([a, [pa]], [b, [pb]], [c, []]);
    const winner = compareNodes(alice, bob) > 0 ? 'alice' : 'bob';
    assert.equal(str(c.read((x) => x.memberGet(m, 'map', bytes('k')))), winner);
    // A remove that observed every add removes the key everywhere.
    const del = c.call((x) => x.memberRemove(m, 'map', bytes('k')));
    exchange([a, []], [b, []], [c, [del]]);
    assert.equal(a.read((x) => x.memberGet(m, 'map', bytes('k'))), null);
    assert.deepEqual(b.read((x) => x.entries(m, 'map')).map(([k, v]) => [str(k), str(v)]), [['other', 'c']]);
  });

  test('map: a later message time wins, whatever the node ids', () => {
    const a = new Replica(alice, (n) => T0 + BigInt(n) * 1_000_000_000n);
    const b = new Replica(bob, () => T0);
    let m: Uint8Array = new Uint8Array(0);
    b.apply(a.call((x) => void (m = x.create('map'))));
    const late = a.call((x) => x.memberPut(m, 'map', bytes('k'), bytes('late')));
    const early = b.call((x) => x.memberPut(m, 'map', bytes('k'), bytes('early')));
    exchange([a, [late]], [b, [early]]);
    assert.equal(str(b.read((x) => x.memberGet(m, 'map', bytes('k')))), 'late');
  });

  test('set: union of adds; a remove removes only what it observed', () => {
    const { a, b, c, ids } = trio((x) => {
      const s = x.create('set');
      x.memberPut(s, 'set', bytes('shared'), new Uint8Array(0));
      return [s];
    });
    const s = ids[0]!;
    const ra = a.call((x) => {
      x.memberPut(s, 'set', bytes('a'), new Uint8Array(0));
      x.clear(s, 'set');
    });
    const rb = b.call((x) => x.memberPut(s, 'set', bytes('b'), new Uint8Array(0)));
    const rc = c.call((x) => x.memberPut(s, 'set', bytes('shared'), new Uint8Array(0))); // re-add of an element a clears
    exchange([a, [ra]], [b, [rb]], [c, [rc]]);
    assert.deepEqual(a.read((x) => x.entries(s, 'set')).map(([k]) => str(k)), ['b', 'shared']);
  });

  test('counter: per-executor maximum, summed; repeated artifacts count once', () => {
    const { a, b, c, ids } = trio((x) => [x.create('counter')]);
    const n = ids[0]!;
    const ra = a.call((x) => (x.counterIncrement(n), x.counterIncrement(n)));
    const rb = [b.call((x) => x.counterIncrement(n)), b.call((x) => x.counterIncrement(n)), b.call((x) => x.counterIncrement(n))];
    exchange([a, [ra, ra]], [b, [...rb, rb[0]!]], [c, []]);
    assert.equal(c.read((x) => x.counterValue(n)), 5n);
    assert.equal(c.read((x) => x.counterShare(n, bob)), 3n);
  });

  test('LWW register: higher timestamp, then higher node id', () => {
    const { a, b, c, ids } = trio((x) => [x.create('lww')]);
    const r = ids[0]!;
    const ra = a.call((x) => x.lwwSet(r, bytes('alice')));
    const rb = b.call((x) => x.lwwSet(r, bytes('bob')));
    exchange([a, [ra]], [b, [rb]], [c, []]);
    const tie = compareNodes(alice, bob) > 0 ? 'alice' : 'bob';
    assert.equal(str(c.read((x) => x.lwwCell(r)?.value ?? null)), tie);
    const later = c.call((x) => x.lwwSet(r, null)); // after seeing both: a higher time
    exchange([a, []], [b, []], [c, [later]]);
    assert.equal(a.read((x) => x.lwwCell(r))?.value, null);
  });

  test('vector: element-wise, then the longer one; pops propagate', () => {
    const { a, b, c, ids } = trio((x) => [x.create('vector')]);
    const v = ids[0]!;
    const ra = a.call((x) => (x.vectorPush(v, bytes('a1')), x.vectorPush(v, bytes('a2'))));
    const rb = b.call((x) => x.vectorPush(v, bytes('b1')));
    exchange([a, [ra]], [b, [rb]], [c, []]);
    const first = compareNodes(alice, bob) > 0 ? 'a1' : 'b1';
    const values = (r: Replica): (string | null)[] => r.read((x) => [0n, 1n, 2n].map((i) => str(x.vectorGet(v, i))));
    assert.deepEqual(values(c), [first, 'a2', null]);
    const pop = b.call((x) => x.vectorPop(v));
    exchange([a, []], [b, [pop]], [c, []]);
    assert.deepEqual(values(a), [first, null, null]);
    assert.equal(a.read((x) => x.vectorLength(v)), 1);
  });

  test('user storage: one entry per executor; frozen storage: add-only union; root document: last update', () => {
    const { a, b, c, ids } = trio((x) => [x.create('user'), x.create('frozen')]);
    const [u, f] = ids as [Uint8Array, Uint8Array];
    const ra = a.call((x) => (x.memberPut(u, 'user', alice, bytes('a draft')), x.frozenAdd(f, bytes('x')), x.persistRoot(bytes('A'), 0n, 0n)));
    const rb = b.call((x) => (x.memberPut(u, 'user', bob, bytes('b draft')), x.frozenAdd(f, bytes('x')), x.frozenAdd(f, bytes('y'))));
    const rc = c.call((x) => x.persistRoot(bytes('C'), 0n, 0n));
    exchange([a, [ra]], [b, [rb]], [c, [rc]]);
    assert.equal(str(c.read((x) => x.memberGet(u, 'user', alice))), 'a draft');
    assert.equal(str(c.read((x) => x.memberGet(u, 'user', bob))), 'b draft');
    assert.equal(a.read((x) => x.memberCount(u, 'user')), 2);
    assert.equal(str(b.read((x) => x.readRoot())), compareNodes(alice, carol) > 0 ? 'A' : 'C');
  });
});

describe('indices', () => {
  test('a vector of 600 elements spans three buckets: get, pop and push across them', () => {
    const r = new Replica(alice);
    let v: Uint8Array = new Uint8Array(0);
    const arts = [r.call((x) => void (v = x.create('vector')))];
    arts.push(r.call((x) => { for (let i = 0; i < 600; i++) x.vectorPush(v, bytes(`e${i}`)); }));
    assert.equal(r.read((x) => x.vectorLength(v)), 600);
    assert.deepEqual(r.read((x) => [0n, 255n, 256n, 511n, 512n, 599n, 600n].map((i) => str(x.vectorGet(v, i)))), ['e0', 'e255', 'e256', 'e511', 'e512', 'e599', null]);
    arts.push(r.call((x) => { for (let i = 0; i < 345; i++) x.vectorPop(v); }));
    assert.equal(r.read((x) => x.vectorLength(v)), 255);
    assert.equal(str(r.read((x) => x.vectorGet(v, 254n))), 'e254');
    arts.push(r.call((x) => x.vectorPush(v, bytes('again'))));
    assert.equal(str(r.read((x) => x.vectorGet(v, 255n))), 'again', 'the push lands after the last present element');
    const copy = new Replica(bob);
    copy.apply(...[...arts].reverse());
    assert.deepEqual(copy.snapshot(), r.snapshot());
  });

  test('a map of 700 keys: sorted listing, counts, and identical bytes in another order', () => {
    const r = new Replica(alice);
    let m: Uint8Array = new Uint8Array(0);
    const arts = [r.call((x) => void (m = x.create('map')))];
    const keys = Array.from({ length: 700 }, (_, i) => `key ${(i * 7919) % 700}`);
    for (let i = 0; i < 700; i += 100) arts.push(r.call((x) => keys.slice(i, i + 100).forEach((k) => x.memberPut(m, 'map', bytes(k), bytes(k.toUpperCase())))));
    arts.push(r.call((x) => keys.slice(0, 350).forEach((k) => x.memberRemove(m, 'map', bytes(k)))));
    const listed = r.read((x) => x.entries(m, 'map')).map(([k]) => str(k)!);
    assert.equal(listed.length, 350);
    assert.equal(r.read((x) => x.memberCount(m, 'map')), 350);
    assert.deepEqual(listed, [...keys.slice(350)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    const copy = new Replica(bob);
    copy.apply(...[...arts].reverse());
    assert.deepEqual(copy.snapshot(), r.snapshot());
    r.call((x) => x.clear(m, 'map'));
    assert.equal(r.read((x) => x.memberCount(m, 'map')), 0);
  });
});

// ---------------------------------------------------------------- random workloads

/** mulberry32: a small seeded PRNG, so a failure replays. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function randomOp(x: Collections, ids: Uint8Array[], me: Uint8Array, rand: () => number): void {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const small = (): Uint8Array => bytes(pick(['a', 'b', 'c', 'd']));
  const [map, set, vec, lww, counter, user, frozen] = ids as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  const member = (kind: MemberKind, id: Uint8Array): void => {
    if (rand() < 0.6) x.memberPut(id, kind, kind === 'user' ? me : small(), kind === 'set' ? new Uint8Array(0) : small());
    else x.memberRemove(id, kind, kind === 'user' ? me : small());
  };
  switch (Math.floor(rand() * 9)) {
    case 0:
      return member('map', map);
    case 1:
      return member('set', set);
    case 2:
      return void (rand() < 0.2 ? x.clear(set, 'set') : member('set', set));
    case 3:
      return void (rand() < 0.6 ? x.vectorPush(vec, small()) : x.vectorPop(vec));
    case 4:
      return void x.lwwSet(lww, rand() < 0.8 ? small() : null);
    case 5:
      return x.counterIncrement(counter);
    case 6:
      return member('user', user);
    case 7:
      return void x.frozenAdd(frozen, small());
    default:
      return x.persistRoot(small(), 0n, 0n);
  }
}

describe('convergence at the byte level', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    test(`random concurrent workload ${seed}: any order, with repetitions, gives identical bytes`, () => {
      const rand = prng(seed);
      // Odd seeds: every call at the same time (all stamps tie on time); even seeds: times that move.
      const clock = (offset: bigint) => (n: number) => (seed % 2 ? T0 : T0 + offset + BigInt(n) * 7_000_000n);
      const replicas = [new Replica(alice, clock(0n)), new Replica(bob, clock(3_000n)), new Replica(carol, clock(-5_000n))];
      let ids: Uint8Array[] = [];
      const init = replicas[0]!.call((x) => (ids = (['map', 'set', 'vector', 'lww', 'counter', 'user', 'frozen'] as const).map((k) => x.create(k))));
      for (const r of replicas.slice(1)) r.apply(init);
      const all: Uint8Array[] = [init!];
      const seen = replicas.map(() => new Set<Uint8Array>([init!]));
      for (let round = 0; round < 40; round++) {
        const i = Math.floor(rand() * 3);
        const r = replicas[i]!;
        const art = r.call((x) => {
          for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) randomOp(x, ids, r.executor, rand);
        });
        if (art !== null) {
          all.push(art);
          seen[i]!.add(art);
        }
        // Now and then a replica catches up on some of what it has not seen, so later changes observe remote ones.
        if (rand() < 0.3) {
          const j = Math.floor(rand() * 3);
          for (const a of shuffle(all, rand).slice(0, Math.floor(rand() * all.length))) {
            if (!seen[j]!.has(a)) {
              replicas[j]!.apply(a);
              seen[j]!.add(a);
            }
          }
        }
      }
      for (const [j, r] of replicas.entries()) r.apply(...shuffle(all.filter((a) => !seen[j]!.has(a)), rand), ...shuffle(all, rand).slice(0, 5));
      const expected = replicas[0]!.snapshot();
      for (const r of replicas) assert.deepEqual(r.snapshot(), expected);
      // Fresh replicas fed every artifact in other orders hold the same bytes.
      for (let k = 0; k < 3; k++) {
        const fresh = new Replica(id32(`fresh ${k}`));
        fresh.apply(...shuffle(all, rand));
        assert.deepEqual(fresh.snapshot(), expected);
      }
      const [map] = ids as [Uint8Array];
      const view = (r: Replica): string => JSON.stringify(r.read((x) => x.entries(map, 'map').map(([k, v]) => [str(k), str(v)])));
      assert.equal(view(replicas[1]!), view(replicas[2]!));
    });
  }
});
