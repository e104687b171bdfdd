/** `hostlink contexts`: the contexts of a data directory (with state, or created by calls), their size and root. */
import { HostlinkError } from '../../errors.js';
import { listContextInfo } from '../../host/inventory.js';
import { hex, HOST_OPTIONS, HOST_OPTIONS_HELP, hostOptions, parse, withHost } from '../common.js';

export const usage = `usage: hostlink contexts [--data-dir DIR] [--json]

Lists every context that has state in DIR or was created by a call: its id, number of keys and state root.
(Ids are one-way: the name behind an id is not stored; hostlink id NAME gives the id of a name.)

${HOST_OPTIONS_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, HOST_OPTIONS, usage);
  if (positionals.length !== 0) throw new HostlinkError('usage', `hostlink contexts takes no arguments\n${usage}`);
  const list = await withHost(hostOptions(values), async (host) => listContextInfo(host.store), 'read');
  if (values.json) {
    const out = list.map((c) => ({
      context: hex(c.contextId),
      keys: c.keys,
      root: hex(c.root),
      ...(c.created ? { application_id: hex(c.created.applicationId), alias: c.created.alias } : {}),
    }));
    process.stdout.write(JSON.stringify(out) + '\n');
    return 0;
  }
  for (const c of list) {
    const extra = c.created ? `  created by a call (application ${hex(c.created.applicationId).slice(0, 16)}…${c.created.alias ? `, alias ${c.created.alias}` : ''})` : '';
    process.stdout.write(`${hex(c.contextId)}  ${String(c.keys).padStart(6)} keys  root ${hex(c.root).slice(0, 16)}…${extra}\n`);
  }
  if (list.length === 0) process.stdout.write('(no contexts yet: hostlink call FILE.wasm METHOD creates state in the context "default")\n');
  return 0;
}
