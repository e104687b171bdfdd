/** `hostlink new NAME`: create a contract project (AssemblyScript, the SDK, an asconfig, a test, a README). */
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { HostlinkError } from '../../errors.js';
import { PROJECT_NAME, scaffoldFiles } from '../../contract/scaffold.js';
import { parse } from '../common.js';

export const usage = `usage: hostlink new NAME [--dir DIR]

Creates the contract project NAME in ./NAME (or DIR): assembly/index.ts (a counter with a greeting),
asconfig.json, test/contract.test.js (hostlink/testing; npm test runs every test file in test/),
package.json and a README. Then:

  cd NAME && npm install && npm test

NAME is a lowercase npm package name (letters, digits, '.', '_', '-'). The folder must not exist or be empty.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { dir: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, usage);
  if (positionals.length !== 1) throw new HostlinkError('usage', `expected one NAME\n${usage}`);
  const name = positionals[0]!;
  if (!PROJECT_NAME.test(name)) {
    throw new HostlinkError('usage', `'${name}' is not a valid project name: use lowercase letters, digits, '.', '_' or '-' (at most 63, starting with a letter or digit)`);
  }
  const dir = resolve(values.dir ?? name);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new HostlinkError('usage', `${dir} already exists and is not a folder: choose another NAME or --dir`);
    if (readdirSync(dir).length > 0) throw new HostlinkError('usage', `${dir} already exists and is not empty: choose another NAME or --dir`);
  }
  for (const [file, content] of Object.entries(scaffoldFiles(name))) {
    const path = join(dir, file);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content, { flag: 'wx' });
  }
  process.stdout.write(
    `created ${dir}\n\nnext:\n  cd ${values.dir ?? name}\n  npm install     # not needed when a parent folder already has hostlink, @hostlink/sdk and assemblyscript\n  npm test        # builds build/${name}.wasm and runs the tests in test/\n`,
  );
  return 0;
}
