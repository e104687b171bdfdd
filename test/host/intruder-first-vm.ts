/**
 * A VM command for the hijack tests: `node intruder-first-vm.js REPORT_DIR --host ADDR`. The host launches it
 * in place of `hostlink vm`; it first starts an intruder (intruder.js, no secret) against the same address
 * and waits until the intruder has connected and sent its forgeries, then runs the real `hostlink vm`, which
 * inherits the stdin pipe that carries the secret. So the intruder is always first in the listener's queue.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { HOSTLINK_BIN, VM_NODE_FLAGS } from '../../src/host/supervisor.js';

const reportDir = process.argv[2]!;
const address = process.argv[process.argv.indexOf('--host') + 1]!;
const here = import.meta.dirname ?? new URL('.', import.meta.url).pathname;
const report = join(reportDir, `intruder-${process.pid}.json`);
const intruder = spawn(process.execPath, [join(here, 'intruder.js'), address, report], { stdio: ['ignore', 'pipe', 'inherit'] });
intruder.stdout.once('data', () => {
  const vm = spawn(process.execPath, [...VM_NODE_FLAGS, HOSTLINK_BIN, 'vm', '--host', address], { stdio: 'inherit' });
  vm.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
});
intruder.on('exit', (code) => {
  if (code !== 0) process.stderr.write(`intruder exited with ${code}\n`);
});
