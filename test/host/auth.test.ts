/**
 * Only the launched VM gets in: an intruder process without the VM's secret connects to the VM's listener
 * first (over TCP, where file permissions do not help, and over unix) and tries to forge a result and to
 * receive jobs. It must get nothing, and the real call must succeed with the right result. Plus the gate's
 * own rules, against a real listener: wrong proofs, garbage and silence are closed, the cap holds, and the
 * real VM still gets in afterwards.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { HostlinkError } from '../../src/errors.js';
import { Host, type Outcome } from '../../src/host/host.js';
import { admitVm, proveConnection } from '../../src/host/vm-gate.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { helloProof, newVmSecret } from '../../src/protocol/hello-proof.js';
import { encodeRequest } from '../../src/protocol/messages.js';
import { contract, id32, tempDir, text, utf8 } from '../helpers.js';

const HERE = import.meta.dirname ?? new URL('.', import.meta.url).pathname;
const INTRUDER_FIRST_VM = join(HERE, 'intruder-first-vm.js');
const json = (o: object): Uint8Array => utf8(JSON.stringify(o));
const value = (o: Outcome): string => {
  assert.equal(o.result.code, 'return', JSON.stringify(o.result));
  return text((o.result as { value: Uint8Array }).value);
};

interface IntruderReport {
  [connection: string]: { received: number; closed: boolean };
}

async function reports(dir: string, count: number): Promise<IntruderReport[]> {
  for (;;) {
    const files = readdirSync(dir).filter((f) => f.startsWith('intruder-'));
    if (files.length >= count) return files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as IntruderReport);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('only the launched VM gets in', () => {
  for (const transport of ['tcp', 'unix'] as const) {
    for (const mode of ['oneshot', 'pool'] as const) {
      test(`${mode} over ${transport}: an intruder that connects first gets nothing and forges nothing`, { timeout: 60_000 }, async () => {
        const data = tempDir();
        const reportDir = tempDir();
        // The intruder is started by the VM command, so the VM's OS sandbox would confine it too (the VM's uid,
        // namespaces, no writable report directory). This test is about the gate: the intruder runs as an
        // ordinary local process beside the VM, which is the attacker the gate must stop.
        const host = await Host.open({
          dataDir: data.path, transport, mode, poolSize: 1, recycleAfter: 1, sandbox: 'off',
          vmCommand: [process.execPath, INTRUDER_FIRST_VM, reportDir.path],
        });
        try {
          const codeHash = await host.deploy(contract('kv-store'));
          const ctx = id32(`auth-${transport}-${mode}`);
          // Two calls, so in pool mode the intruder also had a chance at a later job (recycleAfter 1: a new VM, a new intruder).
          const set = await host.call({ codeHash, method: 'set', input: json({ key: 'k', value: 'real' }), contextId: ctx });
          assert.equal(value(set), 'null');
          const get = await host.call({ codeHash, method: 'get', input: json({ key: 'k' }), contextId: ctx });
          assert.equal(value(get), '"real"');
          assert.deepEqual(host.state(ctx).root, set.stateRoot, 'only the real call changed the state');
          for (const report of await reports(reportDir.path, 2)) {
            for (const [name, c] of Object.entries(report)) {
              assert.equal(c.received, 0, `the ${name} intruder connection received ${c.received} bytes`);
              assert.equal(c.closed, true);
            }
          }
        } finally {
          await host.close();
          data.remove();
          reportDir.remove();
        }
      });
    }
  }
});

describe('the gate in front of a VM listener', () => {
  const listen = (): Promise<{ port: number; close: () => void; server: ReturnType<typeof createServer> }> =>
    new Promise((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const a = server.address() as { port: number };
        resolve({ port: a.port, close: () => server.close(), server });
      });
    });
  const dial = (port: number): Promise<Socket> =>
    new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', () => undefined);
    });
  const closed = (s: Socket): Promise<number> =>
    new Promise((resolve) => {
      let received = 0;
      s.on('data', (c: Buffer) => (received += c.length));
      if (s.destroyed) resolve(received);
      s.on('close', () => resolve(received));
    });
  const hello = (secret: Uint8Array | null): Buffer => {
    const fields = { minVersion: 1, maxVersion: 1, vmVersion: 't', pid: 1, proof: new Uint8Array(32) };
    if (secret) fields.proof = helloProof(secret, encodeRequest('hello', fields));
    return encodeFrame(encodeRequest('hello', fields));
  };

  test('wrong proofs, other VMs\' proofs, garbage and oversized frames are closed unanswered; the real VM then gets in', async () => {
    const { port, server } = await listen();
    const secret = newVmSecret();
    const gate = admitVm(server, secret, { helloTimeoutMs: 60_000 });
    const bad = [hello(null), hello(newVmSecret()), encodeFrame(Uint8Array.of(250, 1, 2)), Buffer.from([0, 0, 0, 0x40, 0])];
    for (const bytes of bad) {
      const s = await dial(port);
      s.write(bytes);
      assert.equal(await closed(s), 0);
    }
    // A replay of the real proof with any field changed (here the pid) does not check either.
    const replay = hello(secret);
    replay.writeUInt32LE(2, replay.length - 36);
    const r = await dial(port);
    r.write(replay);
    assert.equal(await closed(r), 0);
    const real = await dial(port);
    const frame = hello(secret);
    real.write(frame);
    const admitted = await gate.connection;
    assert.equal(gate.refused, bad.length + 1);
    // The hello is handed over unread, for the session to answer.
    const first = await new Promise<Buffer>((resolve) => {
      admitted.once('data', resolve);
      admitted.resume();
    });
    assert.deepEqual(first, frame);
    admitted.destroy();
    real.destroy();
  });

  test('silence is bounded in time', async () => {
    const { port, server } = await listen();
    const secret = newVmSecret();
    // Not shorter: the real VM's hello, sent at once, must not meet the limit on a loaded machine.
    const gate = admitVm(server, secret, { helloTimeoutMs: 1000 });
    const silent = await dial(port);
    assert.equal(await closed(silent), 0); // closed by the hello timeout
    const real = await dial(port);
    real.write(hello(secret));
    (await gate.connection).destroy();
    real.destroy();
    assert.equal(gate.refused, 1);
  });

  test('pending connections are capped by evicting the oldest, so parked intruders cannot lock the real VM out', async () => {
    const { port, server } = await listen();
    const secret = newVmSecret();
    const gate = admitVm(server, secret, { helloTimeoutMs: 60_000, maxPending: 2 });
    const parked = [await dial(port), await dial(port)];
    const ends = parked.map(closed);
    const third = await dial(port); // over the cap: the oldest goes
    assert.equal(await ends[0], 0);
    const real = await dial(port); // evicts the second, then proves the secret
    real.write(hello(secret));
    (await gate.connection).destroy();
    assert.equal(await ends[1], 0);
    assert.equal(await closed(third), 0); // dropped once the real VM got in
    real.destroy();
    assert.equal(gate.refused, 3);
  });

  test('a connection the host dials itself passes the same proof (proveConnection)', async () => {
    const secret = newVmSecret();
    // The "VM" serves; what it says first decides whether the host keeps the connection.
    const serving = async (first: Buffer | null): Promise<{ port: number; peerClosed: Promise<number>; stop: () => void }> => {
      let peerClosed!: Promise<number>;
      const server = createServer((s) => {
        peerClosed = closed(s);
        if (first) s.write(first);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { port: (server.address() as { port: number }).port, get peerClosed() { return peerClosed; }, stop: () => server.close() };
    };
    const cases: Array<[string, Buffer | null, RegExp]> = [
      ['no proof', hello(null), /does not prove the VM secret/],
      ['another VM\'s proof', hello(newVmSecret()), /does not prove the VM secret/],
      ['an oversized first frame', Buffer.from([0, 0, 0, 0x40, 0]), /larger than a hello/],
      ['silence', null, /no hello within 300 ms/],
    ];
    for (const [what, first, message] of cases) {
      const vm = await serving(first);
      const s = await dial(vm.port);
      await assert.rejects(proveConnection(s, secret, { helloTimeoutMs: 300 }), message, what);
      assert.equal(s.destroyed, true, `${what}: the host drops the connection`);
      assert.equal(await vm.peerClosed, 0, `${what}: the host answered nothing`);
      vm.stop();
    }
    const frame = hello(secret);
    const vm = await serving(frame);
    const admitted = await proveConnection(await dial(vm.port), secret, { helloTimeoutMs: 5000 });
    const firstBytes = await new Promise<Buffer>((resolve) => {
      admitted.once('data', resolve);
      admitted.resume();
    });
    assert.deepEqual(firstBytes, frame, 'the hello is handed over unread');
    admitted.destroy();
    vm.stop();
  });

  test('closing the gate (the VM exited) rejects the connection and drops pending intruders', async () => {
    const { port, server } = await listen();
    const gate = admitVm(server, newVmSecret());
    const s = await dial(port);
    await new Promise((r) => setTimeout(r, 20));
    gate.close(new HostlinkError('vm_crash', 'the VM exited before connecting'));
    await assert.rejects(gate.connection, /the VM exited before connecting/);
    assert.equal(await closed(s), 0);
  });
});

test('the secret never appears on a VM\'s command line or in its environment', { timeout: 30_000 }, async () => {
  const data = tempDir();
  const host = await Host.open({ dataDir: data.path, mode: 'pool', poolSize: 1 });
  try {
    const codeHash = await host.deploy(contract('kv-store'));
    await host.call({ codeHash, method: 'get', input: json({ key: 'k' }), contextId: id32('argv') });
    const pid = host.vmPids()[0]!;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const environ = existsSync(`/proc/${pid}/environ`) ? readFileSync(`/proc/${pid}/environ`, 'utf8') : '';
    assert.doesNotMatch(cmdline, /[0-9a-f]{64}/);
    assert.doesNotMatch(environ, /[0-9a-f]{64}/);
  } finally {
    await host.close();
    data.remove();
  }
});
