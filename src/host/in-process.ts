/**
 * Runs an execution inside the host process: the VM runner talks to a real Session through an
 * InProcessChannel, so every request goes through the same encoders and handlers as over a socket, minus the
 * process and the socket. For tests and for embedding where process isolation is not needed. There is no
 * listener to protect, so the hello carries no proof (nothing checks it).
 */
import { HostlinkError } from '../errors.js';
import { encodeEffects } from '../protocol/effects.js';
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from '../protocol/generated.js';
import { encodeResult } from '../protocol/result.js';
import { InProcessChannel } from '../transport/in-process.js';
import { HostClient } from '../vm/host-client.js';
import { CodeCache, runExecution } from '../vm/runner.js';
import { Job, type JobEnd } from './job.js';
import type { SessionBackend } from './session-types.js';
import { Session } from './session.js';

export function runInProcess(backend: SessionBackend, messageJson: string, cache = new CodeCache()): JobEnd {
  const job = new Job(messageJson);
  const session = new Session(backend, { oneShot: job });
  const channel = new InProcessChannel((body) => {
    const answer = session.handle(body);
    if (answer instanceof Promise) throw new HostlinkError('internal', 'an in-process session cannot wait for work');
    return answer;
  });
  const host = new HostClient(channel);
  const hello = host.call('hello', { minVersion: PROTOCOL_VERSION_MIN, maxVersion: PROTOCOL_VERSION_MAX, vmVersion: 'in-process', pid: process.pid, proof: new Uint8Array(32) });
  if (hello.status !== 'ok') throw new HostlinkError('internal', `in-process hello failed: ${hello.status}`);
  const report = runExecution(job.message, host, cache);
  const ack = host.call('consume_result', { result: encodeResult(report.result), effects: encodeEffects(report.effects) });
  if (ack.status !== 'ok') throw new HostlinkError('internal', `in-process consume_result failed: ${ack.status}`);
  const end = job.ending;
  if (end === undefined) throw new HostlinkError('internal', 'the in-process session did not take the result');
  return end;
}
