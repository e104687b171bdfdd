/** `hostlink deploy FILE.wasm`: store a contract and print its code hash. */
import { HostlinkError } from '../../errors.js';
import { hex, namingFile, parse, printJson, readContractArg, STORE_OPTIONS, STORE_OPTIONS_HELP, storeOptions, withHost } from '../common.js';
import { RemoteNode, SERVER_HELP, SERVER_OPTION, serverOf } from '../remote.js';

export const usage = `usage: hostlink deploy FILE.wasm [--data-dir DIR] [--json]

Stores the contract by its SHA-256 hash and prints the hash (use it with hostlink call).

${SERVER_HELP}

${STORE_OPTIONS_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...STORE_OPTIONS, ...SERVER_OPTION }, usage);
  if (positionals.length !== 1) throw new HostlinkError('usage', `expected one FILE.wasm\n${usage}`);
  const file = positionals[0]!;
  const bytes = readContractArg(file);
  const server = serverOf(values);
  const hash =
    server === undefined
      ? await withHost(storeOptions(values), (host) => namingFile(file, host.deploy(bytes)))
      : Uint8Array.from(Buffer.from((await namingFile(file, new RemoteNode(server).post<{ code_hash: string }>('api/codes', bytes, 'application/wasm', 'deploying again is safe once the node answers (a contract is stored by its hash)'))).code_hash, 'hex'));
  if (values.json) printJson({ code_hash: hex(hash), bytes: bytes.length });
  else process.stdout.write(hex(hash) + '\n');
  return 0;
}
