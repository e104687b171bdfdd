/** Input and output: the call's input bytes and its return value. */
import type { FamilyImpl } from './types.js';

export const io: FamilyImpl<'io'> = {
  input(ex, registerId) {
    ex.setRegister(registerId, ex.message.input);
  },
  value_return(ex, valuePtr) {
    // ValueReturn: 24 bytes {u64 tag, Buffer}; tag 0 = Ok, 1 = Err. Any other tag is rejected, not guessed.
    ex.memory.check(valuePtr, 24n, 'value_return');
    const tag = ex.memory.u64(valuePtr);
    if (tag !== 0n && tag !== 1n) ex.fail('DeserializationError', `ValueReturn tag ${tag} is neither 0 (Ok) nor 1 (Err)`);
    const bytes = ex.readBuffer(valuePtr + 8n, 'return value');
    // An Err payload becomes the UserError message, so it must be text.
    if (tag === 1n) ex.memory.utf8(bytes, 'error payload');
    ex.setReturnValue({ ok: tag === 0n, bytes }); // the last call wins
  },
};
