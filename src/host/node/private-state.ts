/**
 * Private storage in the 'private' table: node-local values per context, outside the Merkle tree and the
 * state root, never part of a delta that leaves the node. Keys are stored as SHA-256(key) after the context id
 * (guest keys may be longer than a table key); the value record keeps the key itself.
 *
 *   key:   context_id (32) || SHA-256(key)
 *   value: u32le(key length) || key || value
 */
import { createHash } from 'node:crypto';
import { HostlinkError } from '../../errors.js';
import type { KvReader, KvTxn } from '../state/kv.js';

const tableKey = (contextId: Uint8Array, key: Uint8Array): Uint8Array =>
  Uint8Array.from(Buffer.concat([contextId, createHash('sha256').update(key).digest()]));

function encode(key: Uint8Array, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + key.length + value.length);
  new DataView(out.buffer).setUint32(0, key.length, true);
  out.set(key, 4);
  out.set(value, 4 + key.length);
  return out;
}

function decode(record: Uint8Array): [Uint8Array, Uint8Array] {
  const n = new DataView(record.buffer, record.byteOffset, record.byteLength).getUint32(0, true);
  return [record.slice(4, 4 + n), record.slice(4 + n)];
}

export function readPrivate(reader: KvReader, contextId: Uint8Array, key: Uint8Array): Uint8Array | undefined {
  const record = reader.get('private', tableKey(contextId, key));
  if (record === undefined) return undefined;
  const [storedKey, value] = decode(record);
  if (Buffer.compare(storedKey, key) !== 0) throw new HostlinkError('internal', 'two private keys with the same sha-256');
  return value;
}

/** The length of a private value, read without copying it where the reader can; undefined when absent. */
export function privateValueLength(reader: KvReader, contextId: Uint8Array, key: Uint8Array): number | undefined {
  const table = tableKey(contextId, key);
  const record = reader.valueLength !== undefined ? reader.valueLength('private', table) : reader.get('private', table)?.length;
  // A record is the key's length (u32), the key, then the value.
  return record === undefined ? undefined : record - 4 - key.length;
}

/** Applies an execution's private writes (null removes) to its context. */
export function applyPrivateWrites(txn: KvTxn, contextId: Uint8Array, writes: readonly [Uint8Array, Uint8Array | null][]): void {
  for (const [key, value] of writes) {
    if (value === null) txn.del('private', tableKey(contextId, key));
    else txn.put('private', tableKey(contextId, key), encode(key, value));
  }
}

/** A context's private entries, sorted by key bytes. */
export function listPrivate(reader: KvReader, contextId: Uint8Array): [Uint8Array, Uint8Array][] {
  return [...reader.range('private', contextId)].map(([, record]) => decode(record)).sort(([a], [b]) => Buffer.compare(a, b));
}
