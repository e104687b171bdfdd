/** `hostlink check FILE.wasm`: the deploy-time checks alone, with how to fix each failure. */
import { existsSync } from 'node:fs';
import { HostlinkError } from '../../errors.js';
import { checkContract } from '../../contract/check.js';
import { readAbi, uncallableExports, uncallableWarning, unexportedWarning } from '../../contract/abi.js';
import { missingContract, parse, printJson, readContractFile } from '../common.js';
import { logText } from '../../terminal-text.js';

export const usage = `usage: hostlink check FILE.wasm [--json]

Runs the checks a host applies when a contract is deployed (valid WebAssembly, the feature whitelist, the
module limits, imports only from the host-function catalogue) with the default limits, and says how to fix
a failure. Exit 0 when the module would be accepted, 1 when not, 2 when FILE is missing or unreadable.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, usage);
  if (positionals.length !== 1) throw new HostlinkError('usage', `expected one FILE.wasm\n${usage}`);
  const file = positionals[0]!;
  if (!existsSync(file)) throw missingContract(file);
  const wasm = readContractFile(file);
  const failure = checkContract(wasm);
  if (values.json) {
    const described = failure ? undefined : readAbi(wasm);
    printJson({
      file,
      ok: !failure,
      ...(described === undefined ? { failure } : { methods: described.abi.methods.map((m) => m.name), abi_unexported: described.unexported, uncallable_exports: uncallableExports(wasm) }),
    });
    return failure ? 1 : 0;
  }
  if (failure) {
    process.stderr.write(`hostlink: ${file} would be refused: ${logText(failure.message)}\n  fix: ${failure.hint}\n`);
    return 1;
  }
  const { abi, unexported } = readAbi(wasm);
  const methods = abi.methods.map((m) => m.name);
  process.stdout.write(`ok: ${file} passes the deploy-time checks (${wasm.length} bytes; methods: ${logText(methods.join(', ')) || '(none)'})\n`);
  for (const warning of [unexportedWarning(unexported), uncallableWarning(uncallableExports(wasm))]) {
    if (warning !== undefined) process.stderr.write(`hostlink: warning: ${logText(warning)}\n`);
  }
  return 0;
}
