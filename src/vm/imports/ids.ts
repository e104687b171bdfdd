/** Fixed-size guest buffers (context ids, public keys, blob and proposal ids): a wrong length traps. */
import type { Execution } from '../execution.js';
import type { Descriptor } from '../memory.js';

/** Reads a buffer that must be exactly 32 bytes; any other length traps InvalidMemoryAccess. */
export function readId32(ex: Execution, ptr: bigint, what: string): Uint8Array {
  const bytes = ex.readBuffer(ptr, what);
  if (bytes.length !== 32) ex.fail('InvalidMemoryAccess', `${what} must be 32 bytes, got ${bytes.length}`);
  return bytes;
}

/** A destination buffer that must be exactly `len` bytes (checked before anything is computed or sent). */
export function destinationOf(ex: Execution, ptr: bigint, len: number, what: string): Descriptor {
  const dest = ex.memory.destination(ptr, what);
  if (dest.len !== len) ex.fail('InvalidMemoryAccess', `${what} must be ${len} bytes, got ${dest.len}`);
  return dest;
}
