/** `hostlink state CONTEXT`: a context's keys, values and state root. */
import { HostlinkError } from '../../errors.js';
import { hex, HOST_OPTIONS, HOST_OPTIONS_HELP, hostOptions, parse, parseId, showBytes, withHost } from '../common.js';
import { RemoteNode, SERVER_HELP, SERVER_OPTION, serverOf } from '../remote.js';

export const usage = `usage: hostlink state CONTEXT [--data-dir DIR] [--json]

Prints every key and value of a context (sorted by key) and its state root.
CONTEXT is 64 hex characters or a name (the id is SHA-256 of the name).

${SERVER_HELP}

${HOST_OPTIONS_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...HOST_OPTIONS, ...SERVER_OPTION }, usage);
  if (positionals.length !== 1) throw new HostlinkError('usage', `expected one CONTEXT\n${usage}`);
  const contextId = parseId(positionals[0]!);
  const server = serverOf(values);
  const out =
    server === undefined
      ? await withHost(hostOptions(values), async (host) => {
          const { root, entries } = host.state(contextId);
          return { context: hex(contextId), root: hex(root), entries: entries.map(([k, v]) => ({ key: showBytes(k), value: showBytes(v) })) };
        })
      : await new RemoteNode(server).get<{ context: string; root: string; entries: { key: string; value: string }[] }>(`api/contexts/${hex(contextId)}/state`);
  if (values.json) {
    process.stdout.write(JSON.stringify(out) + '\n');
    return 0;
  }
  const { root, entries } = out;
  process.stdout.write(`context ${out.context}\nroot    ${root}\n`);
  for (const { key, value } of entries) process.stdout.write(`  ${key} = ${value}\n`);
  if (entries.length === 0) process.stdout.write('  (empty)\n');
  return 0;
}
