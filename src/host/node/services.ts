/**
 * NodeServices: the node tables a Host keeps beside contract state (private storage, contexts, proposals,
 * blobs) and the per-execution state behind the node protocol methods (blob uploads and staged blobs, alias
 * reservations, fetches). The Host applies a successful call's node effects with `apply` inside the call's
 * transaction and ends every call with `settle`, success or not.
 *
 * Blobs written by a call are staged: readable by that call, stored only if it succeeds (committed with the
 * rest of the outcome), deleted otherwise. A blob written but never closed is dropped either way.
 */
import { HostlinkError } from '../../errors.js';
import type { Effects } from '../../protocol/effects.js';
import type { Job } from '../job.js';
import type { KvReader, KvSnapshot, KvStore, KvTxn } from '../state/kv.js';
import { NodeLimitError, type FetchAnswer, type FetchRequest, type NodeBackend } from './backend.js';
import { diskBlobContent, memoryBlobContent, type BlobContent, type BlobUpload, type StagedBlob } from './blob-content.js';
import * as contexts from './contexts.js';
import { FetchGate, type FetchPolicy } from './fetch.js';
import { approvalsOf, listProposals, recordProposals, type ProposalRecord } from './governance.js';
import { applyPrivateWrites, listPrivate, privateValueLength, readPrivate } from './private-state.js';

export interface NodeServicesOptions {
  /** Blob files go to `<blobDir>`; without it blobs are kept in memory. */
  blobDir?: string;
  fetch?: FetchPolicy;
  /** Contents of stored blobs this node does not hold itself (HostOptions.sharedBlobs). */
  sharedBlobs?: SharedBlobs;
}

/** Read access to another node's stored blob contents (`host.node` has it). */
export interface SharedBlobs {
  readBlob(blobId: Uint8Array, offset: bigint, length: number): Uint8Array | undefined;
}

/** What one execution holds at the host until it is settled. */
interface JobState {
  /** The committed state as the call first read it; membership and alias reads all answer from it. */
  snapshot: KvSnapshot | null;
  uploads: Map<bigint, BlobUpload>;
  staged: Map<string, StagedBlob>;
  aliases: Set<string>;
  settled: boolean;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const u64le = (n: bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
};
const readU64 = (b: Uint8Array): bigint => new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0, true);
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));

export class NodeServices implements NodeBackend {
  private readonly content: BlobContent;
  private readonly gate: FetchGate;
  private readonly shared: SharedBlobs | undefined;
  private readonly jobs = new WeakMap<Job, JobState>();
  /** Aliases checked as free by executions in progress, with how many hold each (for inspection). */
  private readonly reserved = new Map<string, number>();
  private snapshotCount = 0;

  constructor(
    private readonly store: KvStore,
    options: NodeServicesOptions = {},
  ) {
    this.gate = new FetchGate(options.fetch);
    this.content = options.blobDir === undefined ? memoryBlobContent() : diskBlobContent(options.blobDir);
    this.shared = options.sharedBlobs;
  }

  private state(job: Job): JobState {
    let s = this.jobs.get(job);
    if (s === undefined) this.jobs.set(job, (s = { snapshot: null, uploads: new Map(), staged: new Map(), aliases: new Set(), settled: false }));
    // A VM still talking after its call ended (deadline, crash) must not start new work.
    if (s.settled) throw new HostlinkError('protocol', 'the execution has already ended');
    return s;
  }

  /**
   * The call's view of node tables: a snapshot taken at its first node read and kept until it is settled, so
   * commits of other calls (another lane deleting this context, registering an alias) never show mid-call.
   */
  private view(job: Job): KvReader {
    const s = this.state(job);
    if (s.snapshot === null) {
      s.snapshot = this.store.snapshot();
      this.snapshotCount++;
    }
    return s.snapshot;
  }

  // ------------------------------------------------------------------ NodeBackend (protocol methods)

  // An early run is answered as after the previous call on its context, which is still committing (speculation.ts).
  readPrivate(job: Job, key: Uint8Array): Uint8Array | undefined {
    this.state(job); // refuses a VM still talking after its call ended
    const pending = job.early?.pendingPrivate(key);
    if (pending !== undefined) return pending ?? undefined;
    return readPrivate(this.view(job), job.message.contextId, key);
  }

  privateValueLength(job: Job, key: Uint8Array): number | undefined {
    this.state(job);
    const pending = job.early?.pendingPrivate(key);
    if (pending !== undefined) return pending?.length;
    return privateValueLength(this.view(job), job.message.contextId, key);
  }

  isMember(job: Job, publicKey: Uint8Array): boolean {
    return contexts.isMember(this.view(job), job.message.contextId, publicKey);
  }

  members(job: Job): Uint8Array[] {
    return contexts.members(this.view(job), job.message.contextId);
  }

  memberCount(job: Job, most: number): number {
    return contexts.memberCount(this.view(job), job.message.contextId, most);
  }

  resolveAlias(job: Job, alias: string): Uint8Array | undefined {
    return contexts.resolveAlias(this.view(job), alias);
  }

