/**
 * The agent's connection slots: at most `total` connections at once and at most `perPeer` from one peer (a TCP
 * address, a vsock CID, a unix listener). When a limit is reached, a connection that is still waiting for its
 * request (idle or half-sent) is evicted to make room, so a peer that opens connections and sends nothing
 * cannot lock the real guest out; only when every slot is busy with a request is the new connection refused.
 * Each eviction or refusal is an error reply, never a silent drop.
 */

export interface Slot {
  /** Who the connection is from; the per-peer limit counts slots with the same key ('' = not known yet). */
  key: string;
  /** Still reading the request: may be evicted. */
  waiting: boolean;
  /** Bytes of the request received so far: idle slots (0) are evicted before half-sent ones. */
  received: number;
  /** Ends the connection with an error reply; the table has already forgotten the slot. */
  evict(reason: string): void;
}

export type Admission = { ok: true } | { ok: false; error: string };

export class ConnectionTable {
  /** In arrival order: the first evictable one found is the oldest. */
  private readonly slots = new Set<Slot>();

  constructor(
    private readonly total: number,
    private readonly perPeer: number,
  ) {}

  get size(): number {
    return this.slots.size;
  }

  /** Takes a slot for `slot`, evicting a waiting connection when a limit is reached; or says why not. */
  admit(slot: Slot): Admission {
    if (slot.key !== '' && this.count(slot.key) >= this.perPeer) {
      const victim = this.victim((s) => s.key === slot.key);
      if (victim === undefined) {
        return { ok: false, error: `the agent is already serving ${this.perPeer} connections from this peer (maxConnectionsPerPeer); retry later` };
      }
      this.evict(victim);
    } else if (this.slots.size >= this.total) {
      // Take the room from the peer holding the most connections, so one peer's flood costs that peer.
      const counts = new Map<string, number>();
      for (const s of this.slots) counts.set(s.key, (counts.get(s.key) ?? 0) + 1);
      const most = Math.max(...[...this.slots].filter((s) => s.waiting).map((s) => counts.get(s.key)!), 0);
      const victim = this.victim((s) => counts.get(s.key) === most);
      if (victim === undefined) {
        return { ok: false, error: `the agent is already serving ${this.total} connections (maxConnections); retry later` };
      }
      this.evict(victim);
    }
    this.slots.add(slot);
    return { ok: true };
  }

  /** Moves a slot to another peer key (the vsock bridge names the CID after connecting) and re-checks the limit. */
  rekey(slot: Slot, key: string): Admission {
    this.slots.delete(slot);
    slot.key = key;
    return this.admit(slot);
  }

  release(slot: Slot): void {
    this.slots.delete(slot);
  }

  private count(key: string): number {
    let n = 0;
    for (const s of this.slots) if (s.key === key) n++;
    return n;
  }

  /** The oldest waiting slot matching `which`, preferring one that has sent nothing. */
  private victim(which: (s: Slot) => boolean): Slot | undefined {
    let halfSent: Slot | undefined;
    for (const s of this.slots) {
      if (!s.waiting || !which(s)) continue;
      if (s.received === 0) return s;
      halfSent ??= s;
    }
    return halfSent;
  }

  private evict(s: Slot): void {
    this.slots.delete(s);
    s.evict('the agent needed this connection slot for another request and this one had not sent its request yet: send the request right after connecting');
  }
}
