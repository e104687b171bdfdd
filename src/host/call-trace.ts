/**
 * What one execution asked of the host: every protocol request after the VM took the job, with its size and
 * timing, plus per-method counts. The session records into the job's trace; the host turns it into the
 * `call.finished` event and `hostlink call --trace`. Bounded: past MAX_TRACE_ENTRIES requests only the counts grow.
 *
 * Timings use the monotonic clock (performance.now) and are never visible to the VM.
 */
import { performance } from 'node:perf_hooks';

/** Requests kept in order per call; later ones are still counted (see `dropped`). */
export const MAX_TRACE_ENTRIES = 1000;
/** Bytes of recorded reads kept per call (keys, values and READ_ENTRY_BYTES each); past it the reads are marked incomplete. */
export const MAX_TRACE_READ_BYTES = 16 * 1024 * 1024;
/**
 * What one recorded read costs the host's heap besides its bytes (the entry and its two arrays), counted
 * against MAX_TRACE_READ_BYTES: counting only the bytes let a VM record millions of reads of an empty key,
 * about 45 MB of heap a second for as long as its deadline lasted.
 */
export const READ_ENTRY_BYTES = 128;

/** A committed-state read answered during the call: enough to replay the execution without the store. */
export interface TraceRead {
  key: Uint8Array;
  /** null: the key was absent. */
  value: Uint8Array | null;
}

export interface TraceEntry {
  /** Protocol method (protocol/methods.json). */
  method: string;
  /** Request body bytes (the VM's frame, without the 4-byte length prefix). */
  requestBytes: number;
  /** Response body bytes (the host's answer). */
  responseBytes: number;
  /** Milliseconds since the VM took the job when the request arrived. */
  atMs: number;
  /** Milliseconds the host took to answer. */
  hostMs: number;
}

export interface MethodCount {
  count: number;
  requestBytes: number;
  responseBytes: number;
}

export class CallTrace {
  /** performance.now() when a VM took the job; undefined while queued. */
  startedAt: number | undefined;
  /**
   * The VM process that took the job: set by whoever launched it (the pool, the one-shot runner), so a VM's
   * own claim in hello is used only when nothing else is known (in-process runs). 0 when unknown.
   */
  vmPid = 0;
  readonly entries: TraceEntry[] = [];
  readonly counts: Record<string, MethodCount> = {};
  roundTrips = 0;
  dropped = 0;
  /**
   * Whether the session keeps each request as an entry with its timings. The host turns it off for a job
   * made while nobody listens to `call.finished` (the one reader of entries): two clock reads, a closure and an
   * entry per request on the host's busiest path. Requests are still counted (counts, roundTrips) and, not
   * kept, add to `dropped`, so a listener added during the call sees every request accounted for.
   */
  recording = true;
  /** Set by the host: told once when a VM takes the job. */
  onBegin: ((trace: CallTrace) => void) | undefined;
  /** The storage reads answered, in order, when the host records them (HostOptions.traceReads); else null. */
  reads: TraceRead[] | null = null;
  /** False when reads were past MAX_TRACE_READ_BYTES and later ones were not kept. */
  readsComplete = true;
  private readBytes = 0;

  /** A VM took the job (pool: answered next_message; one-shot: said hello). */
  begin(claimedPid: number): void {
    if (this.startedAt !== undefined) return;
    this.startedAt = performance.now();
    if (this.vmPid === 0) this.vmPid = claimedPid;
    this.onBegin?.(this);
  }

  /** One storage read answered from committed state (kept only when `reads` is not null). */
  read(key: Uint8Array, value: Uint8Array | undefined): void {
    if (this.reads === null || !this.readsComplete) return;
    this.readBytes += READ_ENTRY_BYTES + key.length + (value?.length ?? 0);
    if (this.readBytes > MAX_TRACE_READ_BYTES) {
      this.readsComplete = false;
      return;
    }
    // The key is a view into the frame it came in: a copy, so that the record does not keep the whole frame.
    this.reads.push({ key: key.slice(), value: value ?? null });
  }

  /** One answered request; `arrivedAt` and `answeredAt` are performance.now() values. */
  record(method: string, requestBytes: number, responseBytes: number, arrivedAt: number, answeredAt: number): void {
    this.count(method, requestBytes, responseBytes);
    if (this.entries.length >= MAX_TRACE_ENTRIES) {
      this.dropped++;
      return;
    }
    const start = this.startedAt ?? arrivedAt;
    this.entries.push({ method, requestBytes, responseBytes, atMs: round3(arrivedAt - start), hostMs: round3(answeredAt - arrivedAt) });
  }

  /** One answered request counted without an entry (recording is off). */
  skip(method: string, requestBytes: number, responseBytes: number): void {
    this.count(method, requestBytes, responseBytes);
    this.dropped++;
  }

  private count(method: string, requestBytes: number, responseBytes: number): void {
    this.roundTrips++;
    const c = (this.counts[method] ??= { count: 0, requestBytes: 0, responseBytes: 0 });
    c.count++;
    c.requestBytes += requestBytes;
    c.responseBytes += responseBytes;
  }
}

/** Milliseconds to microsecond precision: enough for a trace, short in JSON. */
export const round3 = (ms: number): number => Math.round(ms * 1000) / 1000;
