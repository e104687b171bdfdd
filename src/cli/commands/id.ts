/** `hostlink id NAME`: the 32-byte id a name stands for (SHA-256 of its UTF-8 bytes), as --context/--executor use it. */
import { HostlinkError } from '../../errors.js';
import { hex, ID_HELP, parse, parseId, printJson } from '../common.js';

export const usage = `usage: hostlink id (NAME|name:NAME|ID) [--json]

Prints the 64-hex id that NAME stands for wherever the CLI takes an id (--context, --executor, state CONTEXT).

${ID_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, usage);
  if (positionals.length !== 1) throw new HostlinkError('usage', `expected one NAME\n${usage}`);
  const id = hex(parseId(positionals[0]!, 'NAME'));
  if (values.json) printJson({ input: positionals[0], id });
  else process.stdout.write(id + '\n');
  return 0;
}
