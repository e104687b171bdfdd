/**
 * The host's hot path alone, for before/after comparisons of a change to it: the host-call round trip
 * (section 1 of `npm run bench`) and the steady-state pooled kv-store `set` (8 lanes, unix, after the long
 * warm-up, section 3) with CPU per execution on both sides, every safety layer on as in `npm run bench`, and
 * the load average before and after. About a minute; run it by hand:
 *
 *   node dist/bench/hot-path.js [round-trip iterations] [pool calls]
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchChannel, printChannelBench } from './channel.js';
import { measure, printExecutions, STEADY_WARMUP_CALLS } from './executions.js';

const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const iterations = Number(process.argv[2] ?? 20_000);
  const calls = Number(process.argv[3] ?? 4000);
  process.stdout.write(`host hot path, node ${process.version}, load average ${load()}\n`);
  printChannelBench(await benchChannel({ iterations, rounds: 3 }));
  process.stdout.write(`load average ${load()}\n`);
  printExecutions([await measure('pool', 'unix', calls, 8, undefined, undefined, STEADY_WARMUP_CALLS)]);
  process.stdout.write(`load average ${load()}\n`);
}
