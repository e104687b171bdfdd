/**
 * The VM side of bench/channel.ts, in its own process as in the real VM:
 * `node dist/bench/channel-client.js IMPL ADDRESS ITERATIONS WARMUP PAYLOAD_BYTES` prints
 * {"kind", "medianUs", "p99Us"} for sequential round trips after the warm-up.
 */
import { parseAddress } from '../src/transport/address.js';
import { connectHost } from '../src/transport/connect.js';

const [impl, address, iterations, warmup, payload] = process.argv.slice(2);
if (impl !== 'native' && impl !== 'js') throw new Error('usage: channel-client.js native|js ADDRESS ITERATIONS WARMUP PAYLOAD_BYTES');
const n = Number(iterations);
const ch = await connectHost(parseAddress(address!), { impl });
const body = Buffer.alloc(Number(payload), 0x5a);
for (let i = 0; i < Number(warmup); i++) ch.request(body);
const samples = new Float64Array(n);
for (let i = 0; i < n; i++) {
  const t0 = process.hrtime.bigint();
  ch.request(body);
  samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
}
ch.close();
samples.sort();
const at = (q: number) => samples[Math.min(n - 1, Math.floor(q * n))]!;
process.stdout.write(JSON.stringify({ kind: ch.kind, medianUs: at(0.5), p99Us: at(0.99) }) + '\n');
