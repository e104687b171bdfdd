/**
 * `npm run bench`: every performance target of the product, measured side by side in one run (the machine is
 * shared and noisy, so ratios measured together are what counts, not absolute times).
 *
 *   1. host-call round trip of the VM's channel next to a C ping-pong over the same kind of socket
 *   2. kv-store `set` executions per second, pool mode vs one-shot mode
 *   3. metering overhead: instrumented vs plain, and the time to instrument a 1 MiB module
 *   4. the VM sandbox: VM start-up and pool executions/s, sandbox off vs on
 *
 * `--quick` runs fewer iterations (for a smoke test).
 */
import { benchChannel, printChannelBench } from './channel.js';
import { benchExecutions, printExecutions } from './executions.js';
import { benchMetering, printMetering } from './metering.js';
import { benchSandbox, printSandbox } from './sandbox.js';

const quick = process.argv.includes('--quick');
const started = Date.now();
process.stdout.write(`Hostlink benchmarks (${quick ? 'quick' : 'full'} run), node ${process.version}\n`);

process.stdout.write('\n== 1. host-call round trip (32-byte payload) ==\n');
printChannelBench(await benchChannel({ iterations: quick ? 2000 : 20_000, rounds: quick ? 1 : 3 }));

process.stdout.write('\n== 2. executions per second ==\n');
printExecutions(await benchExecutions({ poolCalls: quick ? 400 : 4000, oneShotCalls: quick ? 10 : 60 }));

process.stdout.write('\n== 3. metering overhead ==\n');
process.stdout.write(printMetering(await benchMetering(quick ? 1 : undefined)) + '\n');

process.stdout.write('\n== 4. VM sandbox cost ==\n');
printSandbox(await benchSandbox({ oneShotCalls: quick ? 6 : 40, poolCalls: quick ? 400 : 4000 }));

process.stdout.write(`\nbench finished in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
