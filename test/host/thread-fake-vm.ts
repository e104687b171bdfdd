/**
 * Misbehaving VM threads for test/host/thread.test.ts (each thread-vm-*.ts entry runs one): they connect and
 * prove their secret like the real VM thread, take their job with next_message, then fail in one way mid-call.
 */
import { workerData } from 'node:worker_threads';
import { helloProof } from '../../src/protocol/hello-proof.js';
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from '../../src/protocol/generated.js';
import { encodeRequest } from '../../src/protocol/messages.js';
import { parseAddress } from '../../src/transport/address.js';
import { connectJs } from '../../src/transport/js-channel.js';
import { HostClient } from '../../src/vm/host-client.js';
import type { ThreadVmData } from '../../src/vm/thread-data.js';

/** Says hello with the secret's proof and takes the first job; returns once the job is this VM's. */
export async function takeJob(): Promise<HostClient> {
  const data = workerData as ThreadVmData;
  const host = new HostClient(await connectJs(parseAddress(data.host)));
  const fields = { minVersion: PROTOCOL_VERSION_MIN, maxVersion: PROTOCOL_VERSION_MAX, vmVersion: 'test', pid: process.pid, proof: new Uint8Array(32) };
  fields.proof = helloProof(Uint8Array.from(data.secret), encodeRequest('hello', fields));
  const answer = host.call('hello', fields);
  if (answer.status !== 'ok') throw new Error(`hello refused: ${answer.status}`);
  if (host.fetch('next_message', {}) === undefined) throw new Error('no job');
  return host;
}