  /**
   * True when the alias is free in the call's snapshot. Calls in progress do not hold aliases against each
   * other (that made outcomes depend on timing): if two calls take the same alias, the one that commits
   * second meets an AliasConflict and the host runs it again (contexts.ts).
   */
  reserveAlias(job: Job, alias: string): boolean {
    if (alias === '' || contexts.resolveAlias(this.view(job), alias) !== undefined) return false;
    const s = this.state(job);
    // Counted once per execution: a second reservation of the same alias used to add to the count that settle
    // takes back once, so the alias stayed counted as reserved, and held in memory, after the call had ended.
    if (s.aliases.has(alias)) return true;
    // The VM counts a node action before each reservation (context_create), so an honest execution reserves at
    // most max_node_actions aliases. Unbounded, a VM could make the host hold any number until the call ended.
    const max = job.message.limits.maxNodeActions;
    if (s.aliases.size >= max) {
      throw new HostlinkError('protocol', `context_reserve_alias: more than max_node_actions (${max}) aliases reserved by one execution`);
    }
    s.aliases.add(alias);
    this.reserved.set(alias, (this.reserved.get(alias) ?? 0) + 1);
    return true;
  }

  private upload(job: Job, handle: bigint): BlobUpload {
    const s = this.state(job);
    let u = s.uploads.get(handle);
    if (u === undefined) {
      const max = job.message.limits.maxBlobHandles;
      if (s.uploads.size >= max) throw new NodeLimitError(`more than max_blob_handles (${max}) blobs in progress`);
      s.uploads.set(handle, (u = this.content.upload()));
    }
    return u;
  }

  blobAppend(job: Job, handle: bigint, data: Uint8Array): void {
    this.upload(job, handle).append(data);
  }

  blobFinish(job: Job, handle: bigint, data: Uint8Array): { blobId: Uint8Array; size: bigint } {
    const u = this.upload(job, handle);
    u.append(data);
    const s = this.state(job);
    s.uploads.delete(handle);
    const staged = u.finish();
    if (s.staged.has(hex(staged.id))) staged.discard(); // the same content twice in one call
    else s.staged.set(hex(staged.id), staged);
    return { blobId: staged.id, size: staged.size };
  }

  // A call sees the blobs stored when its view was taken, as it sees members and aliases: read from the live
  // store, a blob another call committed meanwhile was absent at one read and present at the next.
  blobRead(job: Job, blobId: Uint8Array, offset: bigint, length: number): Uint8Array | undefined {
    const staged = this.state(job).staged.get(hex(blobId));
    if (staged !== undefined) return staged.read(offset, length);
    return this.readBlob(blobId, offset, length, this.view(job));
  }

  blobSize(job: Job, blobId: Uint8Array): bigint | undefined {
    const staged = this.state(job).staged.get(hex(blobId));
    return staged !== undefined ? staged.size : this.blobSizeOf(blobId, this.view(job));
  }

  fetch(job: Job, request: FetchRequest, affordable: number): FetchAnswer | Promise<FetchAnswer> {
    this.state(job);
    return this.gate.fetch(request, affordable);
  }

  // ------------------------------------------------------------------ applying outcomes

