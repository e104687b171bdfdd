/**
 * Fixed sizes of the node-side host functions (blobs, contexts, fetch) that are not VmLimits: they bound what
 * one protocol frame or one host table key holds, so they are the same for every call.
 */
import { MAX_FRAME_BYTES, METHOD_SCHEMAS } from './generated.js';

/** Most blob bytes in one blob_append, blob_finish or blob_read frame: a blob never travels in one frame. */
export const BLOB_FRAME_BYTES = 1024 * 1024;

/** Longest context alias and protocol name, in UTF-8 bytes (they are keys of host tables). */
export const MAX_ALIAS_BYTES = 255;
export const MAX_PROTOCOL_NAME_BYTES = 255;

/** Longest fetch URL, HTTP method and encoded header list, in bytes. */
export const MAX_FETCH_URL_BYTES = 8192;
export const MAX_FETCH_METHOD_BYTES = 16;
export const MAX_FETCH_HEADERS_BYTES = 64 * 1024;
/**
 * Most headers (name and value pairs) one fetch may send: half of http_fetch's headers max_items. The host
 * decodes each header; by bytes alone, 8,191 empty ones cost it 3.5 ms a request for 0.4 ms of gas.
 */
export const MAX_FETCH_HEADERS: number = METHOD_SCHEMAS.http_fetch.request[2].maxItems / 2;

/** Bytes of an http_fetch answer beside the body: its status, `succeeded` and the body's length. */
export const FETCH_ANSWER_FRAMING = 1 + 1 + 4;

/**
 * Largest fetched body one http_fetch answer carries: the frame less the answer's framing. A fetch policy that
 * allowed more turned a large body into limit_exceeded, a node failure, where the guest should see "fetch
 * failed: the response is larger than ...": Host.open refuses such a policy (FetchGate).
 */
export const MAX_FETCH_RESPONSE_BYTES = MAX_FRAME_BYTES - FETCH_ANSWER_FRAMING;

/**
 * Most members one context_members answer lists: the frame less its status and count, 36 bytes a member (its
 * length and its 32 bytes). The host counts no further than one more; a context with more is answered
 * limit_exceeded, and the VM raises ValueLengthOverflow (the count is committed state: every node the same).
 */
export const MAX_CONTEXT_MEMBERS_LISTED = Math.floor((MAX_FRAME_BYTES - 1 - 4) / (4 + 32));

/**
 * The reason of that limit_exceeded answer: fixed, because the VM charges round_trip per_byte for the answer's
 * bytes, so its length must be the same on every node.
 */
export const CONTEXT_MEMBERS_OVER_FRAME = `context_members: more than ${MAX_CONTEXT_MEMBERS_LISTED} members, more than one answer lists`;
