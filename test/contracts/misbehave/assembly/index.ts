// misbehave: one method per failure path the VM and host must contain. Each method's comment says
// what the VM is expected to report. Methods take no input unless stated.
import {
  input, inputString, returnOk, panic, storageWrite, utf8, jsonParseBytes, jsonNumber, log, emit,
} from "../../../../sdk/assemblyscript/assembly/index";
import { log_utf8, storage_read, storage_write } from "../../../../sdk/assemblyscript/assembly/env";
import { bytesDescriptor, descriptor } from "../../../../sdk/assemblyscript/assembly/buffers";

/** Key written by `write_ok` and `write_then_trap`. */
const WRITTEN_KEY = "misbehave:written";

/** Never terminates: the VM must stop it by gas or deadline. */
export function loop_forever(): void {
  // The store keeps the loop observable, so no optimiser may drop it.
  let i: u32 = 0;
  while (true) {
    store<u32>(0, i++);
  }
}

/** Executes `unreachable`: WasmTrap Unreachable. */
export function trap(): void {
  unreachable();
}

/** Loads from the last byte below 4 GiB, far beyond the memory: WasmTrap MemoryOutOfBounds. */
export function oob(): void {
  const v = load<u8>(<usize>0xffff_fff0);
  returnOk(v.toString());
}

/**
 * Panics through panic_utf8 with the message "misbehave: deliberate panic" and this line's location
 * (`throw` goes through the SDK's abort replacement, which calls panic_utf8).
 */
export function panic_msg(): void {
  throw new Error("misbehave: deliberate panic");
}

/** Panics through the SDK's `panic` with the message "misbehave: sdk panic" and file "misbehave" (line 0). */
export function panic_sdk(): void {
  panic("misbehave: sdk panic", "misbehave");
}

/** log_utf8 with the bytes ff fe 80 (not UTF-8): host error BadUTF8. */
export function bad_utf8_log(): void {
  const b = new Uint8Array(3);
  b[0] = 0xff;
  b[1] = 0xfe;
  b[2] = 0x80;
  log_utf8(bytesDescriptor(b));
}

/** Logs 101 lines (max_logs is 100): host error LogsOverflow after 100 logs are kept. */
export function log_flood(): void {
  for (let i = 0; i < 101; i++) log_utf8(bytesDescriptor(utf8("line " + i.toString())));
}

/** storage_write with a key of 1 MiB + 1 bytes: host error KeyLengthOverflow. */
export function huge_key(): void {
  const key = new Uint8Array((1 << 20) + 1);
  key.fill(0x6b);
  storageWrite<Uint8Array, string>(key, "v");
}

/** storage_read with a descriptor pointer just past the end of memory: host error InvalidMemoryAccess. */
export function bad_pointer(): void {
  const end = <u64>memory.size() << 16;
  storage_read(end, 0);
}

/** Also bad: a valid descriptor whose data range runs past the end of memory. */
export function bad_slice(): void {
  const end = <usize>memory.size() << 16;
  storage_read(descriptor(end - 4, 64), 0);
}

let sink: u64 = 0;

function dive(n: u64, limit: u64): u64 {
  if (n >= limit) return n;
  // Not a tail call and with a side effect, so it stays real recursion.
  sink += n;
  return dive(n + 1, limit) + 1;
}

/**
 * Recurses: input {"depth": n} stops at n and returns n; with no input (or no depth) it recurses
 * until the VM's stack limit: WasmTrap StackOverflow.
 */
export function recurse(): void {
  const args = jsonParseBytes(input());
  let limit = u64.MAX_VALUE;
  if (args !== null && args.isObject) {
    const d = args.getNumber("depth");
    if (!isNaN(d) && d >= 0) limit = <u64>d;
  }
  const r = dive(0, limit);
  returnOk(jsonNumber(<f64>(r >> 1)));
}

/** Writes WRITTEN_KEY = "written" and returns null: the contrast case for write_then_trap. */
export function write_ok(): void {
  storageWrite<string, string>(WRITTEN_KEY, "written");
  returnOk("null");
}

/** Writes WRITTEN_KEY, sets a return value, then traps: state and return value must be discarded. */
export function write_then_trap(): void {
  storage_write(bytesDescriptor(utf8(WRITTEN_KEY)), bytesDescriptor(utf8("written")), 0);
  returnOk("null");
  unreachable();
}

/** Returns exactly 1 MiB: a JSON string of 1048574 'a' between quotes. */
export function big_return(): void {
  const out = new Uint8Array(1 << 20);
  out.fill(0x61);
  out[0] = 0x22;
  out[out.length - 1] = 0x22;
  returnOk(out);
}

/** Returns the input bytes unchanged. */
export function echo(): void {
  returnOk(input());
}

/**
 * Text meant for the operator's terminal: the input (UTF-8) becomes a log line, an event's kind and data, and then
 * the panic message. The CLI must show it without letting its control characters act on the terminal.
 */
export function terminal_text(): void {
  const text = inputString();
  log(text);
  emit(text.length > 100 ? text.slice(0, 100) : text, text);
  panic(text, "misbehave");
}
