/** Registers: how the host hands variable-length data back to the guest. */
import type { FamilyImpl } from './types.js';

export const registers: FamilyImpl<'registers'> = {
  register_len(ex, registerId) {
    return ex.registers.len(registerId);
  },
  read_register(ex, registerId, destPtr) {
    const value = ex.registers.get(registerId);
    if (value === undefined) return ex.fail('InvalidRegisterId', `register ${BigInt.asUintN(64, registerId)} does not exist`);
    const dest = ex.memory.destination(destPtr, 'destination');
    if (dest.len !== value.length) return 0;
    ex.chargeBytes(value.length);
    ex.memory.writeAt(dest, value);
    return 1;
  },
};
