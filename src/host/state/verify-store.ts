/**
 * A whole-store check for operators (`hostlink verify`): every table read end to end, every code entry against
 * its hash, and every context's state tree and root against its entries, the root recomputed from scratch by
 * merkle-reference.ts (which shares no code with the incremental tree), and, when given the blob directory's
 * check, every blob record against its file (blob files are outside the store: a power cut could leave a record
 * whose file is missing or empty, and no other read notices until a guest downloads it). LMDB pages carry no checksums, so a
 * damaged page is found only by reading it; reading one may crash the reading process, which is why the CLI
 * runs this in a child process and reports where the child was (the progress callback says).
 */
import { isHostlinkError } from '../../errors.js';
import { decodeCodeSize } from './code-store.js';
import { sha256 } from './hash.js';
import { TABLES, type KvReader, type TableName } from './kv.js';
import { CONTEXT_ID_BYTES, computeRootFromScratch, decodeEntry, stateRoot, verifyStateTree } from './merkle.js';

/** Where the walk is: sent before each step, so a crash while reading is attributed to it. */
export type VerifyStep =
  | { step: 'table'; table: TableName; entries: number }
  | { step: 'codes' }
  | { step: 'blobs'; checked: number }
  | { step: 'context'; context: string; index: number; of: number };

export interface TableCount {
  table: TableName;
  entries: number;
  bytes: number;
}

export interface StoreProblem {
  /**
   * 'table' (reading found another number of entries than the table's header counts: damaged pages), 'code' (an
   * entry that is not its hash's code, or whose recorded length is not its length), 'context' (a state tree or root that is not its entries'),
   * 'blob' (a blob record whose file is missing, has another size than recorded, or does not hash to its id).
   */
  kind: 'table' | 'code' | 'context' | 'blob';
  /** The table's name, the code hash, the context id or the blob id (hex). */
  id: string;
  problem: string;
}

export interface StoreReport {
  tables: TableCount[];
  codes: number;
  contexts: number;
  /** Blob records checked against their files (0 when no check of the files was given). */
  blobs: number;
  problems: StoreProblem[];
}

/** What is wrong with a recorded blob's stored content, or undefined when it is sound. */
export type BlobFileCheck = (id: Uint8Array, size: bigint) => string | undefined;

/** Progress is reported every this many entries of a table (and before every context). */
const ENTRIES_PER_STEP = 10_000;
/** ...and every this many blob files (each one is read whole). */
const BLOBS_PER_STEP = 100;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const equal = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;
const problemOf = (e: unknown): string => (isHostlinkError(e) || e instanceof Error ? e.message : String(e));

/**
 * Reads the whole store; what does not match is returned, not thrown. Reads only. `counted` gives a table's entry
 * count from its own header when the store keeps one: a damaged branch page can make the walk skip a whole
 * subtree without an error (a store with one damaged page read a third fewer tree pages and passed every root check).
 */
