/**
 * What a data directory holds, for `hostlink serve` and the studio: the deployed codes and the contexts that
 * have state or were created by contracts. Read straight from the store; every list is capped.
 */
import { hex } from '../cli/common.js';
import type { Host } from '../host/host.js';
import { stateRoot } from '../host/state/merkle.js';

export const MAX_LISTED = 1000;
/** Table entries read at most while looking for contexts (tree pages share the table with the roots). */
export const MAX_SCANNED = 200_000;

export interface CodeEntry {
  code_hash: string;
  bytes: number;
}

export function listCodes(host: Host, limit = MAX_LISTED): CodeEntry[] {
  const out: CodeEntry[] = [];
  for (const [hash, code] of host.store.range('code', new Uint8Array(0))) {
    if (out.length >= limit) break;
    out.push({ code_hash: hex(hash), bytes: code.length });
  }
  return out;
}

export interface ContextEntry {
  context: string;
  root: string;
  /** The deployed code a contract-created context runs (context_create), when there is one. */
  application?: string;
}

/**
 * Contexts with a state root (the 'merkle' table keeps each root under the bare 32-byte context id; longer
 * keys are tree pages) and contexts created by contracts.
 */
export function listContexts(host: Host, limit = MAX_LISTED): ContextEntry[] {
  const found = new Map<string, ContextEntry>();
  let scanned = 0;
  for (const [key, value] of host.store.range('merkle', new Uint8Array(0))) {
    if (found.size >= limit || ++scanned > MAX_SCANNED) break;
    if (key.length === 32) found.set(hex(key), { context: hex(key), root: hex(value.subarray(0, 32)) }); // the root, then any log
  }
  for (const c of host.node.contexts()) {
    if (found.size >= limit) break;
    const id = hex(c.id);
    const entry = found.get(id) ?? { context: id, root: hex(stateRoot(host.store, c.id)) };
    entry.application = hex(c.applicationId);
    found.set(id, entry);
  }
  return [...found.values()];
}
