/**
 * Early runs of the next call on a context. Calls on one context are applied one after another, each on the
 * state the previous one committed; but a durable commit takes about as long as a small call's execution, and
 * waiting for it left the context's VM idle half the time. So the next call starts as soon as the previous one's
 * execution is final, while that one commits: an early run. Its state and private-storage reads are answered as
 * after the previous call: from the previous call's writes where it wrote the key, else from the store (which
 * that commit does not change for any other key of the context).
 *
 * An early run is kept only if every answer it got is the one a run after the commit gets; otherwise it is thrown
 * away and the call runs again on the committed state. Either way its outcome is the one a run after the commit
 * gives: what a VM does depends only on the message and on what the host answered it. The cases:
 *   - the previous call applied the writes the early run was answered from: the run stands, unless it also asked
 *     the node anything else it answers from the store (membership, aliases, stored blobs: answered from the
 *     store as it was, not as after the previous call);
 *   - the previous call applied nothing (its result was not a return, its commit failed or was refused): the run
 *     stands if it read none of the keys the previous call would have written;
 *   - anything else (the previous call was run again and applied other writes, or failed without an outcome):
 *     the run is thrown away.
 */
import type { Effects } from '../protocol/effects.js';
import type { AnyRequest } from '../protocol/messages.js';
import { latin1 } from '../latin1.js';

/** Writes by key (latin1 of the key bytes; null removes the key). */
type KeyedWrites = ReadonlyMap<string, Uint8Array | null>;

/** A call's writes to its context's state and private storage, before they are committed. */
export interface PendingWrites {
  readonly state: KeyedWrites;
  readonly private: KeyedWrites;
}

const NO_WRITES: PendingWrites = { state: new Map(), private: new Map() };

function keyed(writes: readonly (readonly [Uint8Array, Uint8Array | null])[]): KeyedWrites {
  const out = new Map<string, Uint8Array | null>();
  for (const [key, value] of writes) out.set(latin1(key), value);
  return out;
}

/** The writes a call will apply if its commit succeeds: its effects' writes when it returned (and is not a view). */
export function pendingWrites(applies: boolean, effects: Effects | undefined): PendingWrites {
  if (!applies || effects === undefined || effects.writes.length + effects.privateWrites.length === 0) return NO_WRITES;
  return { state: keyed(effects.writes), private: keyed(effects.privateWrites) };
}

/**
 * Requests whose answers do not come from the store: a fetch (the node's fetch policy and the network), and blob
 * uploads (answered from the uploaded bytes). After the previous call's commit they are answered the same, so an
 * early run that made them is not run again for them (a fetch made twice is a request the outside world sees).
 */
const STORE_INDEPENDENT: ReadonlySet<string> = new Set(['http_fetch', 'blob_append', 'blob_finish']);

/** An early run: the previous call's writes it is answered from, and what it asked the host for. */
export class EarlyRun {
  /** The context's state keys it asked for (latin1 of the key bytes). */
  private readonly keys = new Set<string>();
  /** The context's private keys it asked for. */
  private readonly privateKeys = new Set<string>();
  /** True once it asked the node anything else answered from the store (membership, aliases, stored blobs). */
  private node = false;

  constructor(readonly previous: PendingWrites) {}

  /** Records one request. `loop`: the VM's own requests (hello, next_message, get_code, consume_result). */
  record(request: AnyRequest, loop: boolean): void {
    if (request.method === 'storage_read') this.keys.add(latin1(request.fields.key));
    else if (request.method === 'storage_read_many') for (const key of request.fields.keys) this.keys.add(latin1(key));
    else if (request.method === 'private_storage_read') this.privateKeys.add(latin1(request.fields.key));
    else if (!loop && !STORE_INDEPENDENT.has(request.method)) this.node = true;
  }

  /**
   * The previous call's value of a state key: a value, null (it removed the key), or undefined (it did not
   * write the key: read the store).
   */
  pending(key: Uint8Array): Uint8Array | null | undefined {
    return this.previous.state.size === 0 ? undefined : this.previous.state.get(latin1(key));
  }

  /** The same for a private key of the context. */
  pendingPrivate(key: Uint8Array): Uint8Array | null | undefined {
    return this.previous.private.size === 0 ? undefined : this.previous.private.get(latin1(key));
  }

  /** True when this run's answers are those of a run after the previous call settled as `settled`. */
  stands(settled: Settled): boolean {
    if (settled.kind === 'unknown') return false;
    if (settled.kind === 'applied') return settled.writes === this.previous && !this.node;
    for (const key of this.keys) if (this.previous.state.has(key)) return false;
    for (const key of this.privateKeys) if (this.previous.private.has(key)) return false;
    return true;
  }
}

/**
 * How a call settled, for the early run of the next call on its context: it applied `writes` (the same object
 * an early run was given, when it was the execution that early run followed), it applied nothing, or it ended
 * without an outcome (the store's state is not known).
 */
export type Settled = { kind: 'applied'; writes: PendingWrites } | { kind: 'nothing' } | { kind: 'unknown' };

export const SETTLED_NOTHING: Settled = { kind: 'nothing' };
export const SETTLED_UNKNOWN: Settled = { kind: 'unknown' };

/** Counters since the host opened (HostMetrics: hostlink_early_runs_total, hostlink_early_runs_discarded_total). */
export interface EarlyRunStats {
  /** Calls that started while the previous call on their context was committing. */
  runs: number;
  /** Of those, the runs thrown away and run again after the previous call's commit. */
  discarded: number;
}
