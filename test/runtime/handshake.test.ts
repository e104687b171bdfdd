/**
 * The runtime handshake with real processes and real gRPC: `hostlink vm` started with only the engine variable
 * runs the kv-store through Host (pool and one-shot, TCP and unix); the handshake deadline; version mismatches
 * on both sides and in both answer shapes; a forged Initialize pointing at an intruder loses; the VM says hello
 * only to a peer that proves its secret; the VM's environment is scrubbed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Host, type Outcome } from '../../src/host/host.js';
import { Job } from '../../src/host/job.js';
import { serveSession, Session, type WorkSource } from '../../src/host/session.js';
import { HOSTLINK_BIN, VM_ENVIRONMENT, VM_NODE_FLAGS } from '../../src/host/supervisor.js';
import { encodeFrame, FrameReader } from '../../src/protocol/frame.js';
import { PROTOCOL_VERSION_MAX, RUNTIME_ENGINE_ADDR_ENV } from '../../src/protocol/generated.js';
import { checkHelloProof, helloProof, newVmSecret } from '../../src/protocol/hello-proof.js';
import { encodeRequest } from '../../src/protocol/messages.js';
import { initialize, INITIALIZE_METHOD_PATH, serveRuntime } from '../../src/runtime/grpc.js';
import { hostProof } from '../../src/runtime/host-proof.js';
import { HANDSHAKE_NOT_FOUND, launchRuntimeVm, runtimeLauncher } from '../../src/runtime/launcher.js';
import { formatAddress } from '../../src/transport/address.js';
import { contract, exitAfterOutput, id32, MemoryBackend, message, tempDir, text, utf8 } from '../helpers.js';
import { serveProductionShape } from './production-shape.js';

const HERE = import.meta.dirname ?? new URL('.', import.meta.url).pathname;
const FAKE = join(HERE, 'fake-runtime-vm.js');
const fake = (...args: string[]): string[] => [process.execPath, FAKE, ...args];
const json = (o: unknown): Uint8Array => utf8(JSON.stringify(o));
/** The handshake deadline of tests that are not about it: a loaded machine can take seconds to start a VM. */
const SLOW_OK = 60_000;
const value = (o: Outcome): string => {
  assert.equal(o.result.code, 'return', JSON.stringify(o.result));
  return text((o.result as { value: Uint8Array }).value);
};

describe('a VM started with only the engine variable runs the kv-store', () => {
  for (const transport of ['tcp', 'unix'] as const) {
    for (const mode of ['pool', 'oneshot'] as const) {
      test(`${mode} over ${transport}`, { timeout: 120_000 }, async () => {
        const data = tempDir();
        // Generous deadlines: this test is about the path, not the clock (the suite shares a loaded machine).
        const host = await Host.open({ dataDir: data.path, transport, mode, poolSize: 1, launcher: 'runtime', handshakeTimeoutMs: SLOW_OK, deadlineMs: SLOW_OK });
        try {
          const codeHash = await host.deploy(contract('kv-store'));
          const ctx = id32(`runtime-${transport}-${mode}`);
          const set = await host.call({ codeHash, method: 'set', input: json({ key: 'k', value: 'v' }), contextId: ctx });
          assert.equal(value(set), 'null');
          const get = await host.call({ codeHash, method: 'get', input: json({ key: 'k' }), contextId: ctx });
          assert.equal(value(get), '"v"');
          assert.deepEqual(host.state(ctx).root, set.stateRoot);
        } finally {
          await host.close();
          data.remove();
        }
      });
    }
  }
});

