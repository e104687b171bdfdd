/** SHA-256, the only hash of the state layer (code ids, state keys, Merkle nodes). */
import { sha256Into } from './sha256-record.js';

/** The digest as a fresh 32-byte array (native SHA-256 when the state addon is built; see sha256-record.ts). */
export function sha256(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(HASH_BYTES);
  sha256Into(data, out, 0);
  return out;
}

export const HASH_BYTES = 32;
