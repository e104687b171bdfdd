/**
 * What the protocol handlers of the node-side methods need from the host: reads of the committed node tables
 * (private storage, contexts) and the per-execution state of blobs, alias reservations and fetches. Each
 * method gets the Job it serves, because that state belongs to one execution and ends with it.
 */
import type { Job } from '../job.js';

/** An HTTP request as the guest asked for it (fetch). */
export interface FetchRequest {
  url: string;
  method: string;
  /** [name, value] pairs in the guest's order. */
  headers: [string, string][];
  body: Uint8Array;
}

/**
 * The host's answer to a fetch: the body of a 2xx response, or why there is none, or `unaffordable`: the body
 * is longer than the call's gas pays to receive (the handler answers the status, the VM runs out of gas).
 */
export type FetchAnswer = { succeeded: true; body: Uint8Array } | { succeeded: false; reason: string } | { unaffordable: true };

/**
 * Thrown by a NodeBackend method when a request exceeds a host limit; the handler answers `limit_exceeded`.
 * Any other error ends the session as a protocol violation or internal failure. Internal control flow
 * (src/errors.ts, INTERNAL_ERROR_CLASSES): it becomes a status on the wire, never reaches a caller.
 */
export class NodeLimitError extends Error {
  override readonly name = 'NodeLimitError';
}

export interface NodeBackend {
  readPrivate(job: Job, key: Uint8Array): Uint8Array | undefined;
  /** The length of a private value, without copying it where the store can tell; undefined when absent. */
  privateValueLength(job: Job, key: Uint8Array): number | undefined;
  isMember(job: Job, publicKey: Uint8Array): boolean;
  members(job: Job): Uint8Array[];
  /** How many members the job's context has, at most `most`, counted without reading them. */
  memberCount(job: Job, most: number): number;
  resolveAlias(job: Job, alias: string): Uint8Array | undefined;
  /** True when the alias is free and now reserved for this job until it is settled. */
  reserveAlias(job: Job, alias: string): boolean;
  blobAppend(job: Job, handle: bigint, data: Uint8Array): void;
  blobFinish(job: Job, handle: bigint, data: Uint8Array): { blobId: Uint8Array; size: bigint };
  /** Bytes from a stored blob or one staged by this job; undefined when neither exists. */
  blobRead(job: Job, blobId: Uint8Array, offset: bigint, length: number): Uint8Array | undefined;
  blobSize(job: Job, blobId: Uint8Array): bigint | undefined;
  /**
   * Answers at once when the request is blocked; a Promise only for a request the policy allows. `affordable`:
   * the largest body the call's gas pays to receive, known when the request arrives (not once it is answered).
   */
  fetch(job: Job, request: FetchRequest, affordable: number): FetchAnswer | Promise<FetchAnswer>;
}
