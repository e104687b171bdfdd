/** SHA-256, the only hash of the state layer (code ids, state keys, Merkle nodes). */
import * as crypto from 'node:crypto';
import { plain } from './bytes.js';

// crypto.hash (Node >= 20.12) is about 1.7x faster than createHash for short inputs; older Node 20 lacks it.
const oneShot = typeof crypto.hash === 'function' ? crypto.hash : undefined;

export function sha256(data: Uint8Array): Uint8Array {
  if (oneShot !== undefined) return plain(oneShot('sha256', data, 'buffer'));
  return plain(crypto.createHash('sha256').update(data).digest());
}

export const HASH_BYTES = 32;
