/** Contract code, stored once by its sha-256 ('code' table: sha256(bytes) -> bytes). */
import { HostlinkError } from '../../errors.js';
import { plain } from './bytes.js';
import { sha256, HASH_BYTES } from './hash.js';
import type { KvReader, KvStore } from './kv.js';

/** Stores `bytes` (idempotent) and resolves with its sha-256 once durable. */
export async function putCode(store: KvStore, bytes: Uint8Array): Promise<Uint8Array> {
  const hash = sha256(bytes);
  await store.write((txn) => {
    if (txn.get('code', hash) === undefined) txn.put('code', hash, bytes);
  });
  return plain(hash);
}

/** The code with this sha-256, or undefined. */
export function getCode(reader: KvReader, hash: Uint8Array): Uint8Array | undefined {
  if (hash.length !== HASH_BYTES) throw new HostlinkError('usage', `code hash of ${hash.length} bytes (must be ${HASH_BYTES})`);
  return reader.get('code', hash);
}

/** The code with this sha-256; HostlinkError('not_found') when there is none. */
export function requireCode(reader: KvReader, hash: Uint8Array): Uint8Array {
  const code = getCode(reader, hash);
  if (code === undefined) throw new HostlinkError('not_found', `no code with hash ${Buffer.from(hash).toString('hex')}`);
  return code;
}
