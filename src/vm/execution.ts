/**
 * The state of one execution as host functions see it: the message, limits, registers, storage overlay,
 * logs, events and the return value. A fresh Execution is made for every call, so nothing leaks between calls.
 */
import { GuestError, type GuestErrorName } from '../errors.js';
import type { CrossCall, EmittedEvent, Effects } from '../protocol/effects.js';
import type { BlockResult } from '../protocol/nondet.js';
import { LIMIT_JSON_NAMES, type ExecutionMessage, type VmLimits } from '../protocol/message.js';
import { HOST_FUNCTIONS, type HostFunctionName } from './host-functions.generated.js';
import type { HostClient } from './host-client.js';
import { GuestMemory, type LimitCheck } from './memory.js';
import { MemoryBudget } from './memory-budget.js';
import { NodeActions } from './node-actions.js';
import { Registers } from './registers.js';
import { StorageOverlay, type StorageSource } from './storage-overlay.js';
import type { NondetBlocks } from './nondet-blocks.js';
import { forbiddenReason, MAIN_RULES, type InstanceRules, type SubInstanceRequest } from './sub-instance.js';

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
  /** Logs, events and xcalls: a sub-instance appends to its parent's, so limits count the whole call. */
  readonly logs: string[];
  readonly events: EmittedEvent[];
  readonly xcalls: CrossCall[];
  /** What this instance may do (sub-instance.ts); the main instance may do everything. */
  readonly rules: InstanceRules;
  readonly parent: Execution | null;
  /**
   * Gas the non-deterministic blocks' methods used so far (0 in a sync replay, where none runs): left out of the
   * gas left that sub-instances' shares are computed from, so that the deterministic code sees the same in every role.
   */
  blockGas = 0n;
  /** The main instance's non-deterministic blocks (nondet-blocks.ts); null in sub-instances. */
  nondet: NondetBlocks | null = null;
  /** Runs a sub-instance of the same module (set by the runner). */
  spawner: ((parent: Execution, request: SubInstanceRequest) => BlockResult) | null = null;
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
    /** For a sub-instance: the instance that started it and its rules. */
    sub?: { parent: Execution; rules: InstanceRules },
  ) {
    this.limits = message.limits;
    this.rules = sub?.rules ?? MAIN_RULES;
    this.parent = sub?.parent ?? null;
    const current = (): string => this.fn;
    // A sub-instance's bytes count against the call's one budget, and it writes into the caller's overlay (a
    // sub-instance may not read storage; a sandbox allowed to write writes blindly, so its writes leave with the
    // call's delta).
    this.budget = sub ? sub.parent.budget : new MemoryBudget(this.limits.maxExecutionMemory, current);
    this.registers = new Registers(this.limits, current, this.budget);
    this.storage = sub ? sub.parent.storage : new StorageOverlay(storageSource, this.budget);
    this.logs = sub ? sub.parent.logs : [];
    this.events = sub ? sub.parent.events : [];
    this.xcalls = sub ? sub.parent.xcalls : [];
    this.node = new NodeActions(message, host, (kind, detail) => this.fail(kind, detail), this.budget, sub?.parent.node.randomStream);
  }

  /** Called by the import wrapper on entry to every host function: access rules, then its base gas before any work. */
  enter(fn: HostFunctionName): void {
    const { base, perByte } = HOST_FUNCTIONS[fn].gas;
    this.fn = fn;
    this.perByte = BigInt(perByte);
    if (this.rules.kind !== 'main') {
      const reason = forbiddenReason(fn, this.rules);
      if (reason !== undefined) this.fail('Forbidden', reason);
    }
    this.meter.charge(BigInt(base));
  }

  /** Runs a sub-instance of the same module and returns its result (block encoding semantics). */
  spawn(request: SubInstanceRequest): BlockResult {
    if (this.spawner === null) this.fail('HostUnavailable', 'this execution cannot start sub-instances');
    return this.spawner(this, request);
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
      nondetResults: this.nondet?.results ?? [],
      nondetDisagreement: this.nondet?.disagreement ?? null,
      ...this.node.effects(),
    };
  }
}
