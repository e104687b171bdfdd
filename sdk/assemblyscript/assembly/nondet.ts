// Non-deterministic blocks and sandboxes (Hostlink extension; docs/nondet.md in the repository).
//
//   const r = runNondet("fetch_price", "check_price", url);   // leader: runs fetch_price; validator: check_price
//   if (r.isReturn) ... r.text ...                             // a UserError comes back too; a VMError ends the call
//
// The leader method runs in a non-deterministic sub-instance: it may fetch and read the machine's time and
// randomness, and may not touch storage, emit, xcall or start another block. A validator method reads the
// leader's proposal with leaderResult() and answers with agree() or disagree().
import { run_nondet, sandbox as hostSandbox, nondet_leader_result, value_return } from "./env";
import { bytesDescriptor, toBytes, utf8 } from "./buffers";
import { DATA_REGISTER, readRegister } from "./registers";

/** Result codes of a block or sandbox: Return, UserError, VMError. */
export const SUB_RETURN: i32 = 0;
export const SUB_USER_ERROR: i32 = 1;
export const SUB_VM_ERROR: i32 = 2;

/** What a block or a sandbox produced: its code and its returned bytes or UTF-8 error message. */
export class SubResult {
  constructor(public code: i32, public data: Uint8Array) {}

  get isReturn(): bool {
    return this.code == SUB_RETURN;
  }
  get isUserError(): bool {
    return this.code == SUB_USER_ERROR;
  }
  get isVmError(): bool {
    return this.code == SUB_VM_ERROR;
  }
  /** The returned bytes or the error message, as UTF-8 text. */
  get text(): string {
    return String.UTF8.decodeUnsafe(this.data.dataStart, <usize>this.data.byteLength, false);
  }
}

/**
 * Runs a non-deterministic block: `leader` and `validator` are exported methods of this contract, `input` is
 * what both read with input(). Returns Return or UserError; a VMError, a disagreement or a missing proposal
 * ends the call.
 */
export function runNondet<I>(leader: string, validator: string, input: I): SubResult {
  const code = run_nondet(bytesDescriptor(utf8(leader)), bytesDescriptor(utf8(validator)), bytesDescriptor(toBytes<I>(input)), DATA_REGISTER);
  return new SubResult(code, readRegister(DATA_REGISTER));
}

/**
 * Runs `method` of this contract in a sandbox with this instance's determinism. It cannot read storage or start
 * blocks; it writes (blindly) only when `allowWriteOps` and this instance may write. Every result, VMError
 * included, comes back as a value.
 */
export function sandbox<I>(method: string, input: I, allowWriteOps: bool = false): SubResult {
  const code = hostSandbox(bytesDescriptor(utf8(method)), bytesDescriptor(toBytes<I>(input)), allowWriteOps ? 1 : 0, DATA_REGISTER);
  return new SubResult(code, readRegister(DATA_REGISTER));
}

/** In a validator method: the leader's proposal; null anywhere else. */
export function leaderResult(): SubResult | null {
  const code = nondet_leader_result(DATA_REGISTER);
  if (code < 0) return null;
  return new SubResult(code, readRegister(DATA_REGISTER));
}

function returnVerdict(byte: u8): void {
  const b = new Uint8Array(1);
  b[0] = byte;
  const vr = heap.alloc(24);
  store<u64>(vr, 0);
  store<u64>(vr, <u64>b.dataStart, 8);
  store<u64>(vr, 1, 16);
  value_return(vr);
}

/** In a validator method: accept the proposal (returns calldata `true`). */
export function agree(): void {
  returnVerdict(0x10);
}

/** In a validator method: reject the proposal (returns calldata `false`; anything but `true` rejects). */
export function disagree(): void {
  returnVerdict(0x08);
}

/** agree() when `ok`, else disagree(). */
export function verdict(ok: bool): void {
  returnVerdict(ok ? 0x10 : 0x08);
}
