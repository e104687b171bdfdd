/** `hostlink contexts`: the contexts of a data directory (with state, or created by calls), their size and root. */
import { HostlinkError } from '../../errors.js';
import { listContextInfo } from '../../host/inventory.js';
import { hex, parse, printJson, STORE_OPTIONS, STORE_OPTIONS_HELP, storeOptions, withHost } from '../common.js';
import { RemoteNode, SERVER_HELP, SERVER_OPTION, serverOf } from '../remote.js';
import { logText } from '../../terminal-text.js';

export const usage = `usage: hostlink contexts [--data-dir DIR] [--server URL] [--json]

Lists every context that has state in DIR (or on the running node at --server) or was created by a call:
its id, number of keys (not through a node: it does not count them) and state root.
(Ids are one-way: the name behind an id is not stored; hostlink id NAME gives the id of a name.)

${SERVER_HELP}

${STORE_OPTIONS_HELP}`;

const OPTIONS = { ...STORE_OPTIONS, ...SERVER_OPTION } as const;

const EMPTY = '(no contexts yet: hostlink call FILE.wasm METHOD creates state in the context "default")\n';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, usage);
  if (positionals.length !== 0) throw new HostlinkError('usage', `hostlink contexts takes no arguments\n${usage}`);
  const server = serverOf(values);
  if (server !== undefined) {
    const list = await new RemoteNode(server).get<{ context: string; root: string; application?: string }[]>('api/contexts');
    if (values.json) {
      printJson(list.map((c) => ({ context: c.context, root: c.root, ...(c.application !== undefined ? { application_id: c.application } : {}) })));
      return 0;
    }
    for (const c of list) {
      const extra = c.application !== undefined ? `  created by a call (application ${c.application.slice(0, 16)}…)` : '';
      process.stdout.write(logText(`${c.context}  root ${c.root.slice(0, 16)}…${extra}`) + '\n');
    }
    if (list.length === 0) process.stdout.write(EMPTY);
    return 0;
  }
  const list = await withHost(storeOptions(values), async (host) => listContextInfo(host.store), 'read');
  if (values.json) {
    const out = list.map((c) => ({
      context: hex(c.contextId),
      keys: c.keys,
      root: hex(c.root),
      ...(c.created ? { application_id: hex(c.created.applicationId), alias: c.created.alias } : {}),
    }));
    printJson(out);
    return 0;
  }
  for (const c of list) {
    const extra = c.created ? `  created by a call (application ${hex(c.created.applicationId).slice(0, 16)}…${c.created.alias ? `, alias ${logText(c.created.alias)}` : ''})` : '';
    process.stdout.write(`${hex(c.contextId)}  ${String(c.keys).padStart(6)} keys  root ${hex(c.root).slice(0, 16)}…${extra}\n`);
  }
  if (list.length === 0) process.stdout.write(EMPTY);
  return 0;
}
