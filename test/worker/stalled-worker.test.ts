/**
 * A registered worker that accepts TCP on its slot address and then never speaks (a frozen or partitioned
 * machine, or a hostile worker with a certificate from the CA), one that completes TLS and never answers the
 * slot's preamble, one that answers that it cannot start a VM, and two that answer the preamble and whose "VM"
 * then never proves the secret (a wrong hello, or none at all). Real Host with its TLS endpoint, a real
 * registration over gRPC + TLS for the bad address, a real `hostlink worker` process beside it: the bad one is
 * passed over and calls run on the other, instead of every call waiting on it until its deadline or failing.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { makeCerts, opensslMissing, type TestCerts } from '../../bench/certs.js';
import { Host } from '../../src/host/host.js';
import { PROTOCOL_VERSION_MAX } from '../../src/protocol/generated.js';
import { initialize } from '../../src/runtime/grpc.js';
import { VM_SEMANTICS_TEXT } from '../../src/protocol/vm-semantics.js';
import { INSTANCE_METADATA, SLOTS_METADATA, VM_SEMANTICS_METADATA } from '../../src/worker/endpoint.js';
import { encodeReply, parseRequest, SLOT_STATUS } from '../../src/worker/preamble.js';
import { remoteLauncher } from '../../src/worker/remote-launcher.js';
import { readTlsFiles } from '../../src/worker/tls.js';
import { encodeRequest } from '../../src/protocol/messages.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { helloProof } from '../../src/protocol/hello-proof.js';
import { PROTOCOL_VERSION_MIN } from '../../src/protocol/generated.js';
import { encodeData } from '../../src/worker/relay.js';
import { contract, id32, tempDir, utf8 } from '../helpers.js';
import { freePort, startWorkerProcess, waitFor, type WorkerProcess } from './helpers.js';

const skip = opensslMissing();

describe('a registered worker that never answers on its slot address', { skip }, () => {
  const dir = tempDir('hostlink-stalled-worker-');
  const held: Socket[] = [];
  const silent = createServer((s) => {
    held.push(s);
    s.on('error', () => undefined);
  });
  let host: Host | undefined;
  let worker: WorkerProcess | undefined;
  after(async () => {
    for (const s of held) s.destroy();
    silent.close();
    await worker?.kill('SIGKILL');
    await host?.close();
    dir.remove();
  });

  test('is dropped, and calls run on a healthy worker instead of all timing out', { timeout: 120_000 }, async () => {
    const certs = makeCerts(dir.path);
    host = await Host.open({ dataDir: join(dir.path, 'data'), poolSize: 1, deadlineMs: 60_000, workers: { listen: '127.0.0.1:0', tls: certs.node } });
    const kv = await host.deploy(contract('kv-store'));
    const silentPort = await freePort();
    await new Promise<void>((resolve) => silent.listen(silentPort, '127.0.0.1', resolve));
    // The silent worker registers with more free slots than the real one, so the node tries it first.
    const credentials = grpc.credentials.createSsl(readFileSync(certs.worker.ca), readFileSync(certs.worker.key), readFileSync(certs.worker.cert));
    const metadata = new grpc.Metadata();
    metadata.set(SLOTS_METADATA, '8');
    metadata.set(INSTANCE_METADATA, 'silent');
    metadata.set(VM_SEMANTICS_METADATA, VM_SEMANTICS_TEXT);
    const registered = await initialize(host.remote!.address!, { protocol_version: PROTOCOL_VERSION_MAX, server_addr: `127.0.0.1:${silentPort}` }, { credentials, metadata, deadlineMs: 10_000 });
    assert.deepEqual(registered, { ok: true });
    worker = startWorkerProcess({ runtime: host.remote!.address!, slots: 1, listen: `127.0.0.1:${await freePort()}`, tls: certs.worker });
    await waitFor('both workers registered', () => host!.remote!.launcher.workers().length === 2, 60_000);

    const o = await host.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key: 'k', value: 'v' })), contextId: id32('stalled-worker') });
    assert.equal(o.result.code, 'return', JSON.stringify(o.result));
    assert.ok(held.length >= 1, 'the node did try the silent worker first');
    assert.deepEqual(
      host.remote!.launcher.workers().map((w) => w.addr),
      [worker.output().match(/slots at (\S+)/)![1]],
      'the silent worker was dropped from the slot table',
    );
  });
});

/**
 * A fake worker: a TLS server with the workers' certificate whose connections `behave` decides, registered with
 * the node through the real Initialize (`slots` free slots: more than a real worker's makes the node try it first).
 */
