/**
 * What `hostlink serve` remembers about recent calls: a bounded ring of call records built from the Host's
 * `call.finished` events (outcome, durations, host calls, trace), looked up by call id, and pushed to the
 * server-sent-event subscribers as they happen.
 */
import type { ServerResponse } from 'node:http';
import { haltJson, outcomeJson, hex, type HaltJson } from '../cli/common.js';
import { cutText } from '../terminal-text.js';
import type { Outcome } from '../host/call-types.js';
import type { CallFinished, HostEvents } from '../host/events.js';
import { round3 } from '../host/call-trace.js';
import { toJson } from './http.js';
import { extend } from '../extend.js';

export const DEFAULT_RECENT_CALLS = 500;
/** Largest outcome a kept record holds (the node keeps hundreds); bigger parts are summarised, not stored. */
export const MAX_KEPT_OUTCOME_BYTES = 64 * 1024;
/**
 * Largest outcome a record has in a list of recent calls (GET /api/calls, recent_calls); the call's own record
 * (GET /api/calls/ID) has the kept outcome. A list of 500 records of 64 KiB outcomes was a 30 MB answer.
 */
export const MAX_LISTED_OUTCOME_BYTES = 4 * 1024;
/**
 * Longest text a record keeps of what a caller, a contract or a VM chose and the outcome bounds above do not
 * cover: the method name, a failed call's error, a crashed VM's last line. Longer text is cut and says how long it
 * was. The node refuses method names the VM would refuse (api.ts), but a record must stay small whatever reached
 * it: a ring of 500 records that each kept an 11 MiB method name held 5 GiB.
 */
export const MAX_KEPT_TEXT_CHARS = 1024;
/** SSE subscribers at once; more get 503 (each one is an open connection). */
export const MAX_SUBSCRIBERS = 32;
/** Bytes a subscriber may leave unread before it is dropped (a stalled reader must not grow the node's memory). */
export const MAX_UNREAD_BYTES = 4 * 1024 * 1024;

export interface CallRecord {
  call_id: number;
  parent_call_id: number | null;
  /** Wall-clock time the call finished (for people; the node's results never depend on it). */
  finished_at: string;
  method: string;
  mode: string;
  code_hash: string;
  reason: string;
  vm_pid: number | null;
  durations_ms: { queue: number; vm: number; apply: number; total: number };
  round_trips: number;
  host_calls: CallFinished['hostCalls'];
  /** The outcome as `hostlink call --json` prints it (result, value or message, context, root, gas, logs…). */
  outcome: Record<string, unknown>;
}

/** `text`, or its first MAX_KEPT_TEXT_CHARS characters and its length when it is longer (never half a UTF-16 pair). */
export function keptText(text: string, most = MAX_KEPT_TEXT_CHARS): string {
  return cutText(text, most);
}

/** A halted tree's record: its method and reason (a crashed VM's text may be in it) kept like other text. */
function keptHalt(h: HaltJson): HaltJson {
  return extend(h, { method: keptText(h.method), reason: keptText(h.reason) });
}

/** The call record without its trace (lists and the event stream). */
export function callRecord(e: CallFinished): CallRecord {
  const d = e.durations;
  return {
    call_id: e.callId,
    parent_call_id: e.parentCallId,
    finished_at: new Date().toISOString(),
    method: keptText(e.method),
    mode: e.mode,
    code_hash: hex(e.codeHash),
    reason: e.reason,
    vm_pid: e.vmPid,
    durations_ms: { queue: round3(d.queueMs), vm: round3(d.vmMs), apply: round3(d.applyMs), total: round3(d.totalMs) },
    round_trips: e.roundTrips,
    host_calls: e.hostCalls,
    outcome: keptOutcome(...renderedWithoutBulk(e.outcome, e.contextId)),
  };
}

/**
 * The outcome rendered for keeping, with each part too large to keep (the value or message, the writes, events or
 * logs) left out before it is rendered: rendering 32 MiB of bytes as hex and then as JSON, only to find it too
 * large, cost the node over a second per call, several times the gas the call paid to hand the bytes over. The
 * parts left out are noted by their bytes.
 */
function renderedWithoutBulk(o: Outcome, contextId: Uint8Array): [Record<string, unknown>, Record<string, number>] {
  const r = o.result;
  const sizes: Record<string, number> = {
    value: r.code === 'return' && r.value instanceof Uint8Array ? r.value.length : 0,
    message: r.code === 'return' ? 0 : Buffer.byteLength(r.message),
    writes: o.writes.reduce((n, [k, v]) => n + k.length + (v?.length ?? 0), 0),
    events: o.events.reduce((n, e) => n + Buffer.byteLength(e.kind) + e.data.length, 0),
    logs: o.logs.reduce((n, l) => n + Buffer.byteLength(l), 0),
  };
  const omitted = Object.fromEntries(Object.entries(sizes).filter(([, n]) => n > MAX_KEPT_OUTCOME_BYTES));
  if (Object.keys(omitted).length === 0) return [outcomeJson(o, contextId), {}];
  const light: Outcome = extend(o, {
    result: 'value' in omitted ? { code: 'return', value: null } : 'message' in omitted && r.code !== 'return' ? extend(r, { message: '' }) : r,
    writes: 'writes' in omitted ? [] : o.writes,
    events: 'events' in omitted ? [] : o.events,
    logs: 'logs' in omitted ? [] : o.logs,
  });
  const json = outcomeJson(light, contextId);
  if ('message' in omitted) json['message'] = null;
  return [json, omitted];
}

