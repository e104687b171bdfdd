// nondet: front ends for non-deterministic blocks and sandboxes, so every role and rule can be tested through
// real VM processes. Inputs are plain text:
//   nd, nd_catch, nd_store, nd_twice   "leader|validator|payload"  (block input: "leader\npayload")
//   sb, sb_write                      "method|payload"
// Leader/sandbox methods (l_*, s_*) read the payload after the first line; validators (v_*) judge leaderResult().
import {
  inputString, returnOk, returnErr, log, storageRead, storageWrite, emit, xcall, timeNow, randomBytes, toHex, fetch,
  runNondet, sandbox, leaderResult, agree, disagree, verdict, SubResult, bytesEqual, utf8,
} from "../../../../sdk/assemblyscript/assembly/index";

function field(s: string, i: i32): string {
  const parts = s.split("|", 3);
  return i < parts.length ? parts[i] : "";
}

/** The payload of a block or sandbox input (after the first line). */
function payload(): string {
  const s = inputString();
  const nl = s.indexOf("\n");
  return nl < 0 ? s : s.substring(nl + 1);
}

/** The leader method named on the first line of a block input. */
function leaderName(): string {
  const s = inputString();
  const nl = s.indexOf("\n");
  return nl < 0 ? "" : s.substring(0, nl);
}

function describe(r: SubResult): string {
  return r.code.toString() + ":" + r.text;
}

function block(): SubResult {
  const s = inputString();
  const parts = s.split("|", 3);
  const payloadText = parts.length > 2 ? s.substring(parts[0].length + parts[1].length + 2) : "";
  return runNondet(parts[0], parts.length > 1 ? parts[1] : "", parts[0] + "\n" + payloadText);
}

// ---------------------------------------------------------------- main methods

/** Runs one block; Return gives its text, a UserError becomes this call's UserError. */
export function nd(): void {
  const r = block();
  if (r.isUserError) return returnErr(r.text);
  returnOk(r.text);
}

/** Runs one block and handles a UserError itself. */
export function nd_catch(): void {
  const r = block();
  returnOk(r.isUserError ? "handled " + r.text : "returned " + r.text);
}

/** Runs one block and stores its text under "result" (the delta depends on the block). */
export function nd_store(): void {
  const r = block();
  storageWrite<string, string>("result", r.text);
  returnOk(r.text);
}

/** Runs the same block twice; returns both texts. */
export function nd_twice(): void {
  const a = block();
  const b = block();
  returnOk(describe(a) + "," + describe(b));
}

/** Runs `n` trivial blocks (payload is the count), for the block cap. */
export function nd_many(): void {
  const n = I32.parseInt(field(inputString(), 2));
  for (let i = 0; i < n; i++) runNondet("l_ret", "v_agree", "l_ret\nx");
  returnOk(n.toString());
}

/** Runs a sandbox; returns "code:text". */
export function sb(): void {
  const s = inputString();
  const m = field(s, 0);
  returnOk(describe(sandbox(m, s.substring(m.length + 1), false)));
}

/** Runs a sandbox allowed to write; returns "code:text". */
export function sb_write(): void {
  const s = inputString();
  const m = field(s, 0);
  returnOk(describe(sandbox(m, s.substring(m.length + 1), true)));
}

/** A fork bomb: every level starts a sandbox of itself; the deepest one gets a VMError it handles. */
export function bomb(): void {
  const r = sandbox("bomb", "", false);
  returnOk(r.isVmError ? "caught " + r.text : r.text);
}

/** Deterministic time and randomness of the main instance. */
export function det_time(): void {
  returnOk(timeNow().toString() + " " + toHex(randomBytes(8)));
}

// ---------------------------------------------------------------- leader and sandbox methods

export function l_ret(): void {
  returnOk(payload());
}

export function l_user(): void {
  returnErr(payload());
}

export function l_trap(): void {
  unreachable();
}

export function l_storage(): void {
  const v = storageRead<string>("result");
  returnOk(v === null ? "absent" : "present");
}

export function l_write(): void {
  storageWrite<string, string>("k", payload());
  returnOk("wrote");
}

export function l_emit(): void {
  emit<string>("ev", payload());
  returnOk("emitted");
}

export function l_xcall(): void {
  xcall<string>(new Uint8Array(32), "nd", "x");
  returnOk("queued");
}

export function l_nested(): void {
  const r = runNondet("l_ret", "v_agree", "l_ret\nx");
  returnOk(r.text);
}

/** Machine time and randomness: "nanos hex". */
export function l_time(): void {
  returnOk(timeNow().toString() + " " + toHex(randomBytes(8)));
}

/** Fetches the payload URL; a failed fetch is a UserError. */
export function l_fetch(): void {
  const r = fetch<string>(payload(), "GET", [], "");
  if (!r.ok) return returnErr(r.text);
  returnOk(r.text);
}

/** Logs, for the sync case: never runs there. */
export function l_mark(): void {
  log("SHOULD NOT BE PRINTED");
  returnOk("ran");
}

/** A sandbox inside a block (allowed: same determinism). */
export function l_sandbox(): void {
  returnOk(describe(sandbox("s_ret", "sandboxed", false)));
}

export function s_ret(): void {
  returnOk(payload());
}

