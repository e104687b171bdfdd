/**
 * An intruder: a process without the VM's secret (another local user, say) that connects to a VM's listener
 * before the real VM and tries to take its session:
 *   node intruder.js ADDR REPORT.json
 * It opens three connections: `legacy` says hello in the format that had no proof, asks for work and hands
 * over a forged result; `forged` does the same with a made-up proof; `silent` connects and says nothing.
 * It prints `ready` once all three have written, then records, per connection, how many bytes the host sent
 * it before closing, and writes the report when all three are closed.
 */
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { emptyEffects, encodeEffects } from '../../src/protocol/effects.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { encodeRequest } from '../../src/protocol/messages.js';
import { encodeResult } from '../../src/protocol/result.js';
import { parseAddress } from '../../src/transport/address.js';
import { WireWriter } from '../../src/protocol/wire.js';

const address = parseAddress(process.argv[2]!);
const reportPath = process.argv[3]!;

/** hello as it was before proofs: it is what a hijacker of an unauthenticated listener would send. */
const legacyHello = encodeFrame(new WireWriter().u8(0).u32(1).u32(1).bytes(Buffer.from('evil')).u32(process.pid).finish());
const forgedHello = encodeFrame(encodeRequest('hello', { minVersion: 1, maxVersion: 1, vmVersion: 'evil', pid: process.pid, proof: new Uint8Array(randomBytes(32)) }));
const forgery = Buffer.concat([
  encodeFrame(encodeRequest('next_message', {})),
  encodeFrame(encodeRequest('consume_result', {
    result: encodeResult({ code: 'return', value: Buffer.from('"forged"') }),
    effects: encodeEffects(emptyEffects()),
  })),
]);

const plans: Record<string, Buffer | null> = {
  legacy: Buffer.concat([legacyHello, forgery]),
  forged: Buffer.concat([forgedHello, forgery]),
  silent: null,
};
const report: Record<string, { received: number; closed: boolean }> = {};
let written = 0;
let closed = 0;
for (const [name, bytes] of Object.entries(plans)) {
  report[name] = { received: 0, closed: false };
  const socket: Socket = address.kind === 'unix' ? connect(address.path) : connect(address.port, address.host);
  socket.on('data', (chunk: Buffer) => (report[name]!.received += chunk.length));
  socket.on('error', () => undefined);
  socket.on('close', () => {
    report[name]!.closed = true;
    if (++closed === 3) {
      writeFileSync(reportPath, JSON.stringify(report));
      process.exit(0);
    }
  });
  socket.on('connect', () => {
    const done = (): void => {
      if (++written === 3) process.stdout.write('ready\n');
    };
    if (bytes === null) done();
    else socket.write(bytes, done);
  });
}
