/**
 * The host's answer to each protocol method, by name (protocol/methods.json is the catalogue). Handlers are
 * small: reads come from the backend (the committed state), the result is handed to the session's job, and
 * the session's state changes only through its transitions (session.ts).
 */
import { HostlinkError } from '../errors.js';
import { decodeEffects } from '../protocol/effects.js';
import { effectDecodeLimits, resultDecodeLimits, resultEffectsProblem, unpaidProblem } from '../protocol/effect-limits.js';
import { checkNodeEffects } from '../protocol/node-effects.js';
import { MAX_FRAME_BYTES, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, type MethodName } from '../protocol/generated.js';
import { encodeOk, encodeStatus, type AnyRequest } from '../protocol/messages.js';
import { decodeResult } from '../protocol/result.js';
import { fitResult } from '../protocol/result-size.js';
import { HOSTLINK_VERSION } from '../version.js';
import { NODE_HANDLERS } from './node/handlers.js';
import type { Job } from './job.js';
import type { Handler, SessionContext } from './session-types.js';
import { latin1 } from '../latin1.js';
import { itemBytes, LENGTH_BYTES, STATUS_BYTES } from './answer-size.js';
import { MAX_STORAGE_VALUE_SIZE_LIMIT } from '../protocol/limits.generated.js';

export type { Handler, SessionBackend } from './session-types.js';

const absent = (): Uint8Array => encodeStatus('absent', {});

/** What the VM's own loop asks for (not charged to the guest); everything else it sends on the guest's behalf. */
export const LOOP_METHODS: ReadonlySet<string> = new Set(['hello', 'next_message', 'get_code', 'consume_result']);

/** Storage keys a request asks the host to look up: round_trip.per_key each (an honest VM pays before sending). */
export function keysLookedUp(request: AnyRequest): number {
  if (request.method === 'storage_read') return 1;
  if (request.method === 'storage_read_many') return request.fields.keys.length;
  return 0;
}

/** next_message's answer: the job, now the session's, or `absent` (no more work). */
function handOut(session: SessionContext, job: Job | null): Uint8Array {
  if (job === null) return absent();
  session.transition('take', { job });
  return encodeOk('next_message', { message: job.messageJson });
}

/**
 * A state value of the job's context. An early run (speculation.ts) is answered as after the previous call on its
 * context, which is still committing: from that call's writes where it wrote the key.
 */
function readState(session: SessionContext, job: Job, key: Uint8Array): Uint8Array | undefined {
  const pending = job.early?.pending(key);
  if (pending !== undefined) return pending ?? undefined;
  return session.backend.readState(job.message.contextId, key);
}

/** A state value when it holds at most `most` bytes, else its length (copying nothing where the backend can). */
function readWithin(session: SessionContext, job: Job, key: Uint8Array, most: number): Uint8Array | number | undefined {
  const { backend } = session;
  const ctx = job.message.contextId;
  let value = job.early?.pending(key);
  if (value === undefined) {
    if (backend.readStateWithin !== undefined) return backend.readStateWithin(ctx, key, most);
    value = backend.readState(ctx, key);
  }
  return value === null || value === undefined ? undefined : value.length > most ? value.length : value;
}

