/**
 * What a data directory holds, for listings (`hostlink codes`, `hostlink contexts`): deployed code and the
 * contexts that have state or were created by calls. Reads only; one pass over the tables involved.
 */
import { readAbi } from '../contract/abi.js';
import { listContexts } from './node/contexts.js';
import type { KvReader } from './state/kv.js';
import { stateRoot } from './state/merkle.js';

export interface CodeInfo {
  codeHash: Uint8Array;
  bytes: number;
  /** The contract's name from its ABI section, when it has one. */
  name?: string;
  methods: string[];
}

export interface ContextInfo {
  contextId: Uint8Array;
  /** Number of storage keys. */
  keys: number;
  root: Uint8Array;
  /** Set when a call created the context (context_create). */
  created?: { applicationId: Uint8Array; alias: string | null };
}

export function listCodes(reader: KvReader): CodeInfo[] {
  return [...reader.range('code', new Uint8Array(0))].map(([hash, code]) => {
    let methods: string[] = [];
    let name: string | undefined;
    try {
      const { abi } = readAbi(code);
      methods = abi.methods.map((m) => m.name);
      name = abi.name;
    } catch {
      // stored unchecked (deploy with check: false): list it without methods
    }
    return { codeHash: hash, bytes: code.length, methods, ...(name !== undefined ? { name } : {}) };
  });
}

/** Contexts with state (keys: the 'state' table is keyed contextId ‖ sha256(key)) or a registry record, by id. */
export function listContextInfo(reader: KvReader): ContextInfo[] {
  const counts = new Map<string, number>();
  for (const [key] of reader.range('state', new Uint8Array(0))) {
    const id = Buffer.from(key.subarray(0, 32)).toString('hex');
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const created = new Map(listContexts(reader).map((c) => [Buffer.from(c.id).toString('hex'), c]));
  const ids = [...new Set([...counts.keys(), ...created.keys()])].sort();
  return ids.map((hex) => {
    const contextId = Uint8Array.from(Buffer.from(hex, 'hex'));
    const c = created.get(hex);
    return {
      contextId,
      keys: counts.get(hex) ?? 0,
      root: stateRoot(reader, contextId),
      ...(c ? { created: { applicationId: c.applicationId, alias: c.alias } } : {}),
    };
  });
}
