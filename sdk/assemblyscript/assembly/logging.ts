// Logs and events. Both are kept in the outcome even when the call fails.
// Limits (trap when exceeded): 100 logs of 16 KiB; 100 events, kind <= 100 bytes, data <= 16 KiB.
import { log_utf8, js_std_d_print, emit as hostEmit, emit_with_handler, xcall as hostXcall } from "./env";
import { bytesDescriptor, toBytes, utf8 } from "./buffers";

/** Appends a UTF-8 log line. */
export function log(message: string): void {
  log_utf8(bytesDescriptor(utf8(message)));
}

/** Logs through the QuickJS debug-print entry point (raw pointer and length, no descriptor). */
export function debugPrint(message: string): void {
  const m = utf8(message);
  js_std_d_print(0, <u64>m.dataStart, <u64>m.byteLength);
}

/** Event layout: {kind Buffer @0, data Buffer @16} = 32 bytes. */
function eventDescriptor(kind: string, data: Uint8Array): usize {
  const k = utf8(kind);
  const ev = heap.alloc(32);
  store<u64>(ev, <u64>k.dataStart);
  store<u64>(ev, <u64>k.byteLength, 8);
  store<u64>(ev, <u64>data.dataStart, 16);
  store<u64>(ev, <u64>data.byteLength, 24);
  return ev;
}

/** Emits an event; `data` is a string (UTF-8) or bytes. */
export function emit<T>(kind: string, data: T): void {
  hostEmit(eventDescriptor(kind, toBytes<T>(data)));
}

/** Emits an event whose `handler` method the host calls after this call succeeds. */
export function emitWithHandler<T>(kind: string, data: T, handler: string): void {
  emit_with_handler(eventDescriptor(kind, toBytes<T>(data)), bytesDescriptor(utf8(handler)));
}

/** Queues a call of `method` in another context (32-byte id) with `params`, run after this call succeeds. */
export function xcall<T>(contextId: Uint8Array, method: string, params: T): void {
  const f = utf8(method);
  const p = toBytes<T>(params);
  // XCall layout: {context_id Buffer @0, function Buffer @16, params Buffer @32} = 48 bytes.
  const x = heap.alloc(48);
  store<u64>(x, <u64>contextId.dataStart);
  store<u64>(x, <u64>contextId.byteLength, 8);
  store<u64>(x, <u64>f.dataStart, 16);
  store<u64>(x, <u64>f.byteLength, 24);
  store<u64>(x, <u64>p.dataStart, 32);
  store<u64>(x, <u64>p.byteLength, 40);
  hostXcall(x);
}
