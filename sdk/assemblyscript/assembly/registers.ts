// Registers: host-side byte slots through which every variable-length result comes back.
import { register_len, read_register } from "./env";
import { descriptor } from "./buffers";

/** Register the SDK uses for results (any u64 id is valid; the JS SDK also uses 0). */
export const DATA_REGISTER: u64 = 0;
/** Functions without a register parameter write their error message here (catalogue: register 0). */
export const ERROR_REGISTER: u64 = 0;

/** `register_len`'s answer for a register that does not exist. */
const MISSING: u64 = u64.MAX_VALUE;

/** Length of a register, or -1 when it does not exist. */
export function registerLen(id: u64 = DATA_REGISTER): i64 {
  const len = register_len(id);
  return len == MISSING ? -1 : <i64>len;
}

/** Contents of a register, or null when it does not exist. */
export function readRegisterOrNull(id: u64 = DATA_REGISTER): Uint8Array | null {
  const len = register_len(id);
  if (len == MISSING) return null;
  const out = new Uint8Array(<i32>len);
  // Lengths always match here, so a 0 answer would be a host bug: report it rather than return garbage.
  if (read_register(id, descriptor(out.dataStart, <usize>len)) != 1) {
    throw new Error("read_register: length mismatch");
  }
  return out;
}

/** Contents of a register; an empty array when it does not exist. */
export function readRegister(id: u64 = DATA_REGISTER): Uint8Array {
  const r = readRegisterOrNull(id);
  return r === null ? new Uint8Array(0) : r;
}

/** Contents of a register as an ArrayBuffer (empty when missing). */
export function readRegisterBuffer(id: u64 = DATA_REGISTER): ArrayBuffer {
  return readRegister(id).buffer;
}

/** Contents of a register decoded as UTF-8 (empty when missing). */
export function readRegisterString(id: u64 = DATA_REGISTER): string {
  const b = readRegister(id);
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.byteLength, false);
}