async function fakeWorker(
  node: Host,
  certs: TestCerts,
  slots: number,
  behave: (s: TLSSocket) => void,
): Promise<{ held: TLSSocket[]; close: () => void }> {
  const held: TLSSocket[] = [];
  const server = createTlsServer({ key: readFileSync(certs.worker.key), cert: readFileSync(certs.worker.cert), ca: readFileSync(certs.worker.ca), requestCert: true }, (s) => {
    held.push(s);
    s.on('error', () => undefined);
    behave(s);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const credentials = grpc.credentials.createSsl(readFileSync(certs.worker.ca), readFileSync(certs.worker.key), readFileSync(certs.worker.cert));
  const metadata = new grpc.Metadata();
  metadata.set(SLOTS_METADATA, String(slots));
  metadata.set(INSTANCE_METADATA, `fake-${port}`);
  metadata.set(VM_SEMANTICS_METADATA, VM_SEMANTICS_TEXT);
  assert.deepEqual(await initialize(node.remote!.address!, { protocol_version: PROTOCOL_VERSION_MAX, server_addr: `127.0.0.1:${port}` }, { credentials, metadata, deadlineMs: 10_000 }), { ok: true });
  return {
    held,
    close() {
      for (const s of held) s.destroy();
      server.close();
    },
  };
}

for (const [what, behave] of [
  ['completes TLS and never answers the slot preamble', (_s: TLSSocket) => undefined],
  ['answers that it cannot start a VM', (s: TLSSocket) => s.once('data', () => s.end(encodeReply(SLOT_STATUS.startFailed, 0, 'no VM for you')))],
  ['answers the slot preamble and then never says hello', (s: TLSSocket) => s.once('data', () => s.write(encodeReply(SLOT_STATUS.ok, 4242)))],
  [
    'answers the slot preamble and then relays a hello that does not prove the secret',
    (s: TLSSocket) =>
      s.once('data', () => {
        s.write(encodeReply(SLOT_STATUS.ok, 4242));
        for (const f of encodeData(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))) s.write(f);
      }),
  ],
] as const) {
  describe(`a registered worker that ${what}`, { skip }, () => {
    const dir = tempDir('hostlink-bad-worker-');
    let host: Host | undefined;
    let worker: WorkerProcess | undefined;
    let bad: Awaited<ReturnType<typeof fakeWorker>> | undefined;
    after(async () => {
      bad?.close();
      await worker?.kill('SIGKILL');
      await host?.close();
      dir.remove();
    });

    test('is passed over: calls run on a healthy worker, each within its deadline', { timeout: 120_000 }, async () => {
      const certs = makeCerts(dir.path);
      const h = await Host.open({ dataDir: join(dir.path, 'data'), poolSize: 1, deadlineMs: 8_000, workers: { listen: '127.0.0.1:0', tls: certs.node } });
      host = h;
      const kv = await h.deploy(contract('kv-store'));
      bad = await fakeWorker(h, certs, 8, behave);
      worker = startWorkerProcess({ runtime: h.remote!.address!, slots: 1, listen: `127.0.0.1:${await freePort()}`, tls: certs.worker });
      await waitFor('both workers registered', () => h.remote!.launcher.workers().length === 2, 60_000);
      for (let i = 0; i < 3; i++) {
        const o = await h.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key: 'k', value: `v${i}` })), contextId: id32(`bad-worker-${i}`) });
        assert.equal(o.result.code, 'return', JSON.stringify(o.result));
      }
      assert.ok(bad.held.length >= 1, 'the node did try the bad worker');
    });
  });
}

/**
 * A describe block's node with its TLS worker endpoint, opened by its test; closed after the block with the fake
 * and real workers the test set in `held`.
 */
function blockNode(prefix: string) {
  const dir = tempDir(prefix);
  const held: { host?: Host; fake?: Awaited<ReturnType<typeof fakeWorker>>; worker?: WorkerProcess } = {};
  after(async () => {
    held.fake?.close();
    await held.worker?.kill('SIGKILL');
    await held.host?.close();
    dir.remove();
  });
  return {
    held,
    async open(slotWaitMs?: number) {
      const certs = makeCerts(dir.path);
      const host = await Host.open({ dataDir: join(dir.path, 'data'), poolSize: 1, deadlineMs: 20_000, workers: { listen: '127.0.0.1:0', tls: certs.node, ...(slotWaitMs !== undefined ? { slotWaitMs } : {}) } });
      held.host = host;
      return { host, certs, kv: await host.deploy(contract('kv-store')) };
    },
  };
}

describe('a registered worker whose VM fails the node\'s hello check', { skip }, () => {
  const node = blockNode('hostlink-bad-hello-');

  test('the call\'s crash says the node refused the hello, not that the worker went away', { timeout: 60_000 }, async () => {
    const { host: h, certs, kv } = await node.open();
    // Answers the preamble, then relays a first frame that is no hello at all (an 8-byte body of zeros).
    node.held.fake = await fakeWorker(h, certs, 1, (s) =>
      s.once('data', () => {
        s.write(encodeReply(SLOT_STATUS.ok, 4242));
        for (const f of encodeData(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))) s.write(f);
      }),
    );
    const o = await h.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key: 'k', value: 'v' })), contextId: id32('bad-hello') });
    assert.equal(o.applied, false);
    assert.match(JSON.stringify(o.result), /the VM connection was refused: /);
    assert.doesNotMatch(JSON.stringify(o.result), /the worker went away/);
  });
});

