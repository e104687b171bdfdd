/** `hostlink codes`: the contracts deployed in a data directory, with their sizes and methods. */
import { HostlinkError } from '../../errors.js';
import { listCodes } from '../../host/inventory.js';
import { hex, HOST_OPTIONS, HOST_OPTIONS_HELP, hostOptions, parse, withHost } from '../common.js';

export const usage = `usage: hostlink codes [--data-dir DIR] [--json]

Lists every contract stored in DIR by its code hash, with its size, name and methods (from its ABI).

${HOST_OPTIONS_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, HOST_OPTIONS, usage);
  if (positionals.length !== 0) throw new HostlinkError('usage', `hostlink codes takes no arguments\n${usage}`);
  const codes = await withHost(hostOptions(values), async (host) => listCodes(host.store), 'read');
  if (values.json) {
    process.stdout.write(JSON.stringify(codes.map((c) => ({ code_hash: hex(c.codeHash), bytes: c.bytes, name: c.name ?? null, methods: c.methods }))) + '\n');
    return 0;
  }
  for (const c of codes) process.stdout.write(`${hex(c.codeHash)}  ${String(c.bytes).padStart(8)} bytes  ${c.name ?? '-'}  ${c.methods.join(', ')}\n`);
  if (codes.length === 0) process.stdout.write('(no contracts deployed: hostlink deploy FILE.wasm)\n');
  return 0;
}
