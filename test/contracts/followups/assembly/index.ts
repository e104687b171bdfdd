// followups: events with handlers and cross-context calls, which the host runs after a successful call.
import { input, inputString, returnOk, log, emitWithHandler, xcall, storageWrite, storageRead, contextId, createContext, jsonParse, JsonValue } from "../../../../sdk/assemblyscript/assembly/index";
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

/** Reads a string field of a JSON object input, or panics naming it. */
function field(args: JsonValue, name: string): string {
  const v = args.getString(name);
  if (v === null) throw new Error("missing string field " + name);
  return v;
}

/** Decodes 64 hex characters, or panics. */
function id32(hex: string): Uint8Array {
  const b = fromHex(hex);
  if (b === null || b.length != 32) throw new Error("expected 64 hex characters");
  return b;
}

function inputObject(): JsonValue {
  const args = jsonParse(inputString());
  if (args === null) throw new Error("input must be a JSON object");
  return args;
}

/** {"app":hex(32),"alias":string} → null: queues the creation of a context whose application is `app`. */
export function create_context(): void {
  const args = inputObject();
  createContext<string>("hostlink", id32(field(args, "app")), "", field(args, "alias"));
  returnOk("null");
}

/** {"context_id":hex(32),"function":string,"params":string} → null: queues that xcall. */
export function xcall_json(): void {
  const args = inputObject();
  xcall<string>(id32(field(args, "context_id")), field(args, "function"), field(args, "params"));
  returnOk("null");
}
