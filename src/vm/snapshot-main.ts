/**
 * The VM's start-up snapshot entry. scripts/build-vm-snapshot.mjs bundles this module and everything it imports
 * (the `hostlink vm` command, never the rest of the CLI) into one script and runs it under
 * `node --build-snapshot`: the modules are evaluated once, at build time, and each VM process starts from the
 * resulting heap (`node --snapshot-blob FILE ...`) instead of loading ~100 files. Module top levels hold only
 * constants (tables, decoders); everything that differs per run (the secret on stdin, argv, the environment,
 * the sandbox, time, randomness) is read after deserialization, in the main function below.
 */
import { startupSnapshot } from 'node:v8';
import { run } from '../cli/commands/vm.js';

if (startupSnapshot.isBuildingSnapshot()) {
  startupSnapshot.setDeserializeMainFunction(() => {
    // argv: [node, a marker where a script path would be (src/host/vm-entry.ts), ...the vm command's options]
    run(process.argv.slice(2)).then(
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
