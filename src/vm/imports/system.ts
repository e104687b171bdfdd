/** System: guest panics. A panic ends the execution with UserError (it is the contract's own decision). */
import type { Execution } from '../execution.js';
import type { FamilyImpl } from './types.js';

/**
 * Reads a 24-byte Location {file Buffer, u32 line, u32 column} as " at file:line:column", or "" when the file is
 * empty: a panic raised without a source location (the SDK's panic(message)) has nothing to point at.
 */
function location(ex: Execution, ptr: bigint): string {
  ex.memory.check(ptr, 24n, 'location');
  const file = ex.readString(ptr, 'location file');
  return file === '' ? '' : ` at ${file}:${ex.memory.u32(ptr + 16n)}:${ex.memory.u32(ptr + 20n)}`;
}

export const system: FamilyImpl<'system'> = {
  panic(ex, locationPtr) {
    ex.fail('Panic', `explicit panic${location(ex, locationPtr)}`);
  },
  panic_utf8(ex, msgPtr, locationPtr) {
    const message = ex.readString(msgPtr, 'panic message');
    ex.fail('Panic', `${message}${location(ex, locationPtr)}`);
  },
};
