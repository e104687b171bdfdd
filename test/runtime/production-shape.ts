/**
 * A Runtime endpoint in the production system's shape, for tests: Initialize answers an empty message
 * (google.protobuf.Empty) on success and a gRPC status error carrying the error text on a version mismatch, and
 * reads field 2 as `addr`. Written against grpc-js's raw byte API with hand-encoded protobuf, so it shares no
 * code with src/runtime/grpc.ts.
 */
import * as grpc from '@grpc/grpc-js';

/** Reads the two fields of InitializeRequest from protobuf bytes (varint 1, length-delimited 2). */
export function decodeInitializeRequest(bytes: Buffer): { protocolVersion: number; addr: string } {
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
  };
  const out = { protocolVersion: 0, addr: '' };
  while (at < bytes.length) {
    const key = varint();
    if (key === 0x08) out.protocolVersion = varint();
    else if (key === 0x12) {
      const n = varint();
      out.addr = bytes.subarray(at, at + n).toString('utf8');
      at += n;
    } else throw new Error(`unexpected protobuf key ${key}`);
  }
  return out;
}

/** InitializeRequest as protobuf bytes. */
export function encodeInitializeRequest(protocolVersion: number, addr: string): Buffer {
  const varint = (n: number): number[] => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    out.push(n);
    return out;
  };
  const a = Buffer.from(addr, 'utf8');
  return Buffer.from([...(protocolVersion ? [0x08, ...varint(protocolVersion)] : []), ...(a.length ? [0x12, ...varint(a.length)] : []), ...a]);
}

const bytes = (b: Buffer): Buffer => b;

export interface ProductionRuntime {
  address: string;
  requests: { protocolVersion: number; addr: string }[];
  close(): void;
}

/** Serves /<pkg>.Runtime/Initialize; `expected` is the one version it accepts (exact match, as in production). */
export async function serveProductionShape(path: string, expected: number): Promise<ProductionRuntime> {
  const requests: { protocolVersion: number; addr: string }[] = [];
  const server = new grpc.Server();
  const service: grpc.ServiceDefinition = {
    Initialize: { path, requestStream: false, responseStream: false, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes },
  };
  const handler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    const req = decodeInitializeRequest(call.request);
    requests.push(req);
    if (req.protocolVersion !== expected) {
      callback({ code: grpc.status.UNKNOWN, details: `RPCChainVM protocol version mismatch: the engine implements ${expected}, the VM implements ${req.protocolVersion}` });
    } else callback(null, Buffer.alloc(0));
  };
  server.addService(service, { Initialize: handler });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, requests, close: () => server.forceShutdown() };
}
