/**
 * A local validator panel (docs/nondet.md, "Consensus"): one call run by a leader and N validators, each a
 * separate Host over its own copy of the same state, as the nodes of a cluster would run it. The leader's
 * non-deterministic results go to every validator; each validator votes, and a strict majority decides.
 *
 * A vote (the reference node's rules):
 *   timeout   the validator's call timed out, crashed, failed inside the host, or could not be made
 *   disagree  a validator method rejected a proposal (validator_disagrees), or the validator's execution hash
 *             differs from the leader's (same proposals, different result: a determinism violation)
 *   agree     otherwise
 * Decision: more than half agree → accepted; more than half disagree → rejected; more than half time out →
 * timeout; otherwise no_majority. A leader that times out or fails internally ends the round (leader_timeout).
 */
import { HostlinkError } from '../errors.js';
import { Host, type CallRequest, type HostOptions, type Outcome } from './host.js';
import { TABLES, type KvReader, type KvStore } from './state/kv.js';
import { createMemoryStore } from './state/memory-store.js';
import { extend } from '../extend.js';

export type Vote = 'agree' | 'disagree' | 'timeout';
export type Decision = 'accepted' | 'rejected' | 'timeout' | 'no_majority' | 'leader_timeout';

export interface ValidatorVote {
  /** 1..N (the leader is node 0). */
  node: number;
  vote: Vote;
  /** Why, in one line. */
  reason: string;
  /** The validator's outcome; absent when its call could not be made. */
  outcome?: Outcome;
}

export interface ConsensusReport {
  leader: Outcome;
  votes: ValidatorVote[];
  tally: Record<Vote, number>;
  decision: Decision;
}

export interface ConsensusOptions {
  /** Number of validators (at least 1). */
  validators: number;
  /** Options of every node's Host (fetch policy, limits, deadline...); each node gets its own store. */
  hostOptions?: Omit<HostOptions, 'store' | 'dataDir' | 'sharedBlobs'>;
  /** Per-node changes to hostOptions (node 0 is the leader). */
  nodeOptions?: (node: number) => Partial<HostOptions>;
}

/** A new in-memory store holding a copy of every table of `source`. */
export async function copyStore(source: KvReader): Promise<KvStore> {
  const store = createMemoryStore();
  const entries = TABLES.map((t) => [t, [...source.range(t, new Uint8Array(0))]] as const);
  await store.write((txn) => {
    for (const [table, rows] of entries) for (const [k, v] of rows) txn.put(table, k, v);
  });
  return store;
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;

/** A node failure (its deadline, its VM, its store: internal_error, timeout included): no vote on the call itself. */
function isTimeout(o: Outcome): boolean {
  return o.result.code === 'internal_error';
}

function voteOf(node: number, leader: Outcome, o: Outcome): ValidatorVote {
  if (isTimeout(o)) return { node, vote: 'timeout', reason: o.result.code === 'return' ? 'timeout' : o.result.message, outcome: o };
  if (o.disagreement !== null) {
    return { node, vote: 'disagree', reason: `block ${o.disagreement.callNo}: ${o.disagreement.reason}`, outcome: o };
  }
  if (!sameBytes(o.executionHash, leader.executionHash)) {
    const what = o.result.code === 'return' ? 'Return' : `${o.result.code} ${o.result.message}`;
    return { node, vote: 'disagree', reason: `execution hash differs from the leader's (validator result: ${what})`, outcome: o };
  }
  return { node, vote: 'agree', reason: 'same execution hash as the leader', outcome: o };
}

export function decide(votes: readonly ValidatorVote[]): { tally: Record<Vote, number>; decision: Decision } {
  const tally: Record<Vote, number> = { agree: 0, disagree: 0, timeout: 0 };
  for (const v of votes) tally[v.vote]++;
  const half = votes.length / 2;
  const decision: Decision = tally.agree > half ? 'accepted' : tally.disagree > half ? 'rejected' : tally.timeout > half ? 'timeout' : 'no_majority';
  return { tally, decision };
}

/**
 * Runs `request` as leader on a copy of `source`'s state, then as validator on N more copies (in parallel) with
 * the leader's non-deterministic results, and tallies the votes. A copy is every table of its store, and its
 * stored blobs' contents, read from `source` (they are not in the tables: with the tables alone, a call that read
 * a blob saw it empty on every node and the sync replay then applied a different result). Nothing is written to
 * `source`: apply an accepted call with a sync replay (`nondet: { leaderResults: report.leader.nondetResults,
 * sync: true }, acceptedExecutionHash: report.leader.executionHash`).
 */
export async function runConsensus(source: Host, request: CallRequest, options: ConsensusOptions): Promise<ConsensusReport> {
  if (!Number.isInteger(options.validators) || options.validators < 1) {
    throw new HostlinkError('usage', `validators must be a whole number of at least 1 (got ${options.validators})`);
  }
  const { nondet: _role, ...call } = request;
  const node = async <T>(index: number, fn: (host: Host) => Promise<T>): Promise<T> => {
    const store = await copyStore(source.store);
    const host = await Host.open({ poolSize: 1, ...options.hostOptions, ...options.nodeOptions?.(index), store, sharedBlobs: source.node });
    try {
      return await fn(host);
    } finally {
      await host.close();
      await store.close();
    }
  };
  const leader = await node(0, (host) => host.call(call));
  if (isTimeout(leader)) {
    return { leader, votes: [], tally: { agree: 0, disagree: 0, timeout: 0 }, decision: 'leader_timeout' };
  }
  const validators = Array.from({ length: options.validators }, (_, i) => i + 1);
  const votes = await Promise.all(
    validators.map(async (n): Promise<ValidatorVote> => {
      try {
        const o = await node(n, (host) => host.call(extend(call, { nondet: { leaderResults: leader.nondetResults } })));
        return voteOf(n, leader, o);
      } catch (e) {
        return { node: n, vote: 'timeout', reason: `the validator could not run the call: ${(e as Error).message}` };
      }
    }),
  );
  return { leader, votes, ...decide(votes) };
}
