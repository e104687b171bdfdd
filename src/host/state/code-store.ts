/**
 * Contract code, stored once by its sha-256 ('code' table: sha256(bytes) -> bytes), and each code's length
 * ('code_sizes' table: sha256(bytes) -> length, u32 big-endian), written with it so that listing codes or asking
 * whether one exists does not read every module's bytes. A code stored without its length (by a Hostlink from
 * before the table) is measured by reading it.
 */
import { HostlinkError } from '../../errors.js';
import { plain } from './bytes.js';
import { sha256, HASH_BYTES } from './hash.js';
import { tableKeys, type KvReader, type KvStore } from './kv.js';

/** A code length as the 'code_sizes' table keeps it. */
export function encodeCodeSize(length: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, length);
  return out;
}

/** A 'code_sizes' value's length, or undefined when it is not one (4 bytes). */
export function decodeCodeSize(value: Uint8Array): number | undefined {
  return value.length === 4 ? new DataView(value.buffer, value.byteOffset, 4).getUint32(0) : undefined;
}

/** Stores `bytes` (idempotent) and resolves with its sha-256 once durable. */
export async function putCode(store: KvStore, bytes: Uint8Array): Promise<Uint8Array> {
  const hash = sha256(bytes);
  await store.write((txn) => {
    if (txn.get('code_sizes', hash) === undefined) txn.put('code_sizes', hash, encodeCodeSize(bytes.length));
    if (txn.get('code', hash) === undefined) txn.put('code', hash, bytes);
  });
  return plain(hash);
}

/** The code with this sha-256, or undefined. */
export function getCode(reader: KvReader, hash: Uint8Array): Uint8Array | undefined {
  if (hash.length !== HASH_BYTES) throw new HostlinkError('usage', `code hash of ${hash.length} bytes (must be ${HASH_BYTES})`);
  return reader.get('code', hash);
}

/** The length of the code with this sha-256, or undefined when there is none; reads the code only when its length was not recorded. */
export function codeSize(reader: KvReader, hash: Uint8Array): number | undefined {
  if (hash.length !== HASH_BYTES) throw new HostlinkError('usage', `code hash of ${hash.length} bytes (must be ${HASH_BYTES})`);
  const recorded = reader.get('code_sizes', hash);
  const size = recorded === undefined ? undefined : decodeCodeSize(recorded);
  return size ?? reader.get('code', hash)?.length;
}

/**
 * The stored codes' hashes and lengths, in hash order, at most `limit`: the code table's keys (its values are not
 * read) and each one's recorded length.
 */
export function listCodeSizes(reader: KvReader, limit: number): { hash: Uint8Array; bytes: number }[] {
  const out: { hash: Uint8Array; bytes: number }[] = [];
  for (const hash of tableKeys(reader, 'code', new Uint8Array(0))) {
    if (out.length >= limit) break;
    const bytes = codeSize(reader, hash);
    if (bytes !== undefined) out.push({ hash, bytes });
  }
  return out;
}

/** The code with this sha-256; HostlinkError('not_found') when there is none. */
export function requireCode(reader: KvReader, hash: Uint8Array): Uint8Array {
  const code = getCode(reader, hash);
  if (code === undefined) throw new HostlinkError('not_found', `no code with hash ${Buffer.from(hash).toString('hex')}`);
  return code;
}
