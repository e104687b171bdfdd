/**
 * Typed Host events: what an embedding node (and `hostlink serve`, and the metrics in src/metrics/) can watch.
 *
 *   const off = host.events.on('call.finished', (e) => console.log(e.method, e.result, e.durations.vmMs));
 *   off();
 *
 * Listeners run synchronously where the event happens and must be quick; one that throws is reported to the
 * host's logger and never disturbs the call. Every call has a `callId` (a counter per Host, starting at 1)
 * that links its queued, started and finished events; follow-up calls name their parent's id.
 */
import { GUEST_ERROR_NAMES } from '../errors.js';
import type { ExecutionResult } from '../protocol/result.js';
import type { ResultCodeName } from '../protocol/generated.js';
import type { ResultReason } from '../protocol/reasons.js';
import type { MethodCount, TraceEntry, TraceRead } from './call-trace.js';
import type { FollowUpHalt, Outcome } from './host.js';
import type { HostLogger } from './logger.js';

export type CallMode = 'pool' | 'oneshot';

/** Identifies one call in every event about it. */
export interface CallInfo {
  callId: number;
  /** The call whose success ran this one (event handler or xcall), or null. */
  parentCallId: number | null;
  /** The contract method as the caller named it: any text (the VM refuses names its rule does not allow; protocol/method-name.ts). */
  method: string;
  contextId: Uint8Array;
  codeHash: Uint8Array;
  mode: CallMode;
}

export interface CallStarted extends CallInfo {
  /** The VM process that took the call. */
  vmPid: number;
  /** Milliseconds from submission until a VM took it (context lane + waiting for a free VM or a VM start). */
  queueMs: number;
}

export interface CallDurations {
  /** Submission until a VM took the call (the whole call when no VM ever took it). */
  queueMs: number;
  /** A VM took it until its result, crash or deadline. */
  vmMs: number;
  /** Committing the outcome (the LMDB transaction and state root), or reading the root when nothing applied. */
  applyMs: number;
  totalMs: number;
}

export interface CallFinished extends CallInfo {
  result: ResultCodeName;
  /** A bounded name for why it ended: 'ok', 'user', 'timeout', 'out_of_gas', a guest error name… (see callReason). */
  reason: string;
  /** The error message (null for a return). */
  message: string | null;
  applied: boolean;
  gasUsed: bigint;
  stateRoot: Uint8Array;
  vmPid: number | null;
  durations: CallDurations;
  /** Protocol requests of this call, per method: count and body bytes each way. */
  hostCalls: Record<string, MethodCount>;
  /** Requests the VM made for this call (each one a round trip). */
  roundTrips: number;
  /** The requests in order (at most MAX_TRACE_ENTRIES; `traceDropped` counts the rest). */
  trace: TraceEntry[];
  traceDropped: number;
  /** The execution message as the VM received it (JSON, docs/message.md). */
  messageJson: string;
  /**
   * The storage reads answered, in order, when the host records them (HostOptions.traceReads): with `messageJson`
   * and the code, what a replay of the execution needs. Null when not recorded.
   */
  reads: TraceRead[] | null;
  /** False when the reads went past the per-call cap and later ones are missing. */
  readsComplete: boolean;
  /** The outcome as `host.call` returns it (its `followUps` are filled in after this event: each has its own). */
  outcome: Outcome;
}

/**
 * A follow-up of this call's tree ended by a node failure, and the follow-ups after it did not run (emitted for
 * the embedder's call, once its tree is done, before host.call resolves; Outcome.halted is the same).
 */
export interface CallHalted extends CallInfo {
  halt: FollowUpHalt;
}

/** host.call threw after the call was queued (no outcome: the store failed, a VM could not be launched…). */
export interface CallFailed extends CallInfo {
  error: string;
}

export interface VmLaunched {
  /** The VM's process id; for a VM on a remote worker, its id on that machine (see `worker`). */
  pid: number;
  mode: CallMode;
  /** Set for a VM on a remote worker: the worker's slot address (HOST:PORT); the pid is a process there. */
  worker?: string;
}

