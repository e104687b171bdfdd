// followups: events with handlers and cross-context calls, which the host runs after a successful call.
import { input, inputString, returnOk, log, emitWithHandler, xcall, storageWrite, storageRead, contextId } from "../../../../sdk/assemblyscript/assembly/index";
import { fromHex } from "../../../../sdk/assemblyscript/assembly/buffers";

/** Emits one event whose handler is `on_event`, with the input as its data. */
export function emit_handled(): void {
  emitWithHandler<Uint8Array>("done", input(), "on_event");
  returnOk("null");
}

/** A handler: stores its input under "handled:" + the number of calls so far, and logs it. */
export function on_event(): void {
  const seen = storageRead<string>("seen");
  const n: i32 = seen === null ? 0 : I32.parseInt(String.UTF8.decode(seen.buffer));
  storageWrite<string, string>("seen", (n + 1).toString());
  storageWrite<string, Uint8Array>("handled:" + n.toString(), input());
  log("handled " + inputString());
  returnOk("null");
}

/** Queues an xcall of `on_event` in the context given as 64 hex characters of input, with params "from-xcall". */
export function xcall_to(): void {
  const target = fromHex(inputString());
  if (target === null || target.length != 32) throw new Error("input must be 64 hex characters");
  xcall<string>(target, "on_event", "from-xcall");
  returnOk("null");
}

/** Emits an event whose handler is `chain` itself: only the host's depth limit stops it. */
export function chain(): void {
  emitWithHandler<string>("again", "x", "chain");
  returnOk("null");
}

/** Emits 12 handled events: more than the host's breadth limit. */
export function fanout(): void {
  for (let i = 0; i < 12; i++) emitWithHandler<string>("many", i.toString(), "on_event");
  returnOk("null");
}

/** Emits a handled event, then fails: handlers of a failed call never run. */
export function emit_then_fail(): void {
  emitWithHandler<string>("done", "never", "on_event");
  throw new Error("failing after emit");
}

/** The context id as hex (for tests). */
export function whoami(): void {
  returnOk(contextId());
}
