/**
 * Logging and events. Logs and events are kept in the outcome even when the execution fails; events with a
 * handler and xcalls are run by the host after a successful execution. Limits are checked in the reference
 * system's order (log: count then size; event: kind size, data size, then count) before data is read.
 */
import type { Execution } from '../execution.js';
import type { LimitCheck } from '../memory.js';
import type { FamilyImpl } from './types.js';

function addLog(ex: Execution, read: (limit: LimitCheck) => Uint8Array): void {
  if (ex.logs.length >= ex.limits.maxLogs) ex.fail('LogsOverflow', `more than max_logs ${ex.limits.maxLogs} log lines`);
  const bytes = read(ex.limit('maxLogSize', 'LogLengthOverflow'));
  const line = ex.memory.utf8(bytes, 'log message');
  ex.hold(bytes.length, 'log line');
  ex.logs.push(line);
}

function addEvent(ex: Execution, eventPtr: bigint, handler: string | null): void {
  ex.memory.check(eventPtr, 32n, 'event');
  const kindBytes = ex.readBuffer(eventPtr, 'event kind', ex.limit('maxEventKindSize', 'EventKindSizeOverflow'));
  const data = ex.readBuffer(eventPtr + 16n, 'event data', ex.limit('maxEventDataSize', 'EventDataSizeOverflow'));
  if (ex.events.length >= ex.limits.maxEvents) ex.fail('EventsOverflow', `more than max_events ${ex.limits.maxEvents} events`);
  const kind = ex.memory.utf8(kindBytes, 'event kind');
  ex.hold(kindBytes.length + data.length + (handler?.length ?? 0), 'event');
  ex.events.push({ kind, data, handler });
}

export const logging: FamilyImpl<'logging'> = {
  log_utf8(ex, logPtr) {
    addLog(ex, (limit) => ex.readBuffer(logPtr, 'log message', limit));
  },
  js_std_d_print(ex, _ctxPtr, messagePtr, messageLen) {
    // Raw pointer and length, not a descriptor: the length is checked before the bytes are read.
    addLog(ex, (limit) => {
      if (messageLen > BigInt(limit.max)) ex.fail(limit.error, `log message of ${messageLen} bytes exceeds ${limit.name} ${limit.max}`);
      const bytes = ex.memory.read(messagePtr, messageLen, 'log message');
      ex.chargeBytes(bytes.length);
      return bytes;
    });
    return 0;
  },
  emit(ex, eventPtr) {
    addEvent(ex, eventPtr, null);
  },
  emit_with_handler(ex, eventPtr, handlerPtr) {
    // The reference silently drops a handler name that is not UTF-8; we trap so the contract author sees it.
    const handler =
      handlerPtr === 0n
        ? null
        : ex.readString(handlerPtr, 'handler name', ex.limit('maxMethodNameLength', 'EventKindSizeOverflow'));
    addEvent(ex, eventPtr, handler === '' ? null : handler);
  },
  xcall(ex, xcallPtr) {
    // XCall: 48 bytes {context_id Buffer (32 bytes), function Buffer, params Buffer}.
    ex.memory.check(xcallPtr, 48n, 'xcall');
    const contextId = ex.readBuffer(xcallPtr, 'xcall context id');
    if (contextId.length !== 32) ex.fail('InvalidMemoryAccess', `xcall context id must be 32 bytes, got ${contextId.length}`);
    const fn = ex.readString(xcallPtr + 16n, 'xcall function', ex.limit('maxXcallFunctionSize', 'XCallFunctionSizeOverflow'));
    const params = ex.readBuffer(xcallPtr + 32n, 'xcall params', ex.limit('maxXcallParamsSize', 'XCallParamsSizeOverflow'));
    if (ex.xcalls.length >= ex.limits.maxXcalls) ex.fail('XCallsOverflow', `more than max_xcalls ${ex.limits.maxXcalls} xcalls`);
    ex.hold(contextId.length + fn.length + params.length, 'xcall');
    ex.xcalls.push({ contextId, function: fn, params });
  },
};