describe('a launch that finds only a worker that does not answer', { skip }, () => {
  const node = blockNode('hostlink-slot-wait-');

  test('gives up at slotWaitMs, with the attempt under way, and does not blame that worker for the node\'s own limit', { timeout: 60_000 }, async () => {
    // slotWaitMs below the reply timeout (5 s): the attempt is still waiting for the worker's answer when it runs out.
    // Before, the launch waited the whole reply timeout, dropped the worker, then failed: past slotWaitMs.
    const { host: h, certs, kv } = await node.open(1500);
    const bad = (node.held.fake = await fakeWorker(h, certs, 1, () => undefined)); // completes TLS, never answers the preamble
    const o = await h.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key: 'k', value: 'v' })), contextId: id32('slot-wait') });
    assert.equal(o.applied, false);
    assert.match(JSON.stringify(o.result), /no remote VM slot is free on the 1 registered worker\(s\) within 1500 ms \(worker 127\.0\.0\.1:\d+ had not given a VM that proved the secret yet\)/);
    assert.equal(bad.held.length, 1, 'the node did try it');
    assert.equal(h.remote!.launcher.workers().length, 1, 'the worker stays registered: the attempt ran out of the launch\'s time, not of its own');
  });
});

describe('a launch that gave up on a worker that does not answer, beside a healthy worker', { skip }, () => {
  const node = blockNode('hostlink-slot-wait-healthy-');

  test('the next launches go to the healthy worker: the silent one is not tried by every launch', { timeout: 90_000 }, async () => {
    const { host: h, certs, kv } = await node.open(1500);
    // The silent worker advertises the most free slots, so a launch picks it first.
    const bad = (node.held.fake = await fakeWorker(h, certs, 8, () => undefined));
    node.held.worker = startWorkerProcess({ runtime: h.remote!.address!, slots: 1, listen: `127.0.0.1:${await freePort()}`, tls: certs.worker });
    await waitFor('both workers registered', () => h.remote!.launcher.workers().length === 2, 60_000);
    const set = (i: number) => h.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key: 'k', value: `v${i}` })), contextId: id32(`healthy-${i}`) });
    // The first launch gives up on the silent worker at slotWaitMs (below its reply timeout). Before, every later
    // launch picked it again and gave up too: every call failed while the healthy worker sat idle.
    const first = await set(0);
    assert.equal(first.applied, false);
    for (let i = 1; i <= 3; i++) {
      const o = await set(i);
      assert.equal(o.result.code, 'return', JSON.stringify(o.result));
    }
    assert.equal(bad.held.length, 1, 'the silent worker was tried once');
  });
});

describe('a launch after one that gave up on the only free worker', { skip }, () => {
  const dir = tempDir('hostlink-slot-wait-only-');
  after(() => dir.remove());

  test('uses that worker: it is tried last, not left out', { timeout: 60_000 }, async () => {
    const certs = makeCerts(dir.path);
    // One worker (real TLS, real preamble and hello proof) whose first VM starts after 2.5 s, the others at once.
    const worker = readTlsFiles(certs.worker);
    const held: TLSSocket[] = [];
    const server = createTlsServer({ key: worker.key, cert: worker.cert, ca: worker.ca, requestCert: true }, (s) => {
      const slow = held.push(s) === 1;
      s.on('error', () => undefined);
      let buf = Buffer.alloc(0);
      let answered = false;
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        const request = parseRequest(buf);
        if (answered || request === 'more' || 'error' in request) return;
        answered = true;
        const fields = { minVersion: PROTOCOL_VERSION_MIN, maxVersion: PROTOCOL_VERSION_MAX, vmVersion: 'fake', pid: 4242, proof: new Uint8Array(32) };
        fields.proof = helloProof(request.value.secret, encodeRequest('hello', fields));
        setTimeout(() => {
          if (s.destroyed) return;
          s.write(encodeReply(SLOT_STATUS.ok, 4242));
          for (const f of encodeData(encodeFrame(encodeRequest('hello', fields)))) s.write(f);
        }, slow ? 2500 : 0);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const logged: string[] = [];
    const launcher = remoteLauncher({ tls: readTlsFiles(certs.node), slotWaitMs: 1000, log: (line) => logged.push(line) });
    try {
      launcher.register({ addr: `127.0.0.1:${(server.address() as { port: number }).port}`, slots: 4, instance: 'one', identity: 'test' });
      await assert.rejects(launcher.launch('pool'), /within 1000 ms/);
      // Before, the worker was left out of every launch for 2 s: this one failed "no slot is free" with 4 idle.
      const vm = await launcher.launch('pool');
      assert.equal(vm.pid, 4242);
      assert.equal(held.length, 2);
      await vm.stop(0);
      // A third launch whose attempt is still under way when the launcher closes: the close ends it, and the
      // worker is not reported as dropped for it (the node's own shutdown is not the worker's failure).
      held.length = 0;
      const third = launcher.launch('pool').then(() => 'launched', (e: Error) => e.message);
      await new Promise<void>((resolve) => {
        const check = (): void => (held.length > 0 ? resolve() : void setTimeout(check, 10));
        check();
      });
      await launcher.close();
      assert.match(await third, /closed|no remote|within/);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(logged.filter((l) => l.startsWith('dropped worker')), []);
    } finally {
      await launcher.close();
      for (const s of held) s.destroy();
      server.close();
    }
  });
});
