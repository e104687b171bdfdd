/**
 * Protocol handlers of the node-side methods (private storage, contexts, blobs, fetch), merged into
 * METHOD_HANDLERS by methods.ts. Each one checks the request against the fixed frame limits, then asks the
 * session's NodeBackend for the current job.
 */
import { HostlinkError } from '../../errors.js';
import { encodeOk, encodeStatus } from '../../protocol/messages.js';
import { BLOB_FRAME_BYTES, CONTEXT_MEMBERS_OVER_FRAME, FETCH_ANSWER_FRAMING, MAX_ALIAS_BYTES, MAX_CONTEXT_MEMBERS_LISTED } from '../../protocol/node-limits.js';
import type { Job } from '../job.js';
import type { Handler, SessionContext } from '../session-types.js';
import { NodeLimitError, type FetchAnswer, type NodeBackend } from './backend.js';
import { countKeysAffordable, unaffordableRead } from '../answer-size.js';

export type NodeMethodName =
  | 'private_storage_read'
  | 'context_is_member'
  | 'context_members'
  | 'context_resolve_alias'
  | 'context_reserve_alias'
  | 'blob_append'
  | 'blob_finish'
  | 'blob_read'
  | 'blob_size'
  | 'http_fetch';

const absent = (): Uint8Array => encodeStatus('absent', {});
const utf8 = new TextEncoder();

/** The current job and the node backend, or a `forbidden` answer when this host keeps no node tables. */
function context(session: SessionContext, method: string): { job: Job; node: NodeBackend } | Uint8Array {
  const job = session.currentJob(method);
  const node = session.backend.node;
  if (node === undefined) return encodeStatus('forbidden', { reason: `${method}: this host keeps no node tables` });
  return { job, node };
}

/** Runs a backend call, turning a NodeLimitError into `limit_exceeded`. */
function limited(fn: () => Uint8Array): Uint8Array {
  try {
    return fn();
  } catch (e) {
    if (e instanceof NodeLimitError) return encodeStatus('limit_exceeded', { reason: e.message });
    throw e;
  }
}

/**
 * The VM refuses a longer alias itself (KeyLengthOverflow) before it asks, so a longer one is a protocol violation.
 * Aliases are table keys as they are: one over LMDB's key size made the read fail as if the node's store had failed.
 */
function checkAlias(method: string, alias: string): void {
  const bytes = Buffer.byteLength(alias, 'utf8');
  if (bytes > MAX_ALIAS_BYTES) throw new HostlinkError('protocol', `${method}: alias of ${bytes} bytes; at most ${MAX_ALIAS_BYTES}`);
}

function checkFrame(method: string, length: number): void {
  if (length > BLOB_FRAME_BYTES) throw new NodeLimitError(`${method} of ${length} bytes; at most ${BLOB_FRAME_BYTES} per frame`);
}

/**
 * The answer to a fetch. One whose body the gas cannot pay for is `unaffordable` with one byte more than the gas
 * paid for when the request arrived (`left`): not the body's length, which the host stopped reading, and which
 * would depend on where the server's chunks fell; the VM charges it and runs out of gas all the same.
 */
const fetchAnswer = (a: FetchAnswer, left: number): Uint8Array => {
  if ('unaffordable' in a) return encodeStatus('unaffordable', { bytes: left + 1 });
  return encodeOk('http_fetch', a.succeeded ? { succeeded: 1, body: a.body } : { succeeded: 0, body: utf8.encode(a.reason) });
};