describe('host side', () => {
  test('no Initialize within the handshake deadline: the VM is stopped and the launch fails with exactly the message', { timeout: 120_000 }, async () => {
    const launcher = runtimeLauncher({ transport: 'tcp', sandbox: 'off', command: fake('silent'), handshakeTimeoutMs: 300 });
    assert.equal(launcher.kind, 'runtime');
    const vm = await launcher.launch('oneshot');
    await assert.rejects(vm.connection, (e: Error & { code?: string }) => e.message === HANDSHAKE_NOT_FOUND && e.code === 'timeout');
    assert.equal(HANDSHAKE_NOT_FOUND, 'handshake failed: vm process not found');
    const exit = await vm.exited;
    assert.equal(exit.signal, 'SIGTERM', 'the launcher stopped the silent VM');
    assert.match(vm.crash().stderr, /handshake failed: vm process not found$/);
    assert.match(vm.stderrTail(), /handshake failed: vm process not found$/);
  });

  test('through Host, a VM that never calls Initialize fails the call with the message (default 5 s deadline)', { timeout: 120_000 }, async () => {
    const data = tempDir();
    const host = await Host.open({ dataDir: data.path, transport: 'tcp', mode: 'oneshot', sandbox: 'off', launcher: 'runtime', vmCommand: fake('silent'), deadlineMs: 30_000 });
    try {
      const codeHash = await host.deploy(contract('kv-store'));
      const out = await host.call({ codeHash, method: 'get', input: json({ key: 'k' }), contextId: id32('silent') });
      assert.notEqual(out.result.code, 'return');
      assert.equal(out.applied, false);
      assert.match(out.result.code === 'return' ? '' : out.result.message, /handshake failed: vm process not found/);
    } finally {
      await host.close();
      data.remove();
    }
  });

  test('an incompatible protocol version is answered ERROR_INCOMPATIBLE_PROTOCOL_VERSION and fails the launch naming both versions', { timeout: 120_000 }, async () => {
    const vm = await launchRuntimeVm({ transport: 'tcp', sandbox: 'off', command: fake('version', '99'), handshakeTimeoutMs: SLOW_OK });
    await assert.rejects(vm.connection, (e: Error & { code?: string }) => {
      assert.equal(e.code, 'incompatible_version');
      assert.match(e.message, new RegExp(`^handshake failed: protocol version mismatch: this host \\(hostlink [^)]+\\) speaks protocol version ${PROTOCOL_VERSION_MAX}, the VM speaks 99; upgrade this host`));
      return true;
    });
    const exit = await vm.exited;
    assert.equal(exit.exitCode, 3, `the VM read the refusal and exited by itself: ${vm.stderrTail()}`);
    assert.match(vm.stderrTail(), /"ok":false,"reason":"incompatible_version"/);
  });

  test('a forged Initialize pointing at an intruder loses: the host keeps waiting and admits the real VM', { timeout: 120_000 }, async () => {
    const intruder = await intruderServer();
    // The real VM starts two seconds late, so the forger's Initialize is certainly first.
    const real = ['/bin/sh', '-c', `sleep 2; exec "${process.execPath}" ${VM_NODE_FLAGS.join(' ')} "${HOSTLINK_BIN}" vm`];
    const vm = await launchRuntimeVm({ transport: 'tcp', command: real, handshakeTimeoutMs: SLOW_OK });
    try {
      const forged = await initialize(formatAddress(vm.address), { protocol_version: PROTOCOL_VERSION_MAX, server_addr: intruder.address }, { deadlineMs: 5000 });
      assert.deepEqual(forged, { ok: true }, 'the forger is answered like anyone: Initialize carries no credential');
      // Addresses a local launch never dials: not loopback, or a unix socket outside the VM's directory.
      for (const server_addr of ['0.0.0.0:1', 'unix:///tmp/elsewhere.sock']) {
        await assert.rejects(initialize(formatAddress(vm.address), { protocol_version: PROTOCOL_VERSION_MAX, server_addr }, { deadlineMs: 5000 }), /refused Initialize: server_addr/);
      }
      const socket = await vm.connection;
      assert.ok(vm.refusedConnections >= 1, 'the intruder connection was refused');
      assert.equal(intruder.connections.length, 1);
      assert.equal(intruder.connections[0]!.received, 32, 'the intruder saw only the host proof (for its own address)');
      // The admitted connection is the real VM: it runs a kv-store call over protocol v1.
      const backend = new MemoryBackend();
      const codeHash = backend.deploy(contract('kv-store'));
      const job = new Job(message({ codeHash, method: 'set', input: json({ key: 'a', value: 'b' }) }));
      let given = false;
      const once: WorkSource = { nextJob: () => Promise.resolve(given ? null : ((given = true), job)) };
      void serveSession(new Session(backend, { pool: once }), socket);
      const end = await job.done;
      assert.equal(end.kind, 'result', end.kind === 'crash' ? end.crash.stderr : end.kind);
      assert.equal(end.kind === 'result' ? end.result.code : '', 'return');
    } finally {
      await vm.stop(500);
      intruder.server.close();
    }
  });

  test("the VM's environment is PATH, the malloc tunable, the engine address and the sandbox's variables, nothing of the host's", { timeout: 120_000 }, async () => {
    process.env.HOSTLINK_TEST_CANARY = 'secret';
    try {
      const vm = await launchRuntimeVm({ transport: 'tcp', command: fake('env'), handshakeTimeoutMs: SLOW_OK });
      await vm.exited;
      const names = JSON.parse(vm.stderrTail().split('\n')[0]!) as string[];
      const allowed = ['PATH', ...Object.keys(VM_ENVIRONMENT), RUNTIME_ENGINE_ADDR_ENV, 'HOSTLINK_SANDBOX', 'HOSTLINK_HOST_PID', 'HOSTLINK_LIFELINE_FD', 'HOSTLINK_DEATH_SIGNAL', 'HOSTLINK_CGROUP_READY_FD'];
      assert.ok(names.includes('PATH') && names.includes(RUNTIME_ENGINE_ADDR_ENV), names.join(','));
      for (const n of names) assert.ok(allowed.includes(n), `the VM saw ${n}`);
    } finally {
      delete process.env.HOSTLINK_TEST_CANARY;
    }
  });
});