export const METHOD_HANDLERS: { [M in MethodName]: Handler<M> } = {
  hello(session, { minVersion, maxVersion, vmVersion, pid }) {
    const event = session.work === null ? 'start' : 'hello'; // a session given its job starts it at once
    session.check(event);
    const version = Math.min(maxVersion, PROTOCOL_VERSION_MAX);
    if (version < minVersion || version < PROTOCOL_VERSION_MIN) {
      return encodeStatus('incompatible_version', { hostMin: PROTOCOL_VERSION_MIN, hostMax: PROTOCOL_VERSION_MAX });
    }
    session.transition(event, { vmPid: pid, vmVersion, protocolVersion: version });
    return encodeOk('hello', { version, hostVersion: HOSTLINK_VERSION });
  },

  next_message(session) {
    if (session.work === null) throw new HostlinkError('protocol', 'next_message from a one-shot VM');
    session.check('take');
    // Answered at once when a job is queued (no Promise, so the session sends it with the answers before it).
    const job = session.work.nextJob(session);
    return job instanceof Promise ? job.then((j) => handOut(session, j)) : handOut(session, job);
  },

  get_code(session, { codeHash }) {
    session.currentJob('get_code');
    const code = session.backend.getCode(codeHash);
    return code === undefined ? absent() : encodeOk('get_code', { code });
  },

  storage_read(session, { key }) {
    const job = session.currentJob('storage_read');
    // A value the call's gas cannot pay to read is neither copied nor sent: the VM is told its answer's length.
    const left = session.answerBytesLeft();
    let value: Uint8Array | undefined;
    if (left < MAX_FRAME_BYTES) {
      const within = readWithin(session, job, key, left - STATUS_BYTES - LENGTH_BYTES);
      if (typeof within === 'number') return encodeStatus('unaffordable', { bytes: STATUS_BYTES + LENGTH_BYTES + within });
      value = within;
    } else value = readState(session, job, key);
    job.trace.read(key, value);
    return value === undefined ? absent() : encodeOk('storage_read', { value });
  },

  storage_read_many(session, { keys }) {
    const job = session.currentJob('storage_read_many');
    // Each distinct key is read once, and the response's size is added up while reading: a request that
    // repeats a key with a large value must not make the host read or build more than one frame. Values that
    // do not all fit in one frame are answered as the longest prefix that does; the VM asks for the rest. The
    // prefix depends only on the committed values and the frame limit, so every node answers the same.
    const left = session.answerBytesLeft();
    const read = new Map<string, Uint8Array | null>();
    const values: (Uint8Array | null)[] = [];
    let size = STATUS_BYTES + LENGTH_BYTES; // status, count
    const overFrame = (): Uint8Array | undefined =>
      values.length > 0 ? undefined : encodeStatus('limit_exceeded', { reason: `storage_read_many: one value makes a response over the ${MAX_FRAME_BYTES}-byte frame limit` });
    for (const key of keys) {
      const id = latin1(key);
      let value = read.get(id);
      if (value === undefined) {
        if (left < MAX_FRAME_BYTES || size > MAX_FRAME_BYTES - itemBytes(MAX_STORAGE_VALUE_SIZE_LIMIT)) {
          // When the gas is short, or the answer so far is large enough that a value may not fit, a value that
          // cannot be paid for, or that will not be sent, is never copied: only its length is learnt.
          const within = readWithin(session, job, key, Math.max(0, Math.min(left, MAX_FRAME_BYTES) - size - itemBytes(0)));
          if (typeof within === 'number') {
            const after = size + itemBytes(within);
            if (after > MAX_FRAME_BYTES) return overFrame() ?? encodeOk('storage_read_many', { values });
            return encodeStatus('unaffordable', { bytes: after });
          }
          value = within ?? null;
        } else value = readState(session, job, key) ?? null;
        read.set(id, value);
        job.trace.read(key, value ?? undefined);
      }
      size += itemBytes(value?.length);
      if (size > MAX_FRAME_BYTES) return overFrame() ?? encodeOk('storage_read_many', { values });
      if (size > left) return encodeStatus('unaffordable', { bytes: size });
      values.push(value);
    }
    return encodeOk('storage_read_many', { values });
  },

  consume_result(session, { result, effects }) {
    const job = session.currentJob('consume_result');
    // Decoding errors throw HostlinkError('protocol'): the session ends and the job fails as a protocol violation.
    // A compromised VM may send anything: the effects are bounded while they are decoded, then checked against
    // everything an honest VM running this message would have enforced.
    const { limits } = job.message;
    const decoded = { result: decodeResult(result, resultDecodeLimits(limits)), effects: decodeEffects(effects, effectDecodeLimits(limits)) };
    checkNodeEffects(job.message, decoded.effects);
    const over = resultEffectsProblem(job.message, decoded.effects) ?? unpaidProblem(job.message, decoded.result, decoded.effects, job.guest);
    if (over !== undefined) throw new HostlinkError('protocol', `effects over the call's limits: ${over}`);
    // The frame rule, here too: a path without frames (in-process) reports what a socket VM would.
    job.end({ kind: 'result', ...fitResult(result.length, effects.length, decoded) });
    session.transition(session.work === null ? 'last_result' : 'result');
    return encodeOk('consume_result', {});
  },

  ...NODE_HANDLERS,
};
