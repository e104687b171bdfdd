// Call input and return value. The input is whatever bytes the caller sent (JSON by convention);
// the return value is a 24-byte ValueReturn {u64 tag (0 Ok, 1 Err), Buffer}.
import { input as hostInput, value_return } from "./env";
import { toBytes } from "./buffers";
import { DATA_REGISTER, readRegister } from "./registers";

/** The call's input bytes. */
export function input(): Uint8Array {
  hostInput(DATA_REGISTER);
  return readRegister(DATA_REGISTER);
}

/** The call's input decoded as UTF-8. */
export function inputString(): string {
  const b = input();
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.byteLength, false);
}

function valueReturn(tag: u64, bytes: Uint8Array): void {
  const vr = heap.alloc(24);
  store<u64>(vr, tag);
  store<u64>(vr, <u64>bytes.dataStart, 8);
  store<u64>(vr, <u64>bytes.byteLength, 16);
  value_return(vr);
}

/** Sets the successful return value (string as UTF-8, or bytes). The last call wins. */
export function returnOk<T>(value: T): void {
  valueReturn(0, toBytes<T>(value));
}

/** Sets an error return value: the call fails with UserError carrying these bytes, and its state changes are dropped. */
export function returnErr<T>(value: T): void {
  valueReturn(1, toBytes<T>(value));
}
