/**
 * The VM's start-up snapshot entry. scripts/build-vm-snapshot.mjs bundles this module and everything it imports
 * (the `hostlink vm` command, never the rest of the CLI) into one script and runs it under
 * `node --build-snapshot`: the modules are evaluated once, at build time, and each VM process starts from the
 * resulting heap (`node --snapshot-blob FILE ...`) instead of loading ~100 files. Module top levels hold only
 * constants (tables, decoders); everything that differs per run (the secret on stdin, argv, the environment,
 * the sandbox, time, randomness) is read after deserialization, in the main function below.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startupSnapshot } from 'node:v8';
import { run } from '../cli/commands/vm.js';
import { DEFAULT_LIMITS } from '../protocol/message.js';
import { prepareModule } from './instrument/index.js';
import { policyFor } from './policy.js';

/**
 * Build time only: instruments a real contract a few times, so the instrumenter's functions (a third of a cold
 * call's VM time) are already compiled in the snapshot. Only code is kept: the instrumenter holds no state from
 * one module to the next (a pool VM instruments many modules in a row the same way). WebAssembly does not exist
 * while a snapshot is built, so the final validation step throws; everything before it has run by then.
 */
function warmUp(file: string): void {
  const bytes = readFileSync(file);
  for (let i = 0; i < 3; i++) {
    try {
      prepareModule(bytes, policyFor({ limits: DEFAULT_LIMITS, floats: 'canonicalize' }));
    } catch {
      // the missing WebAssembly global, or a rejection: either way the warm-up is over for this round
    }
  }
}

/**
 * Build time only: parses a VM command line like the host's, so that Node's argument parser (a built-in that is
 * not in Node's own snapshot) is compiled in ours instead of in every VM. It keeps no state between calls.
 */
function warmUpArguments(): void {
  parseArgs({ args: ['--host', 'unix:///warm-up.sock', '--channel', 'auto'], options: { host: { type: 'string' }, channel: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
}

if (startupSnapshot.isBuildingSnapshot()) {
  const sample = process.env.HOSTLINK_SNAPSHOT_WARM_UP;
  if (sample !== undefined && sample !== '') warmUp(sample);
  warmUpArguments();
  startupSnapshot.setDeserializeMainFunction(() => {
    // argv: [node, bin/hostlink.js (not run: src/host/vm-entry.ts), 'vm', ...the vm command's options]
    if (process.argv[2] !== 'vm') {
      process.stderr.write(`hostlink: this Node start-up snapshot runs only \`hostlink vm\`; start it as: node --snapshot-blob FILE hostlink.js vm [options]\n`);
      process.exitCode = 2;
      return;
    }
    run(process.argv.slice(3)).then(
      (code) => {
        process.exitCode = code;
      },
      (err: unknown) => {
        process.stderr.write(`hostlink vm: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
      },
    );
  });
}
