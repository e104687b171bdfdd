/**
 * Utility: fetch (performed by the host under its policy, blocked by default), deterministic random_bytes and
 * time_now (both from the message, call-ids.ts), and ed25519_verify.
 */
import { randomBytes } from 'node:crypto';
import {
  MAX_FETCH_HEADERS,
  MAX_FETCH_HEADERS_BYTES,
  MAX_FETCH_METHOD_BYTES,
  MAX_FETCH_URL_BYTES,
} from '../../protocol/node-limits.js';
import { ed25519Verify, isEd25519Point } from '../ed25519.js';
import type { Execution } from '../execution.js';
import { destinationOf } from './ids.js';
import type { FamilyImpl } from './types.js';

/** Borsh Vec<(String, String)> as [name, value, name, value, ...]; an empty buffer means no headers. */
function parseHeaders(ex: Execution, bytes: Uint8Array): Uint8Array[] {
  if (bytes.length === 0) return [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const u32 = (what: string): number => {
    if (bytes.length - at < 4) ex.fail('DeserializationError', `fetch headers: truncated ${what} at byte ${at}`);
    const v = view.getUint32(at, true);
    at += 4;
    return v;
  };
  const count = u32('count');
  if (count > bytes.length / 8) ex.fail('DeserializationError', `fetch headers: count ${count} is more than the buffer holds`);
  if (count > MAX_FETCH_HEADERS) ex.fail('ValueLengthOverflow', `fetch headers: ${count} headers, more than the ${MAX_FETCH_HEADERS} a fetch may send`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < 2 * count; i++) {
    const what = `header ${i >> 1} ${i & 1 ? 'value' : 'name'}`;
    const len = u32(what);
    if (bytes.length - at < len) ex.fail('DeserializationError', `fetch headers: truncated ${what}`);
    const s = bytes.subarray(at, at + len);
    ex.memory.utf8(s, `fetch ${what}`);
    out.push(s);
    at += len;
  }
  if (at !== bytes.length) ex.fail('DeserializationError', `fetch headers: ${bytes.length - at} trailing bytes`);
  return out;
}

export const utility: FamilyImpl<'utility'> = {
  fetch(ex, urlPtr, methodPtr, headersPtr, bodyPtr, registerId) {
    const url = ex.readString(urlPtr, 'url', { max: MAX_FETCH_URL_BYTES, error: 'ValueLengthOverflow', name: 'the URL limit' });
    const method = ex.readString(methodPtr, 'method', {
      max: MAX_FETCH_METHOD_BYTES,
      error: 'ValueLengthOverflow',
      name: 'the method limit',
    });
    const headerBytes = ex.readBuffer(headersPtr, 'headers', {
      max: MAX_FETCH_HEADERS_BYTES,
      error: 'ValueLengthOverflow',
      name: 'the headers limit',
    });
    const headers = parseHeaders(ex, headerBytes);
    const body = ex.readBuffer(bodyPtr, 'body', ex.limit('maxStorageValueSize', 'ValueLengthOverflow'));
    const answer = ex.node.host().fetch('http_fetch', { url, method, headers, body });
    if (answer === undefined) {
      ex.setRegister(registerId, new TextEncoder().encode('the host did not answer the fetch'));
      return 1;
    }
    ex.setRegister(registerId, answer.body);
    return answer.succeeded === 1 ? 0 : 1;
  },
  random_bytes(ex, destPtr) {
    const dest = ex.memory.destination(destPtr, 'random buffer');
    ex.chargeBytes(dest.len);
    // Only a non-deterministic block sees the machine's randomness; everything else gets the message's stream.
    ex.memory.writeAt(dest, ex.rules.deterministic ? ex.node.random(dest.len) : Uint8Array.from(randomBytes(dest.len)));
  },
  time_now(ex, destPtr) {
    const dest = destinationOf(ex, destPtr, 8, 'time buffer');
    const out = new Uint8Array(8);
    const now = ex.rules.deterministic ? ex.message.datetimeNanos : BigInt(Date.now()) * 1_000_000n;
    new DataView(out.buffer).setBigUint64(0, now, true);
    ex.memory.writeAt(dest, out);
  },
  ed25519_verify(ex, sigPtr, pkPtr, msgPtr) {
    const signature = ex.readBuffer(sigPtr, 'signature');
    if (signature.length !== 64) ex.fail('InvalidMemoryAccess', `signature must be 64 bytes, got ${signature.length}`);
    const publicKey = ex.readBuffer(pkPtr, 'public key');
    if (publicKey.length !== 32) ex.fail('InvalidMemoryAccess', `public key must be 32 bytes, got ${publicKey.length}`);
    if (!isEd25519Point(publicKey)) ex.fail('Ed25519IncorrectPublicKey', 'the public key is not a point of Ed25519');
    const message = ex.readBuffer(msgPtr, 'message');
    return ed25519Verify(signature, publicKey, message) ? 1 : 0;
  },
};