export interface VmExited {
  /** As in vm.launched. */
  pid: number;
  mode: CallMode;
  /** As in vm.launched. */
  worker?: string;
  exitCode: number | null;
  signal: string | null;
  /** Milliseconds the process lived. */
  lifetimeMs: number;
}

/** A VM process ended while it had a call (the call ends with internal_error vm_crash). */
export interface VmCrashed {
  pid: number;
  callId: number;
  exitCode: number | null;
  signal: string | null;
  /** The last line the VM wrote to stderr. */
  lastLine: string;
  /** Set for a VM on a remote worker: the worker's slot address (HOST:PORT); the pid is a process there. */
  worker?: string;
}

export interface HostEventMap {
  'call.queued': CallInfo;
  'call.started': CallStarted;
  'call.finished': CallFinished;
  'call.failed': CallFailed;
  'call.halted': CallHalted;
  'vm.launched': VmLaunched;
  'vm.exited': VmExited;
  'vm.crashed': VmCrashed;
}
export type HostEventName = keyof HostEventMap;
export const HOST_EVENT_NAMES: readonly HostEventName[] = ['call.queued', 'call.started', 'call.finished', 'call.failed', 'call.halted', 'vm.launched', 'vm.exited', 'vm.crashed'];

export type HostListener<K extends HostEventName> = (event: HostEventMap[K]) => void;

export class HostEvents {
  private readonly listeners = new Map<HostEventName, Set<(event: never) => void>>();

  constructor(private readonly logger: HostLogger) {}

  /** Adds a listener; returns the function that removes it. */
  on<K extends HostEventName>(name: K, listener: HostListener<K>): () => void {
    let set = this.listeners.get(name);
    if (set === undefined) this.listeners.set(name, (set = new Set()));
    set.add(listener as (event: never) => void);
    return () => this.off(name, listener);
  }

  off<K extends HostEventName>(name: K, listener: HostListener<K>): void {
    this.listeners.get(name)?.delete(listener as (event: never) => void);
  }

  /** True when someone listens (lets the host skip building an event nobody reads). */
  has(name: HostEventName): boolean {
    return (this.listeners.get(name)?.size ?? 0) > 0;
  }

  emit<K extends HostEventName>(name: K, event: HostEventMap[K]): void {
    const set = this.listeners.get(name);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as HostListener<K>)(event);
      } catch (e) {
        this.logger.error('a host event listener threw; the call is unaffected', { event: name, error: (e as Error)?.message ?? String(e) });
      }
    }
  }
}

/**
 * Stop reasons used as metric labels: the host-function error names and these catalogued result reasons
 * (protocol/reasons.json). The validator-only and store reasons are left out on purpose and count as 'other'.
 */
const LABELLED_REASONS: readonly ResultReason[] = [
  'timeout',
  'vm_crash',
  'protocol_violation',
  'out_of_gas',
  'stack_overflow',
  'wasm_trap',
  'method_not_found',
  'method_not_function',
  'invalid_method_name',
  'invalid_module',
  'module_rejected',
  'code_not_found',
  'result_too_large',
  'invalid_message',
  'host_error',
  'vm_bug',
];
const STOP_REASONS: ReadonlySet<string> = new Set([...GUEST_ERROR_NAMES, ...LABELLED_REASONS]);

/**
 * A bounded reason for a result, safe as a metric label: 'ok' for a return, 'panic' or 'user' for a user error
 * (its message is the contract's own text), else the message's first word when it is a known stop reason and
 * 'other' otherwise (a compromised VM chooses its message: it must not choose label values).
 */
export function callReason(result: ExecutionResult): string {
  if (result.code === 'return') return 'ok';
  if (result.code === 'user_error') return result.message.startsWith('Panic') ? 'panic' : 'user';
  if (result.message.startsWith('module rejected')) return 'module_rejected';
  const first = /^[A-Za-z_]+/.exec(result.message)?.[0] ?? '';
  return STOP_REASONS.has(first) ? first : 'other';
}
