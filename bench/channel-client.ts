/**
 * The VM side of bench/channel.ts, in its own process as in the real VM:
 * `node dist/bench/channel-client.js IMPL ADDRESS ITERATIONS WARMUP PAYLOAD_BYTES [session]` prints
 * {"kind", "medianUs", "p99Us"} for sequential round trips after the warm-up.
 *
 * With `session` the peer is Hostlink's own host session behind its gate: the client proves the secret given
 * in HOSTLINK_BENCH_SECRET (hex) in its hello, takes a job with next_message, and then times storage_read
 * requests of a PAYLOAD_BYTES key (each answered with a PAYLOAD_BYTES value), as a contract's cold reads are.
 * Without it the peer is an echo server and the request is PAYLOAD_BYTES of opaque bytes.
 */
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from '../src/protocol/generated.js';
import { helloProof } from '../src/protocol/hello-proof.js';
import { decodeResponse, encodeRequest } from '../src/protocol/messages.js';
import { parseAddress } from '../src/transport/address.js';
import { connectHost } from '../src/transport/connect.js';

const [impl, address, iterations, warmup, payload, peer] = process.argv.slice(2);
if (impl !== 'native' && impl !== 'js') throw new Error('usage: channel-client.js native|js ADDRESS ITERATIONS WARMUP PAYLOAD_BYTES [session]');
const n = Number(iterations);
const ch = await connectHost(parseAddress(address!), { impl });
let body: Uint8Array = Buffer.alloc(Number(payload), 0x5a);
if (peer === 'session') {
  const secret = Buffer.from(process.env.HOSTLINK_BENCH_SECRET ?? '', 'hex');
  const fields = { minVersion: PROTOCOL_VERSION_MIN, maxVersion: PROTOCOL_VERSION_MAX, vmVersion: 'bench', pid: process.pid, proof: new Uint8Array(32) };
  fields.proof = helloProof(secret, encodeRequest('hello', fields));
  if (decodeResponse('hello', ch.request(encodeRequest('hello', fields))).status !== 'ok') throw new Error('hello refused');
  if (decodeResponse('next_message', ch.request(encodeRequest('next_message', {}))).status !== 'ok') throw new Error('no job');
  body = encodeRequest('storage_read', { key: Buffer.alloc(Number(payload), 0x5a) });
  const r = decodeResponse('storage_read', ch.request(body));
  if (r.status !== 'ok') throw new Error(`storage_read answered ${r.status}`);
}
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
