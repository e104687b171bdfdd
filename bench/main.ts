/**
 * `npm run bench`: every performance target of the product, measured side by side in one run (the machine is
 * shared and noisy, so ratios measured together are what counts, not absolute times).
 *
 *   1. host-call round trip: the VM's native channel against Hostlink's own session, next to a C ping-pong
 *   2. state root per changed key at 10k and 100k keys, next to @ethereumjs/mpt
 *   3. kv-store `set` executions per second, pool mode vs one-shot mode, with CPU per execution on both sides
 *   4. the pieces of a pooled execution measured alone, the ceiling they add up to, and the ratio to section 3
 *   5. metering overhead: instrumented vs plain, and the time to instrument a 1 MiB module
 *   6. observability overhead: executions per second bare, with Prometheus metrics, and with recorded reads
 *   7. gas is a price of time: ns per gas of plain WebAssembly and of every host-function class
 *   8. non-deterministic blocks and sandboxes against a plain call of the same contract
 *   9. the VM sandbox: VM start-up and pool executions/s, sandbox off vs on
 *  10. one-shot cold call, spawn to result (start-up snapshot, CLI entry, VM thread), next to `node -e 0`
 *  11. remote workers: executions/s through 2 loopback workers (TLS) next to the local pool, node CPU per execution
 *
 * `--quick` runs fewer iterations and sizes (for a smoke test).
 */
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchChannel, printChannelBench, sessionRoundTrip } from './channel.js';
import { benchExecutions, benchHeapGrowth, printExecutions, printHeapGrowth, STEADY_WARMUP_CALLS, steadyRow } from './executions.js';
import { benchGas, printGas } from './gas.js';
import { benchMeteringAsVm, printMetering } from './metering.js';
import { benchObservability, benchObservabilityCpu, printObservability, printObservabilityCpu } from './observability.js';
import { benchNondet, printNondet } from './nondet.js';
import { benchPieces, ceiling, printCeiling, printOneContext } from './pieces.js';
import { type benchStateRoot, printStateRoot } from './state-root.js';
import { inChild } from './child.js';
import { benchSandbox, benchVmUser, printSandbox } from './sandbox.js';
import { benchCold, printCold } from './cold.js';

const quick = process.argv.includes('--quick');
const started = Date.now();
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');
process.stdout.write(`Hostlink benchmarks (${quick ? 'quick' : 'full'} run), node ${process.version}, load average ${load()}\n`);
const vmUser = benchVmUser();
if (vmUser !== undefined) process.stdout.write(`note: ${vmUser}\n`);

process.stdout.write('\n== 1. host-call round trip (32-byte payload) ==\n');
const channel = await benchChannel({ iterations: quick ? 2000 : 20_000, rounds: quick ? 1 : 3 });
printChannelBench(channel);

process.stdout.write('\n== 2. state root ==\n');
// In a process of its own: filling mpt and the stores leaves ~400 MB of garbage that the later sections' hosts
// would otherwise pay for (bench/child.ts).
const roots = await inChild<Awaited<ReturnType<typeof benchStateRoot>>>(fileURLToPath(new URL('./state-root.js', import.meta.url)), 'benchStateRoot', [
  {
    sizes: quick ? [10_000] : [10_000, 100_000],
    deltas: quick ? 500 : 2000,
    mptSizes: quick ? [10_000] : [10_000, 100_000],
  },
]);
printStateRoot(roots);

process.stdout.write('\n== 3. executions per second ==\n');
const executions = await benchExecutions({ poolCalls: quick ? 400 : 4000, oneShotCalls: quick ? 10 : 30, steadyWarmup: quick ? 200 : STEADY_WARMUP_CALLS });
printExecutions(executions);
printHeapGrowth(await benchHeapGrowth({ poolCalls: quick ? 400 : 4000, steadyWarmup: quick ? 200 : STEADY_WARMUP_CALLS }));

process.stdout.write('\n== 4. the pieces alone and the ceiling ==\n');
const pieces = await benchPieces({ calls: quick ? 200 : 1000, writes: quick ? 1000 : 4000 });
const session = sessionRoundTrip(channel);
const root = roots.rows.find((r) => r.keys === 10_000 && r.delta === 1);
const pooled = steadyRow(executions);
const oneLane = executions.find((r) => r.mode === 'pool' && r.transport === 'unix' && r.concurrency === 1);
const queued = executions.find((r) => r.mode === 'pool' && r.contexts === 1 && r.concurrency > 1);
const limits = ceiling(pieces, session?.medianUs, root?.hostlinkUs);
printCeiling(limits, pooled, availableParallelism());
printOneContext(pieces, oneLane, limits, queued);

process.stdout.write('\n== 5. metering overhead ==\n');
process.stdout.write(printMetering(await benchMeteringAsVm(quick ? 1 : undefined)) + '\n');

process.stdout.write('\n== 6. observability overhead ==\n');
process.stdout.write(printObservability(await benchObservability({ calls: quick ? 300 : 2000, rounds: quick ? 1 : 3 })) + '\n');
process.stdout.write(printObservabilityCpu(await benchObservabilityCpu(quick ? 20_000 : 200_000)) + '\n');

process.stdout.write('\n== 7. gas is a price of time (ns per gas, real VM process) ==\n');
process.stdout.write(printGas(await benchGas({ quick })) + '\n');

process.stdout.write('\n== 8. non-deterministic blocks and sandboxes ==\n');
process.stdout.write(printNondet(await benchNondet(quick ? 20 : 200)) + '\n');

process.stdout.write('\n== 9. VM sandbox cost ==\n');
printSandbox(await benchSandbox({ oneShotCalls: quick ? 6 : 20, poolCalls: quick ? 400 : 2000 }));

process.stdout.write('\n== 10. one-shot cold call ==\n');
printCold(await benchCold({ rounds: quick ? 3 : 20 }));

process.stdout.write('\n== 11. remote workers (TLS, 2 loopback workers) vs local pool ==\n');
{
  const { benchRemote, printRemote } = await import('./remote.js'); // loads TLS and gRPC only for this section
  printRemote(await benchRemote({ calls: quick ? 400 : 2000 }));
}

process.stdout.write(`\nbench finished in ${((Date.now() - started) / 1000).toFixed(0)} s, load average ${load()}\n`);