/**
 * The outcome as the node keeps it: whole when small; otherwise writes, then events, logs and the value are
 * replaced by a note of what was left out, largest first, until it fits (the caller got the whole outcome).
 */
export function keptOutcome(o: Record<string, unknown>, alreadyOmitted: Record<string, number> = {}, most = MAX_KEPT_OUTCOME_BYTES): Record<string, unknown> {
  const omitted: Record<string, number> = { ...alreadyOmitted };
  const kept = Object.keys(omitted).length === 0 ? o : extend(o, { omitted_bytes: omitted });
  if (toJson(kept).length <= most) return kept;
  const trimmed: Record<string, unknown> = { ...kept };
  for (const field of ['writes', 'events', 'logs', 'value', 'message']) {
    const v = trimmed[field];
    if (v === undefined || field in omitted) continue;
    omitted[field] = toJson(v).length;
    trimmed[field] = Array.isArray(v) ? [] : null;
    trimmed['omitted_bytes'] = omitted;
    if (toJson(trimmed).length <= most) break;
  }
  return trimmed;
}

export interface TraceJson {
  call_id: number;
  method: string;
  requests: CallFinished['trace'];
  dropped: number;
}

export function traceJson(e: CallFinished): TraceJson {
  return { call_id: e.callId, method: keptText(e.method), requests: e.trace, dropped: e.traceDropped };
}

export class CallRecords {
  /** Each call's record, the same with its outcome cut for lists (often the same object), and its trace. */
  private readonly byId = new Map<number, { record: CallRecord; listed: CallRecord; trace: TraceJson }>();
  private readonly subscribers = new Set<ServerResponse>();
  private readonly offs: (() => void)[];

  constructor(
    events: HostEvents,
    private readonly capacity = DEFAULT_RECENT_CALLS,
  ) {
    const at = (): string => new Date().toISOString();
    this.offs = [
      events.on('call.finished', (e) => this.add(e)),
      // VM lifecycle, for the studio's node log (event: vm).
      events.on('vm.launched', (e) => this.publish('vm', { event: 'launched', at: at(), pid: e.pid, mode: e.mode, ...(e.worker !== undefined ? { worker: e.worker } : {}) })),
      events.on('vm.exited', (e) =>
        this.publish('vm', { event: 'exited', at: at(), pid: e.pid, mode: e.mode, exit_code: e.exitCode, signal: e.signal, ...(e.worker !== undefined ? { worker: e.worker } : {}) }),
      ),
      events.on('vm.crashed', (e) => this.publish('vm', { event: 'crashed', at: at(), pid: e.pid, call_id: e.callId, exit_code: e.exitCode, signal: e.signal, last_line: keptText(e.lastLine), ...(e.worker !== undefined ? { worker: e.worker } : {}) })),
      events.on('call.failed', (e) => this.publish('vm', { event: 'call_failed', at: at(), call_id: e.callId, method: keptText(e.method), error: keptText(e.error) })),
      events.on('call.halted', (e) => this.publish('vm', { event: 'call_halted', at: at(), call_id: e.callId, method: keptText(e.method), follow_ups_halted: keptHalt(haltJson(e.halt)) })),
    ];
  }

  private add(e: CallFinished): void {
    const record = callRecord(e);
    const outcome = keptOutcome(record.outcome, {}, MAX_LISTED_OUTCOME_BYTES);
    const listed = outcome === record.outcome ? record : extend(record, { outcome });
    this.byId.set(e.callId, { record, listed, trace: traceJson(e) });
    // Map keeps insertion order: the first key is the oldest.
    while (this.byId.size > this.capacity) this.byId.delete(this.byId.keys().next().value!);
    this.publish('call', record);
  }

  get(callId: number): { record: CallRecord; trace: TraceJson } | undefined {
    return this.byId.get(callId);
  }

  /** The newest `limit` records, newest first, each outcome cut to MAX_LISTED_OUTCOME_BYTES (omitted_bytes says what went). */
  recent(limit: number): CallRecord[] {
    return [...this.byId.values()].slice(-limit).reverse().map((x) => x.listed);
  }

  /** Starts an event stream on `res`; false when there are too many subscribers already. */
  subscribe(res: ServerResponse): boolean {
    if (this.subscribers.size >= MAX_SUBSCRIBERS) return false;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': hostlink call stream\n\n');
    this.subscribers.add(res);
    res.on('close', () => this.subscribers.delete(res));
    return true;
  }

  publish(event: string, data: unknown): void {
    if (this.subscribers.size === 0) return;
    const frame = `event: ${event}\ndata: ${toJson(data)}\n\n`;
    for (const res of this.subscribers) {
      if (res.writableLength > MAX_UNREAD_BYTES) {
        this.subscribers.delete(res);
        res.destroy();
      } else res.write(frame);
    }
  }

  /** Ends every stream (shutdown) and stops listening. */
  close(): void {
    for (const off of this.offs.splice(0)) off();
    for (const res of this.subscribers) res.end();
    this.subscribers.clear();
  }
}
