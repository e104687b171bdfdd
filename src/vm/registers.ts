/**
 * Registers: host-side byte slots the guest reads with register_len/read_register. Any u64 is a valid id;
 * writing an existing id replaces it. Limits (count, size, total capacity counted as 8 + len per register)
 * trap with InvalidMemoryAccess as in the reference system, with a message naming the limit.
 */
import { GuestError } from '../errors.js';
import type { VmLimits } from '../protocol/message.js';
import { ENTRY_OVERHEAD, type MemoryBudget } from './memory-budget.js';

// i64 arguments arrive signed; ids are normalised to u64 so -2 and 2^64-2 are the same register.

/** register_len's answer for a missing register: u64::MAX, seen by the guest as i64 -1. */
export const REGISTER_ABSENT = -1n;

export class Registers {
  private readonly slots = new Map<bigint, Uint8Array>();
  private capacityUsed = 0;

  constructor(
    private readonly limits: Pick<VmLimits, 'maxRegisters' | 'maxRegisterSize' | 'maxRegistersCapacity'>,
    private readonly currentFn: () => string,
    /** The execution's byte budget (registers share it with the overlays and pending effects). */
    private readonly budget?: MemoryBudget,
  ) {}

  set(rawId: bigint, bytes: Uint8Array): void {
    const id = BigInt.asUintN(64, rawId);
    const fail = (detail: string): never => {
      throw new GuestError('InvalidMemoryAccess', this.currentFn(), detail);
    };
    if (bytes.length > this.limits.maxRegisterSize) {
      fail(`register ${id} would hold ${bytes.length} bytes, over max_register_size ${this.limits.maxRegisterSize}`);
    }
    const old = this.slots.get(id);
    if (old === undefined && this.slots.size >= this.limits.maxRegisters) {
      fail(`register ${id} would exceed max_registers ${this.limits.maxRegisters}`);
    }
    const used = this.capacityUsed - (old ? 8 + old.length : 0) + 8 + bytes.length;
    if (used > this.limits.maxRegistersCapacity) {
      fail(`registers would hold ${used} bytes, over max_registers_capacity ${this.limits.maxRegistersCapacity}`);
    }
    this.budget?.adjust(bytes.length - (old ? old.length : -ENTRY_OVERHEAD), `register ${id} of ${bytes.length} bytes`);
    this.slots.set(id, bytes);
    this.capacityUsed = used;
  }

  /** Capacity in use (8 + len per register); a sub-instance's register budget is what is left. */
  get used(): number {
    return this.capacityUsed;
  }

  get(id: bigint): Uint8Array | undefined {
    return this.slots.get(BigInt.asUintN(64, id));
  }

  /** Length as the guest sees it: i64, -1 (u64::MAX) when absent. */
  len(id: bigint): bigint {
    const r = this.get(id);
    return r === undefined ? REGISTER_ABSENT : BigInt(r.length);
  }
}
