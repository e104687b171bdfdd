/** `hostlink inspect (FILE.wasm|HASH)`: a contract's description (ABI): methods, their shapes, events. */
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { HostlinkError } from '../../errors.js';
import { readAbi, uncallableExports, uncallableWarning, unexportedWarning } from '../../contract/abi.js';
import { logText } from '../../terminal-text.js';
import { missingContract, parse, printJson, readContractFile, STORE_OPTIONS, STORE_OPTIONS_HELP, storeOptions, withHost } from '../common.js';

export const usage = `usage: hostlink inspect (FILE.wasm|HASH) [--json] [--data-dir DIR]

Prints a contract's methods (its exports) with the input and output shapes and docs, and the events, that the
ABI hostlink build embeds (custom section hostlink.abi) gives them. ABI entries naming no export are left out,
with a warning. A module without an ABI section is described by its exports alone.
HASH is the 64-hex code hash of a contract deployed in --data-dir.

${STORE_OPTIONS_HELP}`;

const shape = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, STORE_OPTIONS, usage);
  if (positionals.length !== 1) throw new HostlinkError('usage', `expected one FILE.wasm or code HASH\n${usage}`);
  const target = positionals[0]!;
  let wasm: Uint8Array;
  const hash = /^(0x)?([0-9a-fA-F]{64})$/.exec(target);
  if (hash && !existsSync(target)) {
    const code = await withHost(storeOptions(values), async (host) => host.code(Uint8Array.from(Buffer.from(hash[2]!, 'hex'))), 'read', false);
    if (code === undefined) throw new HostlinkError('not_found', `no contract with hash ${hash[2]} in ${storeOptions(values).dataDir}: deploy it first (hostlink codes lists them)`);
    wasm = code;
  } else {
    if (!existsSync(target)) throw missingContract(target);
    wasm = readContractFile(target);
  }
  if (!WebAssembly.validate(wasm)) throw new HostlinkError('usage', `${target} is not a valid WebAssembly module: give the compiled contract (hostlink build, run in the contract project, writes build/NAME.wasm)`);
  const { abi, embedded, unexported } = readAbi(wasm);
  const uncallable = uncallableExports(wasm);
  const codeHash = createHash('sha256').update(wasm).digest('hex');
  if (values.json) {
    printJson({ code_hash: codeHash, embedded, ...abi, unexported, uncallable_exports: uncallable });
    return 0;
  }
  for (const warning of [unexportedWarning(unexported), uncallableWarning(uncallable)]) {
    if (warning !== undefined) process.stderr.write(`hostlink: warning: ${logText(warning)}\n`);
  }
  const out: string[] = [`${abi.name ?? 'contract'} ${codeHash} (${wasm.length} bytes)${embedded ? '' : ' — no ABI section: methods from the exports only (build with hostlink build for shapes)'}`, 'methods:'];
  for (const m of abi.methods) {
    out.push(`  ${m.name}${m.view ? ' (view)' : ''}${m.input !== undefined ? `  input ${shape(m.input)}` : ''}${m.output !== undefined ? `  -> ${shape(m.output)}` : ''}`);
    if (m.doc) out.push(`      ${m.doc}`);
  }
  if (abi.methods.length === 0) out.push('  (none)');
  if (abi.events.length > 0) {
    out.push('events:');
    for (const e of abi.events) out.push(`  ${e.kind}${e.data !== undefined ? `  ${shape(e.data)}` : ''}`);
  }
  // Names and docs come from the contract's own sections: each line shown escaped.
  process.stdout.write(out.map(logText).join('\n') + '\n');
  return 0;
}
