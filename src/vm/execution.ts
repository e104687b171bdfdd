/**
 * The state of one execution as host functions see it: the message, limits, registers, storage overlay,
 * logs, events and the return value. A fresh Execution is made for every call, so nothing leaks between calls.
 */
import { GuestError, type GuestErrorName } from '../errors.js';
import type { CrossCall, EmittedEvent, Effects } from '../protocol/effects.js';
import { LIMIT_JSON_NAMES, type ExecutionMessage, type VmLimits } from '../protocol/message.js';
import { HOST_FUNCTIONS, type HostFunctionName } from './host-functions.generated.js';
import type { HostClient } from './host-client.js';
import { GuestMemory, type LimitCheck } from './memory.js';
import { MemoryBudget } from './memory-budget.js';
import { NodeActions } from './node-actions.js';
import { Registers } from './registers.js';
import { StorageOverlay, type StorageSource } from './storage-overlay.js';

/** Gas accounting shared by the instrumented code and host functions (see instrument/meter.ts). */
export interface GasMeter {
  /** Charges gas; throws OutOfGas when the limit is exceeded. */
  charge(amount: bigint): void;
  gasUsed(): bigint;
}

export type ReturnValue = { ok: true; bytes: Uint8Array } | { ok: false; bytes: Uint8Array };

export class Execution {
  readonly limits: VmLimits;
  /** Bytes held for the guest outside its linear memory (registers, overlays, pending effects). */
  readonly budget: MemoryBudget;
  readonly registers: Registers;
  readonly storage: StorageOverlay;
  readonly logs: string[] = [];
  readonly events: EmittedEvent[] = [];
  readonly xcalls: CrossCall[] = [];
  returnValue: ReturnValue | null = null;
  /** The call's artifact (flush_delta or commit) and the guest's root hash (commit only); see crdt/. */
  artifact: Uint8Array | null = null;
  rootHash: Uint8Array | null = null;
  /** Private storage, blobs, context mutations, proposals, randomness (node-actions.ts). */
  readonly node: NodeActions;
  /** Host function being served: named in errors and used to charge per-byte gas. */
  private fn = '(none)';
  /** Per-byte gas of the function being served (protocol/gas-costs.json). */
  private perByte = 0n;
  private mem: GuestMemory | null = null;

  constructor(
    readonly message: ExecutionMessage,
    storageSource: StorageSource,
    readonly meter: GasMeter,
    /** The host connection, for host queries (absent: those functions trap HostUnavailable). */
    host?: HostClient,
  ) {
    this.limits = message.limits;
    const current = (): string => this.fn;
    this.budget = new MemoryBudget(this.limits.maxExecutionMemory, current);
    this.registers = new Registers(this.limits, current, this.budget);
    this.storage = new StorageOverlay(storageSource, this.budget);
    this.node = new NodeActions(message, host, (kind, detail) => this.fail(kind, detail), this.budget);
  }

  /** Called by the import wrapper on entry to every host function: charges its base gas before any work. */
  enter(fn: HostFunctionName): void {
    const { base, perByte } = HOST_FUNCTIONS[fn].gas;
    this.fn = fn;
    this.perByte = BigInt(perByte);
    this.meter.charge(BigInt(base));
  }

  /** Charges the current function's per-byte cost for bytes moved across the boundary. */
  chargeBytes(n: number): void {
    if (this.perByte !== 0n && n > 0) this.meter.charge(this.perByte * BigInt(n));
  }

  get currentFunction(): string {
    return this.fn;
  }

  attachMemory(memory: WebAssembly.Memory): void {
    this.mem = new GuestMemory(memory, () => this.fn);
  }

  get memory(): GuestMemory {
    if (this.mem === null) this.fail('InvalidMemoryAccess', 'the module has no exported memory');
    return this.mem;
  }

  fail(kind: GuestErrorName, detail: string): never {
    throw new GuestError(kind, this.fn, detail);
  }

  /** A limit for readBuffer/readString: its value in this execution, the error it raises, its name in messages. */
  limit(key: keyof VmLimits, error: GuestErrorName): LimitCheck {
    return { max: this.limits[key], error, name: LIMIT_JSON_NAMES[key] };
  }

  /** Reads the bytes a descriptor points to, charging per-byte gas; optional limit checked before reading. */
  readBuffer(ptr: bigint, what: string, limit?: LimitCheck): Uint8Array {
    const bytes = this.memory.buffer(ptr, what, limit);
    this.chargeBytes(bytes.length);
    return bytes;
  }

  /** Reads a UTF-8 string through a descriptor (BadUTF8 on invalid bytes). */
  readString(ptr: bigint, what: string, limit?: LimitCheck): string {
    return this.memory.utf8(this.readBuffer(ptr, what, limit), what);
  }

  /** Counts a new pending effect of `bytes` bytes against max_execution_memory (before it is queued). */
  hold(bytes: number, what: string): void {
    this.budget.hold(bytes, what);
  }

  /** Replaces the return value (the last value_return wins), counting it against max_execution_memory. */
  setReturnValue(value: ReturnValue): void {
    this.budget.adjust(value.bytes.length - (this.returnValue?.bytes.length ?? 0), `return value of ${value.bytes.length} bytes`);
    this.returnValue = value;
  }

  /** Sets the call's artifact (flush_delta or commit), counting it against max_execution_memory. */
  setArtifact(artifact: Uint8Array): void {
    this.budget.adjust(artifact.length - (this.artifact?.length ?? 0), `artifact of ${artifact.length} bytes`);
    this.artifact = artifact;
  }

  /** Puts bytes in a register, charging per-byte gas. */
  setRegister(id: bigint, bytes: Uint8Array): void {
    this.chargeBytes(bytes.length);
    this.registers.set(id, bytes);
  }

  effects(): Effects {
    return {
      gasUsed: this.meter.gasUsed(),
      logs: this.logs,
      events: this.events,
      xcalls: this.xcalls,
      writes: this.storage.delta(),
      artifact: this.artifact,
      rootHash: this.rootHash,
      ...this.node.effects(),
    };
  }
}