export function verifyStore(
  reader: KvReader,
  progress: (s: VerifyStep) => void = () => undefined,
  counted?: (t: TableName) => number | undefined,
  blobFile?: BlobFileCheck,
): StoreReport {
  const tables: TableCount[] = [];
  const problems: StoreProblem[] = [];
  for (const table of TABLES) {
    progress({ step: 'table', table, entries: 0 });
    let entries = 0;
    let bytes = 0;
    for (const [k, v] of reader.range(table, new Uint8Array(0))) {
      entries++;
      bytes += k.length + v.length;
      if (entries % ENTRIES_PER_STEP === 0) progress({ step: 'table', table, entries });
    }
    tables.push({ table, entries, bytes });
    const header = counted?.(table);
    if (header !== undefined && header !== entries) {
      problems.push({ kind: 'table', id: table, problem: `its header counts ${header} entries and reading it found ${entries}: pages of the table are damaged` });
    }
  }

  progress({ step: 'codes' });
  let codes = 0;
  for (const [hash, bytes] of reader.range('code', new Uint8Array(0))) {
    codes++;
    const actual = sha256(bytes);
    if (!equal(actual, hash)) {
      problems.push({ kind: 'code', id: hex(hash), problem: `its ${bytes.length} stored bytes hash to ${hex(actual)}` });
      continue; // its recorded length is then beside the point
    }
    // A code without a recorded length is fine (a Hostlink from before 'code_sizes' stored it); a wrong one is not.
    const recorded = reader.get('code_sizes', hash);
    const size = recorded === undefined ? undefined : decodeCodeSize(recorded);
    if (recorded !== undefined && size !== bytes.length) {
      problems.push({ kind: 'code', id: hex(hash), problem: `its recorded length is ${size === undefined ? `not a length (${recorded.length} bytes)` : size}, its stored code has ${bytes.length} bytes` });
    }
  }
  for (const [hash] of reader.range('code_sizes', new Uint8Array(0))) {
    if (reader.get('code', hash) === undefined) problems.push({ kind: 'code', id: hex(hash), problem: 'a code length is recorded for it, but no code is stored under it' });
  }

  // A context is any id with state entries or a stored root value (the merkle table's 32-byte keys; its tree
  // pages have longer keys): a root without entries is as wrong as entries without a root.
  const ids = new Set<string>();
  for (const [key] of reader.range('state', new Uint8Array(0))) ids.add(hex(key.subarray(0, CONTEXT_ID_BYTES)));
  for (const [key] of reader.range('merkle', new Uint8Array(0))) if (key.length === CONTEXT_ID_BYTES) ids.add(hex(key));
  const sorted = [...ids].sort();
  sorted.forEach((context, index) => {
    progress({ step: 'context', context, index, of: sorted.length });
    const problem = contextProblem(reader, Uint8Array.from(Buffer.from(context, 'hex')));
    if (problem !== undefined) problems.push({ kind: 'context', id: context, problem });
  });

  progress({ step: 'blobs', checked: 0 });
  let blobs = 0;
  for (const [id, record] of reader.range('blobs', new Uint8Array(0))) {
    if (record.length !== 8) {
      problems.push({ kind: 'blob', id: hex(id), problem: `its record is ${record.length} bytes, not a u64 size` });
      continue;
    }
    if (blobFile === undefined) continue;
    const size = new DataView(record.buffer, record.byteOffset, 8).getBigUint64(0, true);
    const problem = blobFile(id, size);
    if (problem !== undefined) problems.push({ kind: 'blob', id: hex(id), problem });
    if (++blobs % BLOBS_PER_STEP === 0) progress({ step: 'blobs', checked: blobs });
  }
  return { tables, codes, contexts: sorted.length, blobs, problems };
}

/** Why this context's stored tree or root is not the one of its entries, or undefined. */
function contextProblem(reader: KvReader, contextId: Uint8Array): string | undefined {
  try {
    verifyStateTree(reader, contextId);
  } catch (e) {
    return problemOf(e);
  }
  const entries: [Uint8Array, Uint8Array][] = [];
  for (const [tableKey, stored] of reader.range('state', contextId)) {
    let key: Uint8Array;
    let value: Uint8Array;
    try {
      [key, value] = decodeEntry(stored);
    } catch (e) {
      return `the state entry under ${hex(tableKey)}: ${problemOf(e)}`;
    }
    if (!equal(sha256(key), tableKey.subarray(CONTEXT_ID_BYTES))) return `a state entry is stored under ${hex(tableKey.subarray(CONTEXT_ID_BYTES))}, which is not the hash of its key`;
    entries.push([key, value]);
  }
  const stored = stateRoot(reader, contextId);
  const computed = computeRootFromScratch(entries);
  if (!equal(stored, computed)) return `its ${entries.length} entries hash to the root ${hex(computed)}, but its stored root is ${hex(stored)}`;
  return undefined;
}
