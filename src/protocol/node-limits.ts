/**
 * Fixed sizes of the node-side host functions (blobs, contexts, fetch) that are not VmLimits: they bound what
 * one protocol frame or one host table key holds, so they are the same for every call.
 */

/** Most blob bytes in one blob_append, blob_finish or blob_read frame: a blob never travels in one frame. */
export const BLOB_FRAME_BYTES = 1024 * 1024;

/** Longest context alias and protocol name, in UTF-8 bytes (they are keys of host tables). */
export const MAX_ALIAS_BYTES = 255;
export const MAX_PROTOCOL_NAME_BYTES = 255;

/** Longest fetch URL, HTTP method and encoded header list, in bytes. */
export const MAX_FETCH_URL_BYTES = 8192;
export const MAX_FETCH_METHOD_BYTES = 16;
export const MAX_FETCH_HEADERS_BYTES = 64 * 1024;