export const NODE_HANDLERS: { [M in NodeMethodName]: Handler<M> } = {
  private_storage_read(session, { key }) {
    const c = context(session, 'private_storage_read');
    if (c instanceof Uint8Array) return c;
    // A value the call's gas cannot pay to read is neither copied nor sent: the VM is told its answer's length.
    const unaffordable = unaffordableRead(session, () => c.node.privateValueLength(c.job, key));
    if (unaffordable !== undefined) return unaffordable;
    const value = c.node.readPrivate(c.job, key);
    return value === undefined ? absent() : encodeOk('private_storage_read', { value });
  },

  context_is_member(session, { publicKey }) {
    const c = context(session, 'context_is_member');
    if (c instanceof Uint8Array) return c;
    return encodeOk('context_is_member', { isMember: c.node.isMember(c.job, publicKey) ? 1 : 0 });
  },

  context_members(session) {
    const c = context(session, 'context_members');
    if (c instanceof Uint8Array) return c;
    // Each member listed is a key the host reads: round_trip per_key, as the VM charges for it. A list the call's
    // gas cannot pay for is counted, not read (200,000 members took the host about a second per request), and so
    // is one that no answer frame holds (1.86 million members were all read, ~4 s, then refused as limit_exceeded).
    const most = MAX_CONTEXT_MEMBERS_LISTED;
    const count = countKeysAffordable(session, 32, most, (n) => c.node.memberCount(c.job, n));
    if (count instanceof Uint8Array) return count;
    // Counted keys are paid for (counting 1.86 million took ~370 ms here), listed or not: the VM charges the
    // same per_key for the one-past-the-frame count this answer reports, then raises ValueLengthOverflow.
    c.job.guest.keys += count;
    if (count > most) return encodeStatus('limit_exceeded', { reason: CONTEXT_MEMBERS_OVER_FRAME });
    return encodeOk('context_members', { members: c.node.members(c.job) });
  },

  context_resolve_alias(session, { alias }) {
    const c = context(session, 'context_resolve_alias');
    if (c instanceof Uint8Array) return c;
    checkAlias('context_resolve_alias', alias);
    const id = c.node.resolveAlias(c.job, alias);
    return id === undefined ? absent() : encodeOk('context_resolve_alias', { contextId: id });
  },

  context_reserve_alias(session, { alias }) {
    const c = context(session, 'context_reserve_alias');
    if (c instanceof Uint8Array) return c;
    checkAlias('context_reserve_alias', alias);
    return encodeOk('context_reserve_alias', { reserved: c.node.reserveAlias(c.job, alias) ? 1 : 0 });
  },

  blob_append(session, { handle, data }) {
    const c = context(session, 'blob_append');
    if (c instanceof Uint8Array) return c;
    return limited(() => {
      checkFrame('blob_append', data.length);
      c.node.blobAppend(c.job, handle, data);
      return encodeOk('blob_append', {});
    });
  },

  blob_finish(session, { handle, data }) {
    const c = context(session, 'blob_finish');
    if (c instanceof Uint8Array) return c;
    return limited(() => {
      checkFrame('blob_finish', data.length);
      return encodeOk('blob_finish', c.node.blobFinish(c.job, handle, data));
    });
  },

  blob_read(session, { blobId, offset, length }) {
    const c = context(session, 'blob_read');
    if (c instanceof Uint8Array) return c;
    return limited(() => {
      checkFrame('blob_read', length);
      // A chunk the call's gas cannot pay to read is not read: its length follows from the blob's size.
      const unaffordable = unaffordableRead(session, () => {
        const size = c.node.blobSize(c.job, blobId);
        if (size === undefined) return undefined;
        const rest = size > offset ? size - offset : 0n;
        return Number(rest < BigInt(length) ? rest : BigInt(length));
      });
      if (unaffordable !== undefined) return unaffordable;
      const data = c.node.blobRead(c.job, blobId, offset, length);
      return data === undefined ? absent() : encodeOk('blob_read', { data });
    });
  },

  blob_size(session, { blobId }) {
    const c = context(session, 'blob_size');
    if (c instanceof Uint8Array) return c;
    const size = c.node.blobSize(c.job, blobId);
    return size === undefined ? absent() : encodeOk('blob_size', { size });
  },

  http_fetch(session, { url, method, headers, body }) {
    const c = context(session, 'http_fetch');
    if (c instanceof Uint8Array) return c;
    if (headers.length % 2 !== 0) throw new HostlinkError('protocol', 'http_fetch headers must alternate names and values');
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    const pairs: [string, string][] = [];
    try {
      for (let i = 0; i < headers.length; i += 2) pairs.push([text.decode(headers[i]), text.decode(headers[i + 1])]);
    } catch {
      throw new HostlinkError('protocol', 'http_fetch header names and values must be UTF-8');
    }
    // What the gas pays to receive, learnt now: answerBytesLeft() holds only while this handler runs, and the
    // fetch goes on after it returns.
    const left = session.answerBytesLeft();
    const answer = c.node.fetch(c.job, { url, method, headers: pairs, body }, Math.max(0, left - FETCH_ANSWER_FRAMING));
    return answer instanceof Promise ? answer.then((a) => fetchAnswer(a, left)) : fetchAnswer(answer, left);
  },
};
