#!/usr/bin/env node
// The VM's lean entry: `hostlink vm` without the CLI dispatcher, for VMs the host starts when no start-up snapshot
// is usable (src/host/vm-entry.ts). Same options and exit codes as `hostlink vm`.
import { run } from '../dist/src/cli/commands/vm.js';

run(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`hostlink vm: ${err?.message ?? err}\n`); process.exitCode = 1; },
);
