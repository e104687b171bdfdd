/**
 * Interoperability of the Runtime handshake with an independent gRPC implementation: Python grpcio (Debian's
 * python3-grpcio), through its generic API with hand-encoded protobuf (test/runtime/fixtures/runtime_peer.py).
 *   - as a client of the host's Runtime endpoint (a runtime launch): a good version is answered with zero bytes,
 *     a bad one with InitializeResponse{error=1} and the launch fails;
 *   - as the engine our real `hostlink vm` calls: a success (empty answer) lets the VM serve, and a refusal in
 *     either shape (error=1, or a status error as the production system sends) makes it exit 3.
 * Skipped with the reason when no python3 on this machine imports grpc.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { FrameReader } from '../../src/protocol/frame.js';
import { PROTOCOL_VERSION_MAX, RUNTIME_ENGINE_ADDR_ENV } from '../../src/protocol/generated.js';
import { checkHelloProof, newVmSecret } from '../../src/protocol/hello-proof.js';
import { hostProof } from '../../src/runtime/host-proof.js';
import { launchRuntimeVm } from '../../src/runtime/launcher.js';
import { formatAddress } from '../../src/transport/address.js';
import { exitAfterOutput, ROOT } from '../helpers.js';

const PEER = join(ROOT, 'test', 'runtime', 'fixtures', 'runtime_peer.py');
const FAKE = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'fake-runtime-vm.js');

/** The first python3 that imports grpc (Debian's package lands in /usr/bin/python3's path, not a pyenv's). */
const PYTHON = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import grpc'], { stdio: 'ignore', timeout: 30_000 }).status === 0);
const skip = PYTHON === undefined ? "no python3 here imports grpc: install Debian's python3-grpcio (CI does)" : false;

/** Runs the Python peer to completion; asynchronously, since the server it calls lives in this event loop. */
async function python(args: string[]): Promise<string> {
  const child = spawn(PYTHON!, [PEER, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  assert.equal(code, 0, err);
  return out.trim();
}

describe('interop with Python grpcio', { skip }, () => {
  test("Python as client of the host's Runtime: a good version gets zero bytes, a bad one error=1 and the launch fails", { timeout: 120_000 }, async () => {
    // A VM that never calls Initialize itself: the Python client is the only caller.
    const waiting = await launchRuntimeVm({ transport: 'tcp', sandbox: 'off', command: [process.execPath, FAKE, 'silent'], handshakeTimeoutMs: 60_000 });
    try {
      // Nothing serves 127.0.0.1:1: the host's connection proves nothing and it keeps waiting.
      assert.equal(await python(['call', formatAddress(waiting.address), String(PROTOCOL_VERSION_MAX), '127.0.0.1:1']), 'ok bytes=');
      assert.equal(waiting.hasExited, false);
    } finally {
      await waiting.stop(500);
    }
    const refused = await launchRuntimeVm({ transport: 'tcp', sandbox: 'off', command: [process.execPath, FAKE, 'silent'], handshakeTimeoutMs: 60_000 });
    try {
      assert.equal(await python(['call', formatAddress(refused.address), '99', '127.0.0.1:1']), 'ok bytes=0801');
      await assert.rejects(refused.connection, /protocol version mismatch: .* the VM speaks 99; upgrade this host/);
      await refused.exited;
    } finally {
      await refused.stop(500);
    }
  });

  test('Python as the engine, answering success: our VM serves, and says hello to the peer that proves its secret', { timeout: 120_000 }, async () => {
    const engine = await pythonEngine(PROTOCOL_VERSION_MAX, 'ours');
    const secret = newVmSecret();
    const vm = startVm(engine.address, secret);
    try {
      const req = JSON.parse(await engine.nextLine()) as { version: number; addr: string };
      assert.equal(req.version, PROTOCOL_VERSION_MAX);
      const i = req.addr.lastIndexOf(':');
      const socket = connect({ host: req.addr.slice(0, i), port: Number(req.addr.slice(i + 1)) });
      socket.on('error', () => undefined);
      socket.write(hostProof(secret, req.addr));
      const reader = new FrameReader(1 << 20);
      const hello = await new Promise<Buffer>((resolve) => socket.on('data', (d: Buffer) => reader.push(d).forEach(resolve)));
      assert.ok(checkHelloProof(secret, hello));
      socket.destroy();
      assert.equal(await vm.exit, 4, vm.stderr());
    } finally {
      vm.child.kill('SIGKILL');
      engine.child.kill('SIGKILL');
    }
  });

  for (const shape of ['ours', 'production'] as const) {
    test(`Python as the engine, refusing in the ${shape} shape: our VM exits 3, failed to initialize vm runtime`, { timeout: 120_000 }, async () => {
      const engine = await pythonEngine(PROTOCOL_VERSION_MAX + 1, shape);
      const vm = startVm(engine.address, newVmSecret());
      try {
        assert.equal(await vm.exit, 3, vm.stderr());
        const detail = shape === 'ours' ? 'the engine answered ERROR_INCOMPATIBLE_PROTOCOL_VERSION' : `protocol version mismatch engine: ${PROTOCOL_VERSION_MAX + 1} vm: ${PROTOCOL_VERSION_MAX}`;
        assert.ok(vm.stderr().includes(`failed to initialize vm runtime: the engine at ${engine.address} refused protocol version ${PROTOCOL_VERSION_MAX} (${detail})`), vm.stderr());
      } finally {
        vm.child.kill('SIGKILL');
        engine.child.kill('SIGKILL');
      }
    });
  }
});

async function pythonEngine(expected: number, shape: 'ours' | 'production'): Promise<{ child: ChildProcess; address: string; nextLine: () => Promise<string> }> {
  const child = spawn(PYTHON!, [PEER, 'serve', String(expected), shape], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const nextLine = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new Error('the Python engine ended');
    return r.value;
  };
  const first = await nextLine();
  const m = /^port (\d+)$/.exec(first);
  assert.ok(m, first);
  return { child, address: `127.0.0.1:${m[1]}`, nextLine };
}

function startVm(engine: string, secret: Uint8Array): { child: ChildProcess; exit: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [HOSTLINK_BIN, 'vm'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOSTLINK_SANDBOX: 'off', [RUNTIME_ENGINE_ADDR_ENV]: engine },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin!.end(`${Buffer.from(secret).toString('hex')}\n`);
  const exit = exitAfterOutput(child).then((s) => s.code);
  return { child, exit, stderr: () => err };
}