describe('VM side (hostlink vm with the engine variable)', () => {
  test('without --host and without the variable: required env var missing', { timeout: 120_000 }, async () => {
    const vm = startVm(undefined);
    assert.equal(await vm.exit, 2);
    assert.match(vm.stderr(), new RegExp(`required env var missing: ${RUNTIME_ENGINE_ADDR_ENV}`));
  });

  test('refused in our shape (error = 1): exit 3, failed to initialize vm runtime', { timeout: 120_000 }, async () => {
    const engine = await serveRuntime({ listen: [{ tcp: { host: '127.0.0.1', port: 0 } }], onInitialize: async () => ({ error: 'ERROR_INCOMPATIBLE_PROTOCOL_VERSION' }) });
    try {
      const vm = startVm(engine.addresses[0]!);
      assert.equal(await vm.exit, 3, vm.stderr());
      assert.match(vm.stderr(), new RegExp(`failed to initialize vm runtime: the engine at \\S+ refused protocol version ${PROTOCOL_VERSION_MAX} \\(the engine answered ERROR_INCOMPATIBLE_PROTOCOL_VERSION\\); upgrade`));
    } finally {
      await engine.close();
    }
  });

  test('refused in the production shape (Empty + status error): exit 3 with the engine\'s text', { timeout: 120_000 }, async () => {
    const prod = await serveProductionShape(INITIALIZE_METHOD_PATH, 45);
    try {
      const vm = startVm(prod.address);
      assert.equal(await vm.exit, 3, vm.stderr());
      assert.match(vm.stderr(), /failed to initialize vm runtime: .*refused protocol version \d+ \(RPCChainVM protocol version mismatch: the engine implements 45, the VM implements \d+\)/);
      assert.equal(prod.requests[0]!.protocolVersion, PROTOCOL_VERSION_MAX);
      assert.match(prod.requests[0]!.addr, /^127\.0\.0\.1:\d+$/, 'field 2 is the address, read as `addr` by the production shape');
    } finally {
      prod.close();
    }
  });

  test('no engine at the address: exit 4, failed to initialize vm runtime', { timeout: 120_000 }, async () => {
    const gone = await serveRuntime({ listen: [{ tcp: { host: '127.0.0.1', port: 0 } }], onInitialize: async () => ({}) });
    const addr = gone.addresses[0]!;
    await gone.close();
    const vm = startVm(addr);
    assert.equal(await vm.exit, 4, vm.stderr());
    assert.match(vm.stderr(), /failed to initialize vm runtime: /);
  });

  test('the VM says hello only to a peer that proves its secret: an intruder on its listener gets nothing', { timeout: 120_000 }, async () => {
    let announced!: (addr: string) => void;
    const addr = new Promise<string>((r) => (announced = r));
    const engine = await serveRuntime({ listen: [{ tcp: { host: '127.0.0.1', port: 0 } }], onInitialize: async (req) => (announced(req.server_addr), {}) });
    const secret = newVmSecret();
    const vm = startVm(engine.addresses[0]!, secret);
    try {
      const vmAddr = await addr;
      const [host, port] = [vmAddr.slice(0, vmAddr.lastIndexOf(':')), Number(vmAddr.slice(vmAddr.lastIndexOf(':') + 1))];
      // An intruder that sends a wrong proof, one that replays a proof for another address, and one that sends nothing.
      const wrong = await peer(host, port, Buffer.alloc(32, 7));
      const replayed = await peer(host, port, hostProof(secret, '127.0.0.1:1'));
      const quiet = await peer(host, port, Buffer.alloc(0));
      for (const p of [wrong, replayed]) assert.deepEqual(await p.closed, 0, 'closed without a byte');
      const real = await peer(host, port, hostProof(secret, vmAddr));
      const hello = await real.firstFrame;
      assert.ok(checkHelloProof(secret, hello), 'the first frame is a hello proving the VM secret');
      assert.deepEqual(quiet.received(), 0);
      real.socket.destroy();
      quiet.socket.destroy();
      assert.equal(await vm.exit, 4, vm.stderr()); // host gone
    } finally {
      vm.child.kill('SIGKILL');
      await engine.close();
    }
  });
});

