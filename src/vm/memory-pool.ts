/**
 * Linear memories lent to instances and taken back zero-filled.
 *
 * Why: every execution gets a fresh instance, and a fresh memory used to come with it: V8 reserved and mapped
 * it, every page the contract touched faulted in once, and the memory was unmapped only when a garbage
 * collection found it, its external bytes being what started most of a VM's collections. For kv-store `set`
 * that was more than half of instantiate + run (measured alone in a VM-like process, 200-330 us against
 * 85-130 us with a recycled memory). The VM prepares modules to import their memory (prepareModule's
 * `importMemory`), and the runner lends each instance one from here.
 *
 * What the next instance sees is what a fresh memory holds. A memory comes back only at its initial size (one
 * that grew is dropped: memories cannot shrink) and is zero-filled before it is kept, so no byte of an
 * execution outlives it; instantiation then copies the module's data segments in as before. Memories are
 * keyed by their limits, which the import must match exactly. Only small memories are kept (zero-filling costs
 * per byte, where a fresh memory costs per page touched), and only a few (a VM runs one execution at a time,
 * plus its nested sub-instances).
 */
/** A WebAssembly page. */
const PAGE_BYTES = 65536;
/** Memories larger than this are made fresh every time: zero-filling them would cost more than it saves. */
export const REUSED_MEMORY_MAX_BYTES = 1024 * 1024;
/** Memories kept at most, all sizes together. */
const KEPT_MAX = 8;

export interface MemoryLimits {
  min: number;
  max: number;
}

export class MemoryPool {
  private readonly free = new Map<string, WebAssembly.Memory[]>();
  private kept = 0;

  constructor(private readonly enabled = true) {}

  /** A memory of exactly these limits, all zeros: a kept one, or a new one. */
  take(limits: MemoryLimits): WebAssembly.Memory {
    const memory = this.free.get(key(limits))?.pop();
    if (memory !== undefined) {
      this.kept--;
      return memory;
    }
    return new WebAssembly.Memory({ initial: limits.min, maximum: limits.max });
  }

  /** Runs `use` with a memory of these limits, and takes it back once `use` has returned or thrown. */
  lend<T>(limits: MemoryLimits, use: (memory: WebAssembly.Memory) => T): T {
    const memory = this.take(limits);
    try {
      return use(memory);
    } finally {
      this.give(memory, limits);
    }
  }

  /** Takes back a memory lent with `limits` once no instance can use it any more: zero-filled and kept, or dropped. */
  give(memory: WebAssembly.Memory, limits: MemoryLimits): void {
    const bytes = limits.min * PAGE_BYTES;
    if (!this.enabled || this.kept >= KEPT_MAX || bytes > REUSED_MEMORY_MAX_BYTES || memory.buffer.byteLength !== bytes) return;
    new Uint8Array(memory.buffer).fill(0);
    const k = key(limits);
    let list = this.free.get(k);
    if (list === undefined) this.free.set(k, (list = []));
    list.push(memory);
    this.kept++;
  }

  /** How many memories are kept (tests). */
  get size(): number {
    return this.kept;
  }
}

function key(limits: MemoryLimits): string {
  return `${limits.min}:${limits.max}`;
}
