/**
 * What section 1's in-process servers share: a listener on a fresh unix path or loopback port, and the session
 * rows' work (one job handed out, then nothing; every storage_read answered with the same value).
 */
import { rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { Job } from '../src/host/job.js';
import type { SessionBackend } from '../src/host/methods.js';
import type { WorkSource } from '../src/host/session.js';
import { buildMessage } from '../src/protocol/message.js';

/** Starts `server` listening on `sockPath` (unix) or an ephemeral loopback port (tcp); the address VMs dial. */
export async function listenFresh(server: Server, transport: 'unix' | 'tcp', sockPath: string): Promise<string> {
  if (transport === 'unix') rmSync(sockPath, { force: true });
  await new Promise<void>((resolve) => (transport === 'unix' ? server.listen(sockPath, resolve) : server.listen(0, '127.0.0.1', resolve)));
  const a = server.address();
  return transport === 'unix' ? `unix://${sockPath}` : `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}

/** A backend answering every state read with `payloadBytes` bytes of 0xa5, and work that is one job. */
export function benchSessionWork(payloadBytes: number): { backend: SessionBackend; work: WorkSource } {
  const value = new Uint8Array(payloadBytes).fill(0xa5);
  // Gas for every request the clients send: the session ends a job at the first request its gas cannot pay for.
  const job = new Job(buildMessage({ codeHash: new Uint8Array(32), method: 'bench', contextId: new Uint8Array(32).fill(1), gasLimit: (1n << 63n) - 1n }));
  job.trace.recording = false; // as in a Host nobody listens to (no call.finished listener: no trace entries)
  let given = false;
  return {
    backend: { getCode: () => undefined, readState: () => value },
    work: { nextJob: () => Promise.resolve(given ? null : ((given = true), job)) },
  };
}
