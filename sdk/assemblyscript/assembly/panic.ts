// Panics: the only way a contract aborts with a message. AssemblyScript's own `abort`
// (failed assertions, bounds checks, `throw`) is redirected here with
// `--use abort=sdk/assemblyscript/assembly/panic/hostlinkAbort`, so no module imports `env.abort`.
import { panic as hostPanic, panic_utf8 } from "./env";
import { descriptor, utf8 } from "./buffers";

/** Location layout: {file Buffer @0, line u32 @16, column u32 @20} = 24 bytes. */
function location(file: string, line: u32, column: u32): usize {
  const f = utf8(file);
  const loc = heap.alloc(24);
  store<u64>(loc, <u64>f.dataStart);
  store<u64>(loc, <u64>f.byteLength, 8);
  store<u32>(loc, line, 16);
  store<u32>(loc, column, 20);
  return loc;
}

/** Aborts the call with a guest panic carrying `message` (the host reports it as a UserError Panic). */
export function panic(message: string, file: string = "", line: u32 = 0, column: u32 = 0): void {
  const m = utf8(message);
  panic_utf8(descriptor(m.dataStart, <usize>m.byteLength), location(file, line, column));
  // panic_utf8 never returns; make that explicit for the optimiser and in case a host misbehaves.
  unreachable();
}

/** Aborts the call with a panic that has no message (the host reports "explicit panic") at a location. */
export function panicAt(file: string, line: u32 = 0, column: u32 = 0): void {
  hostPanic(location(file, line, column));
  unreachable();
}

/** Replacement for AssemblyScript's `abort` (see the file comment). Not for direct use. */
export function hostlinkAbort(message: string | null, fileName: string | null, lineNumber: u32, columnNumber: u32): void {
  panic(message === null ? "abort" : message, fileName === null ? "" : fileName, lineNumber, columnNumber);
}
