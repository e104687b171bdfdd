/**
 * What a stranger who reaches the node's endpoint for workers can make it hold before any credential is checked
 * (credentials are read only once a whole Initialize message arrived): one TLS connection without a client
 * certificate, raw HTTP/2. The node announces a small stream limit, and a stream that declares a message far
 * larger than any Initialize is answered RESOURCE_EXHAUSTED as soon as its length prefix arrives, instead of being
 * buffered (4 MiB per stream by default: 300 such streams took the node from 72 to about 1,400 MiB). A real
 * `hostlink worker` process still registers and serves a call through the same endpoint.
 */
import assert from 'node:assert/strict';
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { makeCerts, opensslMissing } from '../../bench/certs.js';
import { Host } from '../../src/host/host.js';
import { INITIALIZE_METHOD_PATH, MAX_INITIALIZE_REQUEST_BYTES, MAX_RUNTIME_STREAMS } from '../../src/runtime/grpc.js';
import { contract, id32, tempDir, utf8 } from '../helpers.js';
import { startWorkerProcess, waitFor, type WorkerProcess } from './helpers.js';

const skip = opensslMissing();

/** A gRPC call's status: from a trailers-only answer or from the trailers; undefined when the stream closed without one. */
function grpcStatus(session: ClientHttp2Session, frame: Buffer, end: boolean): Promise<string | undefined> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': INITIALIZE_METHOD_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    // Resolved when the status arrives: a stream whose sender never ends its side stays open after it.
    const read = (h: IncomingHttpHeaders): void => {
      if (h['grpc-status'] !== undefined) {
        resolve(String(h['grpc-status']));
        stream.close();
      }
    };
    stream.on('response', read);
    stream.on('trailers', read);
    stream.on('error', () => undefined);
    stream.on('close', () => resolve(undefined));
    stream.resume();
    if (end) stream.end(frame);
    else stream.write(frame);
  });
}

describe("the node's worker endpoint bounds what a stranger's streams can hold", { skip }, () => {
  const dir = tempDir('hostlink-endpoint-bounds-');
  let host: Host | undefined;
  let worker: WorkerProcess | undefined;
  let session: ClientHttp2Session | undefined;
  after(async () => {
    session?.destroy();
    await worker?.kill('SIGKILL');
    await host?.close();
    dir.remove();
  });

  test('few streams per connection, and a message larger than any Initialize is refused at its length prefix; workers still register', { timeout: 120_000 }, async () => {
    const certs = makeCerts(dir.path);
    host = await Host.open({ dataDir: join(dir.path, 'data'), poolSize: 1, deadlineMs: 30_000, workers: { listen: '127.0.0.1:0', tls: certs.node } });
    const address = host.remote!.address!;
    const kv = await host.deploy(contract('kv-store'));

    // No client certificate, no token: what anyone who reaches the port can do.
    const s = h2connect(`https://${address}`, { rejectUnauthorized: false });
    session = s;
    s.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      s.once('remoteSettings', () => resolve());
      s.once('close', () => reject(new Error('the node closed the connection before its settings')));
    });
    assert.equal(s.remoteSettings.maxConcurrentStreams, MAX_RUNTIME_STREAMS, 'the node announces its stream limit');

    // A length prefix of 4 MiB - 1 and the first 64 KiB of that message, never finished: the node answers at once
    // (before, it buffered the message and said nothing until the connection was closed for not registering).
    const declared = 4 * 1024 * 1024 - 1;
    const frame = Buffer.alloc(5 + 64 * 1024, 0x41);
    frame[0] = 0;
    frame.writeUInt32BE(declared, 1);
    assert.ok(declared > MAX_INITIALIZE_REQUEST_BYTES);
    const statuses = await Promise.all(Array.from({ length: 4 }, () => grpcStatus(s, frame, false)));
    assert.deepEqual(statuses, ['8', '8', '8', '8'], 'RESOURCE_EXHAUSTED for each oversized message');
    assert.equal(s.closed || s.destroyed, false, 'answered per stream, the connection stays');

    // A real worker registers through the bounded endpoint and serves a call.
    worker = startWorkerProcess({ runtime: address, slots: 1, listen: '127.0.0.1:0', tls: certs.worker });
    await waitFor('the worker to register', () => host!.remote!.launcher.workers().length === 1, 60_000);
    const o = await host.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key: 'k', value: 'v' })), contextId: id32('endpoint-bounds') });
    assert.equal(o.result.code, 'return', JSON.stringify(o.result));
  });
});