/** A loopback server that plays a VM: answers each connection with a hello whose proof is made with a wrong secret. */
async function intruderServer(): Promise<{ server: Server; address: string; connections: { received: number }[] }> {
  const connections: { received: number }[] = [];
  const server = createServer((socket) => {
    const c = { received: 0 };
    connections.push(c);
    socket.on('error', () => undefined);
    socket.on('data', (d) => (c.received += d.length));
    const fields = { minVersion: 1, maxVersion: PROTOCOL_VERSION_MAX, vmVersion: 'intruder', pid: 1, proof: new Uint8Array(32) };
    fields.proof = helloProof(newVmSecret(), encodeRequest('hello', fields));
    socket.write(encodeFrame(encodeRequest('hello', fields)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('no port');
  return { server, address: `127.0.0.1:${a.port}`, connections };
}

function startVm(engine: string | undefined, secret = newVmSecret()): { child: ChildProcess; exit: Promise<number | null>; stderr: () => string } {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOSTLINK_SANDBOX: 'off' };
  if (engine !== undefined) env[RUNTIME_ENGINE_ADDR_ENV] = engine;
  const child = spawn(process.execPath, [HOSTLINK_BIN, 'vm'], { env, stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin!.end(`${Buffer.from(secret).toString('hex')}\n`);
  const exit = exitAfterOutput(child).then((s) => s.code);
  return { child, exit, stderr: () => err };
}

async function peer(host: string, port: number, opening: Uint8Array): Promise<{ socket: Socket; closed: Promise<number>; firstFrame: Promise<Buffer>; received: () => number }> {
  const socket = connect({ host, port });
  await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
  socket.on('error', () => undefined);
  let received = 0;
  const reader = new FrameReader(1 << 20);
  let gotFrame!: (b: Buffer) => void;
  const firstFrame = new Promise<Buffer>((r) => (gotFrame = r));
  socket.on('data', (d: Buffer) => {
    received += d.length;
    const frames = reader.push(d);
    if (frames.length > 0) gotFrame(frames[0]!);
  });
  const closed = new Promise<number>((r) => socket.once('close', () => r(received)));
  if (opening.length > 0) socket.write(opening);
  return { socket, closed, firstFrame, received: () => received };
}
