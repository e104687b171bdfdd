/** `hostlink codes`: the contracts deployed in a data directory, with their sizes and methods. */
import { HostlinkError } from '../../errors.js';
import { listCodes } from '../../host/inventory.js';
import { hex, parse, printJson, STORE_OPTIONS, STORE_OPTIONS_HELP, storeOptions, withHost } from '../common.js';
import { RemoteNode, SERVER_HELP, SERVER_OPTION, serverOf } from '../remote.js';
import { logText } from '../../terminal-text.js';

export const usage = `usage: hostlink codes [--data-dir DIR] [--server URL] [--json]

Lists every contract stored in DIR (or on the running node at --server) by its code hash, with its size,
name and methods (from its ABI).

${SERVER_HELP}

${STORE_OPTIONS_HELP}`;

const OPTIONS = { ...STORE_OPTIONS, ...SERVER_OPTION } as const;

interface Listed {
  code_hash: string;
  bytes: number;
  name: string | null;
  methods: string[];
}

/**
 * The node lists hashes and sizes; each contract's name and methods come from its own answer, asked one at a
 * time (a node limits connections; one it cannot describe is listed without them, as locally).
 */
async function remoteCodes(node: RemoteNode): Promise<Listed[]> {
  const out: Listed[] = [];
  for (const c of await node.get<{ code_hash: string; bytes: number }[]>('api/codes')) {
    let described: { methods: string[]; abi: { name?: string } } | undefined;
    try {
      described = await node.get<{ methods: string[]; abi: { name?: string } }>(`api/codes/${c.code_hash}`);
    } catch (e) {
      if (!(e instanceof HostlinkError) || e.code === 'channel_closed') throw e;
    }
    out.push({ code_hash: c.code_hash, bytes: c.bytes, name: described?.abi.name ?? null, methods: described?.methods ?? [] });
  }
  return out;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, usage);
  if (positionals.length !== 0) throw new HostlinkError('usage', `hostlink codes takes no arguments\n${usage}`);
  const server = serverOf(values);
  const codes: Listed[] =
    server !== undefined
      ? await remoteCodes(new RemoteNode(server))
      : (await withHost(storeOptions(values), async (host) => listCodes(host.store), 'read')).map((c) => ({ code_hash: hex(c.codeHash), bytes: c.bytes, name: c.name ?? null, methods: c.methods }));
  if (values.json) {
    printJson(codes);
    return 0;
  }
  for (const c of codes) process.stdout.write(`${c.code_hash}  ${String(c.bytes).padStart(8)} bytes  ${logText(c.name ?? '-')}  ${logText(c.methods.join(', '))}\n`);
  if (codes.length === 0) process.stdout.write('(no contracts deployed: hostlink deploy FILE.wasm)\n');
  return 0;
}
