import type { WasmModule } from './module.js';
import type { ModulePolicy } from './policy.js';
import { ModuleRejected } from './rejected.js';

/**
 * Memory and table sizes. V8 lets a memory without a declared maximum grow to 4 GiB, so every memory gets
 * max = min(declared max, policy.maxMemoryPages): memory.grow beyond it returns -1 on every machine, instead of
 * succeeding or failing depending on the host's free memory. An initial size above the policy is rejected
 * (V8 would fail with an out-of-memory RangeError that depends on the machine). Tables are treated alike.
 */
export function clampMemoryAndTable(m: WasmModule, policy: ModulePolicy): void {
  for (const mem of m.memories) {
    if (mem.min > policy.maxMemoryPages) {
      throw new ModuleRejected('memory_too_large', `initial ${mem.min} pages, limit ${policy.maxMemoryPages}`);
    }
    mem.max = mem.max === undefined ? policy.maxMemoryPages : Math.min(mem.max, policy.maxMemoryPages);
  }
  for (const t of m.tables) {
    if (t.limits.min > policy.maxTableSize) {
      throw new ModuleRejected('table_too_large', `initial ${t.limits.min} entries, limit ${policy.maxTableSize}`);
    }
    t.limits.max = t.limits.max === undefined ? policy.maxTableSize : Math.min(t.limits.max, policy.maxTableSize);
  }
}
