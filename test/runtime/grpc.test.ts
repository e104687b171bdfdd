/**
 * The Runtime gRPC module (src/runtime/grpc.ts) over real gRPC: our server and client together, our client against
 * the production shape (Empty + status error), and the wire bytes of our answers.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  INITIALIZE_METHOD_PATH,
  MAX_INITIALIZE_REQUEST_BYTES,
  MAX_RUNTIME_STREAMS,
  MAX_SERVER_ADDR_BYTES,
  RUNTIME_PROTO_PATH,
  initialize,
  serveRuntime,
  type InitializeRequest,
} from '../../src/runtime/grpc.js';
import { tempDir } from '../helpers.js';
import { encodeInitializeRequest, serveProductionShape } from './production-shape.js';

test('the shipped .proto is found from the compiled module', () => {
  assert.ok(existsSync(RUNTIME_PROTO_PATH), RUNTIME_PROTO_PATH);
});

test('serveRuntime on TCP and a unix socket: initialize sees both answers of our shape, with the request and metadata', async () => {
  const dir = tempDir('hostlink-rt-');
  const seen: { req: InitializeRequest; token: unknown }[] = [];
  const server = await serveRuntime({
    listen: [{ tcp: { host: '127.0.0.1', port: 0 } }, { unix: join(dir.path, 'engine.sock') }],
    onInitialize: async (req, md) => {
      seen.push({ req, token: md.get('x-token')[0] });
      return req.protocol_version === 7 ? {} : { error: 'ERROR_INCOMPATIBLE_PROTOCOL_VERSION' };
    },
  });
  try {
    assert.match(server.addresses[0]!, /^127\.0\.0\.1:\d+$/);
    assert.equal(server.addresses[1], `unix://${join(dir.path, 'engine.sock')}`);
    const md = new grpc.Metadata();
    md.set('x-token', 'abc');
    assert.deepEqual(await initialize(server.addresses[0]!, { protocol_version: 7, server_addr: '127.0.0.1:9' }, { deadlineMs: 5000, metadata: md }), { ok: true });
    const bad = await initialize(server.addresses[1]!, { protocol_version: 8, server_addr: 'unix:///x.sock' }, { deadlineMs: 5000 });
    assert.equal(bad.ok, false);
    assert.deepEqual(seen, [
      { req: { protocol_version: 7, server_addr: '127.0.0.1:9' }, token: 'abc' },
      { req: { protocol_version: 8, server_addr: 'unix:///x.sock' }, token: undefined },
    ]);
  } finally {
    await server.close();
    dir.remove();
  }
});

test('our answers on the wire: success is zero bytes (as google.protobuf.Empty), a mismatch is field 1 = 1', async () => {
  const server = await serveRuntime({
    listen: [{ tcp: { host: '127.0.0.1', port: 0 } }],
    onInitialize: async (req) => (req.protocol_version === 1 ? {} : { error: 'ERROR_INCOMPATIBLE_PROTOCOL_VERSION' }),
  });
  const raw = new grpc.Client(server.addresses[0]!, grpc.credentials.createInsecure());
  const call = (req: Buffer): Promise<Buffer> =>
    new Promise((resolve, reject) =>
      raw.makeUnaryRequest(INITIALIZE_METHOD_PATH, (b: Buffer) => b, (b: Buffer) => b, req, { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res!))),
    );
  try {
    assert.deepEqual(await call(encodeInitializeRequest(1, '127.0.0.1:1')), Buffer.alloc(0));
    assert.deepEqual(await call(encodeInitializeRequest(2, '127.0.0.1:1')), Buffer.from([0x08, 0x01]));
  } finally {
    raw.close();
    await server.close();
  }
});

test('initialize against the production shape: Empty is a success, a status error is a version mismatch with its text', async () => {
  const prod = await serveProductionShape(INITIALIZE_METHOD_PATH, 45);
  try {
    assert.deepEqual(await initialize(prod.address, { protocol_version: 45, server_addr: '127.0.0.1:50001' }, { deadlineMs: 5000 }), { ok: true });
    const bad = await initialize(prod.address, { protocol_version: 44, server_addr: '127.0.0.1:50001' }, { deadlineMs: 5000 });
    assert.deepEqual(bad, { ok: false, reason: 'incompatible_version', detail: 'RPCChainVM protocol version mismatch: the engine implements 45, the VM implements 44' });
    assert.deepEqual(prod.requests, [
      { protocolVersion: 45, addr: '127.0.0.1:50001' },
      { protocolVersion: 44, addr: '127.0.0.1:50001' },
    ]);
  } finally {
    prod.close();
  }
});

test('initialize: an endpoint that is not there is channel_closed, one that serves another service is protocol', async () => {
  const server = await serveRuntime({ listen: [{ tcp: { host: '127.0.0.1', port: 0 } }], onInitialize: async () => ({}) });
  const addr = server.addresses[0]!;
  await server.close();
  await assert.rejects(initialize(addr, { protocol_version: 1, server_addr: 'x:1' }, { deadlineMs: 3000 }), (e: Error & { code?: string }) => e.code === 'channel_closed' || e.code === 'timeout');
  const other = await serveProductionShape('/other.Service/Initialize', 1);
  try {
    await assert.rejects(initialize(other.address, { protocol_version: 1, server_addr: 'x:1' }, { deadlineMs: 3000 }), { code: 'protocol' });
  } finally {
    other.close();
  }
});

test('serveRuntime bounds what a caller can make it hold: few streams per connection, no message larger than an Initialize', async () => {
  // Any local process reaches the runtime launcher's loopback port: grpc-js's defaults buffered 4 MiB per stream,
  // with no stream limit, before the handler ran.
  const server = await serveRuntime({ listen: [{ tcp: { host: '127.0.0.1', port: 0 } }], onInitialize: async () => ({}) });
  const raw = new grpc.Client(server.addresses[0]!, grpc.credentials.createInsecure());
  const call = (req: Buffer): Promise<Buffer> =>
    new Promise((resolve, reject) =>
      raw.makeUnaryRequest(INITIALIZE_METHOD_PATH, (b: Buffer) => b, (b: Buffer) => b, req, { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res!))),
    );
  const session = http2.connect(`http://${server.addresses[0]!}`);
  session.on('error', () => undefined);
  const settings = new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
  try {
    // The longest address a worker may announce fits; one message byte more than the bound does not.
    assert.deepEqual(await call(encodeInitializeRequest(1, `${'h'.repeat(MAX_SERVER_ADDR_BYTES - 6)}:65535`)), Buffer.alloc(0));
    const padded = encodeInitializeRequest(1, 'x'.repeat(MAX_INITIALIZE_REQUEST_BYTES));
    assert.ok(padded.length > MAX_INITIALIZE_REQUEST_BYTES);
    await assert.rejects(call(padded), (e: grpc.ServiceError) => e.code === grpc.status.RESOURCE_EXHAUSTED);
    await settings;
    assert.equal(session.remoteSettings.maxConcurrentStreams, MAX_RUNTIME_STREAMS);
  } finally {
    session.destroy();
    raw.close();
    await server.close();
  }
});
