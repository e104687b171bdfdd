/**
 * Refused registrations on the node's endpoint for workers are logged once per connection: a stranger that sends
 * Initialize after Initialize on one TLS connection (no client certificate, no token) gets one warning in full and,
 * when the connection closes, one more with how many were refused after it and the last one's reason. A line per
 * refusal let one connection write 20,000 warnings in 10 s and stall the node's event loop. A real `hostlink
 * worker` process refused for its credentials is still logged with its reason. Real Host, real TLS, raw HTTP/2.
 */
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { makeCerts, opensslMissing } from '../../bench/certs.js';
import { Host } from '../../src/host/host.js';
import type { HostLogger } from '../../src/host/logger.js';
import { INITIALIZE_METHOD_PATH } from '../../src/runtime/grpc.js';
import { tempDir } from '../helpers.js';
import { encodeInitializeRequest } from '../runtime/production-shape.js';
import { startWorkerProcess, waitFor, type WorkerProcess } from './helpers.js';

const skip = opensslMissing();

describe("the node's refusals of worker registrations in its log", { skip }, () => {
  const dir = tempDir('hostlink-endpoint-refusals-');
  const warnings: string[] = [];
  const logger: HostLogger = { debug: () => undefined, info: () => undefined, warn: (m) => void warnings.push(m), error: (m) => void warnings.push(m) };
  let host: Host | undefined;
  let worker: WorkerProcess | undefined;
  after(async () => {
    await worker?.kill('SIGKILL');
    await host?.close();
    dir.remove();
  });

  test('one connection refused 200 times: its first refusal in full, then one line with the count when it closes', { timeout: 120_000 }, async () => {
    const certs = makeCerts(dir.path);
    host = await Host.open({ dataDir: join(dir.path, 'data'), poolSize: 1, logger, workers: { listen: '127.0.0.1:0', tls: certs.node } });
    const address = host.remote!.address!;

    const session = h2connect(`https://${address}`, { rejectUnauthorized: false });
    session.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('close', () => reject(new Error('the node closed the connection')));
    });
    const local = `${session.socket.localAddress}:${session.socket.localPort}`; // the peer, as the node names it
    const body = encodeInitializeRequest(1, '127.0.0.1:7420');
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    const calls = 200;
    let statuses: string[] = [];
    const one = (): Promise<void> =>
      new Promise((resolve) => {
        const stream = session.request({ ':method': 'POST', ':path': INITIALIZE_METHOD_PATH, 'content-type': 'application/grpc', te: 'trailers' });
        const read = (h: Record<string, unknown>): void => {
          if (h['grpc-status'] !== undefined) statuses.push(String(h['grpc-status']));
        };
        stream.on('response', read);
        stream.on('trailers', read);
        stream.on('error', () => undefined);
        stream.on('close', () => resolve());
        stream.resume();
        stream.end(frame);
      });
    for (let i = 0; i < calls; i += 8) await Promise.all(Array.from({ length: 8 }, one));
    assert.equal(statuses.length, calls);
    assert.ok(statuses.every((s) => s === '16'), 'each one refused UNAUTHENTICATED');
    statuses = [];

    const fromIt = (): string[] => warnings.filter((w) => w.includes(`from ${local} `));
    assert.equal(fromIt().length, 1, fromIt().join('\n'));
    assert.match(fromIt()[0]!, /refused worker registration from \S+ \(127\.0\.0\.1:7420\): no client certificate signed by the node's CA/);
    session.close();
    await waitFor('the count once the connection closed', () => fromIt().length === 2);
    assert.match(
      fromIt()[1]!,
      new RegExp(`refused ${calls - 1} more worker registration\\(s\\) from \\S+ on the same connection \\(the last: 127\\.0\\.0\\.1:7420: no client certificate signed by the node's CA`),
    );

    // A worker refused for its credentials (another CA): its refusal is logged with the reason, as before.
    const stranger = { cert: certs.stranger.cert, key: certs.stranger.key, ca: certs.node.ca };
    const before = warnings.length;
    worker = startWorkerProcess({ runtime: address, slots: 1, listen: '127.0.0.1:0', tls: stranger });
    assert.equal(await worker.exit, 4);
    await waitFor('the refusal in the log', () => warnings.slice(before).some((w) => /refused worker registration from .*no client certificate signed by the node's CA/.test(w)));
  });
});
