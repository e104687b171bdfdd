/**
 * The node-side state of one execution: the private-storage overlay, blob descriptors, the context
 * mutations, proposals, approvals and blob announcements queued for the host, and the random_bytes stream.
 * Held by Execution; everything queued here leaves with the result and is applied by the host after success.
 */
import type { GuestErrorName } from '../errors.js';
import { callSeed, randomBlock } from '../protocol/call-ids.js';
import type { ExecutionMessage } from '../protocol/message.js';
import type { BlobAnnouncement, ContextMutation, NodeEffects, Proposal } from '../protocol/node-effects.js';
import { nodeActionCount } from '../protocol/effect-limits.js';
import { BlobHandles } from './blob-handles.js';
import type { HostClient } from './host-client.js';
import type { MemoryBudget } from './memory-budget.js';
import { StorageOverlay } from './storage-overlay.js';

export class NodeActions {
  readonly privateStorage: StorageOverlay;
  readonly blobs = new BlobHandles();
  readonly contextMutations: ContextMutation[] = [];
  /** Aliases this execution's context_create calls claimed (reserved at the host). */
  readonly aliases = new Set<string>();
  readonly proposals: Proposal[] = [];
  readonly approvals: Uint8Array[] = [];
  readonly announcements: BlobAnnouncement[] = [];
  /** nodeActionCount reads these names. */
  get blobAnnouncements(): BlobAnnouncement[] {
    return this.announcements;
  }
  /** The execution's random_bytes stream: a sub-instance's NodeActions shares its caller's. */
  readonly randomStream: RandomStream;

  constructor(
    private readonly message: ExecutionMessage,
    private readonly hostClient: HostClient | undefined,
    private readonly fail: (kind: GuestErrorName, detail: string) => never,
    budget?: MemoryBudget,
    /** The caller's stream, for a sub-instance: a sandbox continues it instead of starting it again. */
    randomStream?: RandomStream,
  ) {
    this.randomStream = randomStream ?? new RandomStream(message);
    this.privateStorage = new StorageOverlay(
      { readMany: (keys) => keys.map((key) => this.host().fetch('private_storage_read', { key })?.value ?? null) },
      budget,
    );
  }

  /** The host connection; traps HostUnavailable when the execution runs without one. */
  host(): HostClient {
    if (this.hostClient === undefined) this.fail('HostUnavailable', 'this execution has no host connection');
    return this.hostClient;
  }

  /** Number of context_create calls so far (the index of the next created context); counted, not filtered per call. */
  createdContexts = 0;

  /**
   * Called before queueing one more node action (context mutation, proposal, approval, blob announcement):
   * traps NodeActionsOverflow when the call already queued max_node_actions (effect-limits.ts).
   */
  reserveAction(): void {
    const max = this.message.limits.maxNodeActions;
    if (nodeActionCount(this) >= max) this.fail('NodeActionsOverflow', `more than max_node_actions ${max} node actions in one call`);
  }

  /** The next `n` bytes of the execution's random stream (call-ids.ts randomBlock). */
  random(n: number): Uint8Array {
    return this.randomStream.next(n);
  }

  effects(): NodeEffects {
    return {
      privateWrites: this.privateStorage.delta(),
      contextMutations: this.contextMutations,
      blobAnnouncements: this.announcements,
      proposals: this.proposals,
      approvals: this.approvals,
    };
  }
}

/**
 * One execution's random_bytes stream, from the call seed of its main instance's message. Shared by the
 * sub-instances that draw from it (sandboxes in deterministic code, which every role runs alike): each started
 * it again from its own message, so a sandbox of a seeded call returned the bytes its caller had already drawn.
 * A non-deterministic block never draws from it (it gets the machine's randomness), so the roles agree.
 */
export class RandomStream {
  private seed: Uint8Array | null = null;
  private counter = 0n;
  private left: Uint8Array = new Uint8Array(0);

  constructor(private readonly message: ExecutionMessage) {}

  next(n: number): Uint8Array {
    this.seed ??= callSeed(this.message);
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      if (this.left.length === 0) this.left = randomBlock(this.seed, this.counter++);
      const k = Math.min(this.left.length, n - at);
      out.set(this.left.subarray(0, k), at);
      this.left = this.left.subarray(k);
      at += k;
    }
    return out;
  }
}
