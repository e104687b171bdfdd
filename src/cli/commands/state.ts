/** `hostlink state CONTEXT`: a context's keys, values and state root. */
import { HostlinkError } from '../../errors.js';
import { hex, HOST_OPTIONS, HOST_OPTIONS_HELP, hostOptions, parse, parseId, showBytes, withHost } from '../common.js';

export const usage = `usage: hostlink state CONTEXT [--data-dir DIR] [--json]

Prints every key and value of a context (sorted by key) and its state root.
CONTEXT is 64 hex characters or a name (the id is SHA-256 of the name).

${HOST_OPTIONS_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, HOST_OPTIONS, usage);
  if (positionals.length !== 1) throw new HostlinkError('usage', `expected one CONTEXT\n${usage}`);
  const contextId = parseId(positionals[0]!);
  const { root, entries } = await withHost(hostOptions(values), async (host) => host.state(contextId));
  if (values.json) {
    const out = { context: hex(contextId), root: hex(root), entries: entries.map(([k, v]) => ({ key: showBytes(k), value: showBytes(v) })) };
    process.stdout.write(JSON.stringify(out) + '\n');
    return 0;
  }
  process.stdout.write(`context ${hex(contextId)}\nroot    ${hex(root)}\n`);
  for (const [k, v] of entries) process.stdout.write(`  ${showBytes(k)} = ${showBytes(v)}\n`);
  if (entries.length === 0) process.stdout.write('  (empty)\n');
  return 0;
}
