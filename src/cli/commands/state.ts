/** `hostlink state CONTEXT`: a context's keys and values (CRDT collections decoded, long values cut) and state root. */
import { HostlinkError } from '../../errors.js';
import { viewState, type CollectionView } from '../../host/crdt-view.js';
import { hex, ID_HELP, parse, parseId, printJson, showBytes, STORE_OPTIONS, STORE_OPTIONS_HELP, storeOptions, withHost } from '../common.js';
import { RemoteNode, SERVER_HELP, SERVER_OPTION, serverOf } from '../remote.js';
import { logText } from '../../terminal-text.js';

export const usage = `usage: hostlink state CONTEXT [--raw] [--full] [--data-dir DIR] [--json]

Prints a context's state root and its entries sorted by key. CRDT collections are decoded into what the
contract sees (map entries, set members, vector elements, register values, counter totals); the root
document is shown as text. Values longer than 200 characters are cut (the full length is shown).
A context without state prints "(empty)" with the empty tree's root and exits 0 (every context starts so),
with a note on stderr: hostlink contexts lists the contexts that have state.

  --raw    every stored key and value as is, without decoding collections
  --full   print values in full

${ID_HELP}

${SERVER_HELP}

${STORE_OPTIONS_HELP}`;

const OPTIONS = { ...STORE_OPTIONS, ...SERVER_OPTION, raw: { type: 'boolean' }, full: { type: 'boolean' } } as const;

/**
 * A context without entries is a legitimate answer (every context starts empty; the root is the empty tree's),
 * so exit 0; but a mistyped name shows the same: say so, and where the contexts with state are listed.
 */
const NO_STATE_NOTE = 'note: this context has no state (a mistyped name shows the same): hostlink contexts lists the contexts with state\n';

/** Values are cut at this many characters unless --full. */
export const SHOWN_CHARS = 200;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, usage);
  if (positionals.length !== 1) throw new HostlinkError('usage', `expected one CONTEXT\n${usage}`);
  const contextId = parseId(positionals[0]!, 'CONTEXT');
  const server = serverOf(values);
  if (server !== undefined) {
    // A running node answers with its raw entries (decoding collections needs the local data directory).
    // The node bounds its answer: long values come cut, and a large context only in part (complete: false).
    type Entry = { key: string; value: string; bytes?: number; truncated?: boolean };
    const out = await new RemoteNode(server).get<{ context: string; root: string; entries: Entry[]; complete?: boolean }>(`api/contexts/${hex(contextId)}/state`);
    if (values.json) {
      printJson(out);
      return 0;
    }
    process.stdout.write(`context ${logText(out.context)}\nroot    ${logText(out.root)}\n`);
    for (const { key, value, bytes, truncated } of out.entries) process.stdout.write(`  ${logText(key)} = ${logText(value)}${truncated ? `… (${bytes} bytes, cut by the node)` : ''}\n`);
    if (out.entries.length === 0) {
      process.stdout.write('  (empty)\n');
      process.stderr.write(NO_STATE_NOTE);
    }
    if (out.complete === false) process.stdout.write(`  … more entries: the node lists ${out.entries.length} per answer; stop it and run hostlink state without --server for all\n`);
    return 0;
  }
  const full = values.full === true;
  const { root, entries } = await withHost(storeOptions(values), async (host) => host.state(contextId), 'read');

  // A shown value: text or 0x-hex, cut to SHOWN_CHARS unless --full (then the byte length is given).
  const cut = (b: Uint8Array): { text: string; truncated: boolean } => {
    const s = showBytes(full ? b : b.subarray(0, SHOWN_CHARS));
    if (full || b.length <= SHOWN_CHARS) return { text: s, truncated: false };
    return { text: s.slice(0, SHOWN_CHARS), truncated: true };
  };
  // One line per entry: a newline in a contract's key or value is shown escaped, so it cannot forge entries.
  const show = (b: Uint8Array): string => {
    const c = cut(b);
    return logText(c.truncated ? `${c.text}… (${b.length} bytes; --full shows all)` : c.text);
  };
  const jsonValue = (b: Uint8Array): Record<string, unknown> => {
    const c = cut(b);
    return c.truncated ? { value: c.text, bytes: b.length, truncated: true } : { value: c.text };
  };

  if (values.raw) {
    if (values.json) {
      const out = { context: hex(contextId), root: hex(root), entries: entries.map(([k, v]) => ({ key: showBytes(k), ...jsonValue(v) })) };
      printJson(out);
      return 0;
    }
    process.stdout.write(`context ${hex(contextId)}\nroot    ${hex(root)}\n`);
    for (const [k, v] of entries) process.stdout.write(`  ${logText(showBytes(k))} = ${show(v)}\n`);
    if (entries.length === 0) {
      process.stdout.write('  (empty)\n');
      process.stderr.write(NO_STATE_NOTE);
    }
    return 0;
  }

  const view = viewState(entries);
  const collectionJson = (c: CollectionView): Record<string, unknown> => ({
    id: hex(c.id),
    kind: c.kind,
    ...(c.entries ? { entries: c.entries.map(([k, v]) => ({ key: showBytes(k), ...jsonValue(v) })) } : {}),
    ...(c.values ? { values: c.values.map((v) => jsonValue(v).value) } : {}),
    ...(c.value !== undefined ? { value: c.value === null ? null : jsonValue(c.value).value } : {}),
    ...(c.total !== undefined ? { total: c.total.toString() } : {}),
    ...(c.error ? { error: c.error } : {}),
  });
  if (values.json) {
    const out = {
      context: hex(contextId),
      root: hex(root),
      entries: view.raw.map(([k, v]) => ({ key: showBytes(k), ...jsonValue(v) })),
      ...(view.rootDoc ? { root_document: jsonValue(view.rootDoc.doc) } : {}),
      collections: view.collections.map(collectionJson),
    };
    printJson(out);
    return 0;
  }
  const lines = [`context ${hex(contextId)}`, `root    ${hex(root)}`];
  for (const [k, v] of view.raw) lines.push(`  ${logText(showBytes(k))} = ${show(v)}`);
  if (view.rootDoc) lines.push(`  root document = ${show(view.rootDoc.doc)}`);
  for (const c of view.collections) {
    const head = `  ${c.kind} ${hex(c.id).slice(0, 16)}…`;
    if (c.error) lines.push(`${head} (cannot decode: ${c.error})`);
    else if (c.entries) {
      lines.push(`${head} (${c.entries.length} entr${c.entries.length === 1 ? 'y' : 'ies'})`);
      for (const [k, v] of c.entries) lines.push(`    ${logText(showBytes(k))} = ${show(v)}`);
    } else if (c.values) {
      lines.push(`${head} (${c.values.length} value${c.values.length === 1 ? '' : 's'})`);
      for (const v of c.values) lines.push(`    ${show(v)}`);
    } else if (c.total !== undefined) lines.push(`${head} = ${c.total}`);
    else lines.push(`${head} = ${c.value === null || c.value === undefined ? '(no value)' : show(c.value)}`);
  }
  if (entries.length === 0) lines.push('  (empty)');
  process.stdout.write(lines.join('\n') + '\n');
  if (entries.length === 0) process.stderr.write(NO_STATE_NOTE);
  return 0;
}
