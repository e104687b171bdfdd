/**
 * `npm run bench`: every performance target of the product, measured side by side in one run (the machine is
 * shared and noisy, so ratios measured together are what counts, not absolute times).
 *
 *   1. host-call round trip of the VM's channel next to a C ping-pong over the same kind of socket
 *   2. kv-store `set` executions per second, pool mode vs one-shot mode
 *   3. metering overhead: instrumented vs plain, and the time to instrument a 1 MiB module
 *   4. observability overhead: executions per second bare, with Prometheus metrics, and with recorded reads
 *   5. gas is a price of time: ns per gas of plain WebAssembly and of every host-function class
 *   6. non-deterministic blocks and sandboxes against a plain call of the same contract
 *
 * `--quick` runs fewer iterations (for a smoke test).
 */
import { benchChannel, printChannelBench } from './channel.js';
import { benchExecutions, printExecutions } from './executions.js';
import { benchGas, printGas } from './gas.js';
import { benchMetering, printMetering } from './metering.js';
import { benchObservability, benchObservabilityCpu, printObservability, printObservabilityCpu } from './observability.js';
import { benchNondet, printNondet } from './nondet.js';

const quick = process.argv.includes('--quick');
const started = Date.now();
process.stdout.write(`Hostlink benchmarks (${quick ? 'quick' : 'full'} run), node ${process.version}\n`);

process.stdout.write('\n== 1. host-call round trip (32-byte payload) ==\n');
printChannelBench(await benchChannel({ iterations: quick ? 2000 : 20_000, rounds: quick ? 1 : 3 }));

process.stdout.write('\n== 2. executions per second ==\n');
printExecutions(await benchExecutions({ poolCalls: quick ? 400 : 4000, oneShotCalls: quick ? 10 : 60 }));

process.stdout.write('\n== 3. metering overhead ==\n');
process.stdout.write(printMetering(await benchMetering(quick ? 1 : undefined)) + '\n');

process.stdout.write('\n== 4. observability overhead ==\n');
process.stdout.write(printObservability(await benchObservability({ calls: quick ? 300 : 2000, rounds: quick ? 1 : 3 })) + '\n');
process.stdout.write(printObservabilityCpu(await benchObservabilityCpu(quick ? 20_000 : 200_000)) + '\n');

process.stdout.write('\n== 5. gas is a price of time (ns per gas, real VM process) ==\n');
process.stdout.write(printGas(await benchGas({ quick })) + '\n');

process.stdout.write('\n== 6. non-deterministic blocks and sandboxes ==\n');
process.stdout.write(printNondet(await benchNondet(quick ? 20 : 200)) + '\n');

process.stdout.write(`\nbench finished in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