  /**
   * Stores the blobs a successful call wrote, durably, before its transaction is issued: the transaction's
   * fsynced commit must not reach the disk before the content it records (after a power cut, a record whose file
   * is missing or empty). If the transaction then fails, the files are only orphans, which are never served.
   * Not inside the transaction: lmdb runs that callback synchronously in its batch, where waiting for the disk
   * would hold the commits of every other call. Rejects with HostlinkError('store').
   */
  async storeBlobs(job: Job): Promise<void> {
    // Together (their syncs overlap), and every one settled before this returns: settle() removes what is left in
    // staging, which a store() still under way would then fail on, unobserved.
    const results = await Promise.allSettled([...(this.jobs.get(job)?.staged.values() ?? [])].map((staged) => staged.store()));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /**
   * Applies a successful call's node effects inside its transaction: private writes, context mutations,
   * proposals and approvals, the records of the blobs it wrote (stored by storeBlobs first), and its blob
   * announcements.
   */
  apply(txn: KvTxn, job: Job, effects: Effects): void {
    const msg = job.message;
    applyPrivateWrites(txn, msg.contextId, effects.privateWrites);
    contexts.applyContextMutations(txn, msg, effects.contextMutations);
    recordProposals(txn, msg.contextId, msg.executorId, effects.proposals, effects.approvals);
    const s = this.jobs.get(job);
    for (const staged of s?.staged.values() ?? []) {
      // A record of content not yet durable is what a power cut turns into a blob without its bytes.
      if (!staged.stored) throw new HostlinkError('internal', `blob ${hex(staged.id)} recorded before storeBlobs() stored it`);
      if (txn.get('blobs', staged.id) === undefined) txn.put('blobs', staged.id, u64le(staged.size));
    }
    for (const a of effects.blobAnnouncements) {
      const size = txn.get('blobs', a.blobId);
      if (size !== undefined) txn.put('blob_announcements', concat(a.contextId, a.blobId), size);
    }
  }

  /** Ends a call at the host: drops what it staged and did not commit, and releases its alias reservations. */
  settle(job: Job): void {
    const s = this.jobs.get(job);
    if (s === undefined) {
      this.jobs.set(job, { snapshot: null, uploads: new Map(), staged: new Map(), aliases: new Set(), settled: true });
      return;
    }
    s.settled = true;
    for (const u of s.uploads.values()) u.discard();
    for (const b of s.staged.values()) b.discard();
    s.uploads.clear();
    s.staged.clear();
    for (const alias of s.aliases) {
      const n = (this.reserved.get(alias) ?? 1) - 1;
      if (n <= 0) this.reserved.delete(alias);
      else this.reserved.set(alias, n);
    }
    s.aliases.clear();
    if (s.snapshot !== null) {
      s.snapshot.release();
      s.snapshot = null;
      this.snapshotCount--;
    }
  }

  close(): void {
    this.content.close();
  }

  // ------------------------------------------------------------------ Host API: inspect and seed

  /** A context's private entries, sorted by key (node-local; not in the state root). */
  privateState(contextId: Uint8Array): [Uint8Array, Uint8Array][] {
    return listPrivate(this.store, contextId);
  }

  /** Members of a context, sorted. */
  contextMembers(contextId: Uint8Array): Uint8Array[] {
    return contexts.members(this.store, contextId);
  }

  isContextMember(contextId: Uint8Array, publicKey: Uint8Array): boolean {
    return contexts.isMember(this.store, contextId, publicKey);
  }

  /** Adds members to a context outside any call (to set a context up). */
  async addMembers(contextId: Uint8Array, publicKeys: readonly Uint8Array[]): Promise<void> {
    checkIds([contextId, ...publicKeys]);
    await this.store.write((txn) => publicKeys.forEach((pk) => contexts.addMember(txn, contextId, pk)));
  }

  async removeMembers(contextId: Uint8Array, publicKeys: readonly Uint8Array[]): Promise<void> {
    checkIds([contextId, ...publicKeys]);
    await this.store.write((txn) => publicKeys.forEach((pk) => contexts.removeMember(txn, contextId, pk)));
  }

  /** A context created by a call, or undefined. */
  context(contextId: Uint8Array): contexts.ContextRecord | undefined {
    return contexts.contextRecord(this.store, contextId);
  }

  /** Every context created by calls, sorted by id. */
  contexts(): contexts.ContextRecord[] {
    return contexts.listContexts(this.store);
  }

  resolveContextAlias(alias: string): Uint8Array | undefined {
    return contexts.resolveAlias(this.store, alias);
  }

  proposals(contextId: Uint8Array): ProposalRecord[] {
    return listProposals(this.store, contextId);
  }

  /** Keys that approved a proposal id in a context (recorded even when the proposal is not). */
  approvals(contextId: Uint8Array, proposalId: Uint8Array): Uint8Array[] {
    return approvalsOf(this.store, contextId, proposalId);
  }

  /** Size of a stored blob (in `from`: the committed store, or a call's view), or undefined. */
  blobSizeOf(blobId: Uint8Array, from: KvReader = this.store): bigint | undefined {
    const record = from.get('blobs', blobId);
    return record === undefined ? undefined : readU64(record);
  }

  /** A stored blob's whole content, or undefined (for inspection; calls stream blobs instead). */
  blob(blobId: Uint8Array): Uint8Array | undefined {
    const size = this.blobSizeOf(blobId);
    if (size === undefined) return undefined;
    if (size > BigInt(256 * 1024 * 1024)) throw new HostlinkError('usage', `blob of ${size} bytes is too large to return whole`);
    return this.readBlob(blobId, 0n, Number(size));
  }

  /**
   * Bytes of a stored blob from `offset` (fewer at its end), or undefined when the blob is not stored. Content
   * this node does not hold comes from the shared blobs (a consensus node reads its source's).
   */
  readBlob(blobId: Uint8Array, offset: bigint, length: number, from: KvReader = this.store): Uint8Array | undefined {
    if (from.get('blobs', blobId) === undefined) return undefined;
    return this.content.read(blobId, offset, length) ?? this.shared?.readBlob(blobId, offset, length);
  }

  /** Blob ids announced to a context, sorted. */
  announcedBlobs(contextId: Uint8Array): Uint8Array[] {
    return [...this.store.range('blob_announcements', contextId)].map(([key]) => key.slice(32));
  }

  /** Aliases reserved by calls in progress (0 once every call has ended). */
  get reservedAliases(): number {
    return this.reserved.size;
  }

  /** Snapshots held by calls in progress (0 once every call has ended: each is released when its call is settled). */
  get openSnapshots(): number {
    return this.snapshotCount;
  }
}

function checkIds(ids: readonly Uint8Array[]): void {
  for (const id of ids) if (id.length !== 32) throw new HostlinkError('usage', `context ids and public keys are 32 bytes, got ${id.length}`);
}