export function s_user(): void {
  returnErr(payload());
}

export function s_trap(): void {
  unreachable();
}

export function s_write(): void {
  storageWrite<string, string>("sandboxed", payload());
  emit<string>("sandbox-event", payload());
  returnOk("wrote");
}

export function s_read(): void {
  const v = storageRead<string>("sandboxed");
  returnOk(v === null ? "absent" : "present");
}

/** A block inside a sandbox: forbidden. */
export function s_nested(): void {
  const r = runNondet("l_ret", "v_agree", "l_ret\nx");
  returnOk(r.text);
}

/** A sandbox writing from a sandbox that may not write. */
export function s_sandbox_write(): void {
  returnOk(describe(sandbox("s_write", "inner", true)));
}

// ---------------------------------------------------------------- validator methods

export function v_agree(): void {
  agree();
}

export function v_disagree(): void {
  disagree();
}

export function v_trap(): void {
  unreachable();
}

/** Returns "true" as text, which is not calldata true: a disagreement. */
export function v_text_true(): void {
  returnOk("true");
}

export function v_mark(): void {
  log("SHOULD NOT BE PRINTED");
  agree();
}

/** Agrees when the proposal is a Return of this block's payload. */
export function v_same(): void {
  const r = leaderResult();
  verdict(r !== null && r.isReturn && r.text == payload());
}

/** Strict equality: runs the leader method itself (sandboxed) and compares code and bytes with the proposal. */
export function v_strict(): void {
  const r = leaderResult();
  if (r === null) return disagree();
  const mine = sandbox(leaderName(), inputString(), false);
  verdict(mine.code == r.code && bytesEqual(mine.data, r.data));
}

/** Accepts a numeric proposal within 5% of its own fetch of the payload URL. */
export function v_fetch_close(): void {
  const r = leaderResult();
  if (r === null || !r.isReturn) return disagree();
  const mine = fetch<string>(payload(), "GET", [], "");
  if (!mine.ok) return disagree();
  const a = F64.parseFloat(r.text);
  const b = F64.parseFloat(mine.text);
  verdict(!isNaN(a) && !isNaN(b) && Math.abs(a - b) <= 0.05 * Math.abs(b));
}

/** Reads storage: forbidden in a validator's block too. */
export function v_storage(): void {
  storageRead<string>("result");
  agree();
}

// ---------------------------------------------------------------- stack depth across nested instances

/** Recursion with a frame of a few locals; returns a value so it is not a tail call. */
function rec(n: i32, a: i64, b: i64): i64 {
  if (n <= 0) return a ^ b;
  return rec(n - 1, a + 1, b ^ a) + 1;
}

/**
 * "n0 n1 ... nk": recurses n0 frames, and at the bottom starts a sandbox of itself with "n1 ... nk"; returns
 * the chain of results. Shows that nested instances, each near its own stack limit, fit one native stack.
 */
export function deep(): void {
  const s = payload();
  const sp = s.indexOf(" ");
  const n = I32.parseInt(sp < 0 ? s : s.substring(0, sp));
  returnOk(deepAt(n, sp < 0 ? "" : s.substring(sp + 1)));
}

function deepAt(n: i32, rest: string): string {
  if (n > 0) {
    // Recurse first, then continue at the bottom of the recursion.
    return deepRec(n, rest);
  }
  return rest.length == 0 ? "bottom" : describe(sandbox("deep", "\n" + rest, false));
}

function deepRec(n: i32, rest: string): string {
  if (n == 0) return rest.length == 0 ? "bottom" : describe(sandbox("deep", "\n" + rest, false));
  const r = deepRec(n - 1, rest);
  return r;
}

// ---------------------------------------------------------------- what a block leaves behind

/** Leader method: logs `n` lines (the payload's count; its input stays in a register), returns "left". */
export function l_leave(): void {
  const n = I32.parseInt(payload());
  for (let i = 0; i < n; i++) log("leader line " + i.toString());
  returnOk("left");
}

/** Validator method: spins the payload's count of loop rounds (a validator that works harder than its leader), then agrees. */
export function v_burn(): void {
  const n = I32.parseInt(payload());
  let x: i32 = 0;
  for (let i = 0; i < n; i++) x = x * 31 + i;
  if (x == 12345) log("!");
  agree();
}

/** Validator method: logs as many lines as l_leave, holds its input in a register too, then agrees. */
export function v_leave(): void {
  const n = I32.parseInt(payload());
  for (let i = 0; i < n; i++) log("validator line " + i.toString());
  agree();
}

/**
 * "leader|validator|logs|bytes|payload": runs one block, then logs `logs` lines and writes a value of `bytes`
 * bytes, so the call's own limits (max_logs, max_execution_memory) decide what happens after the block.
 */
export function nd_then(): void {
  const s = inputString();
  const parts = s.split("|", 5);
  const r = runNondet(parts[0], parts[1], parts[0] + "\n" + s.substring(parts[0].length + parts[1].length + parts[2].length + parts[3].length + 4));
  const logs = I32.parseInt(parts[2]);
  for (let i = 0; i < logs; i++) log("main line " + i.toString());
  const bytes = I32.parseInt(parts[3]);
  if (bytes > 0) storageWrite<string, string>("big", "x".repeat(bytes));
  returnOk(r.text);
}
