/**
 * A registered worker that accepts TCP on its slot address and then never speaks (a frozen or partitioned
 * machine, or a hostile worker with a certificate from the CA). Real Host with its TLS endpoint, a real
 * registration over gRPC + TLS for the silent address, a real `hostlink worker` process beside it: the silent
 * one is dropped and calls run on the other, instead of every call waiting on it until its deadline.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { makeCerts, opensslMissing } from '../../bench/certs.js';
import { Host } from '../../src/host/host.js';
import { PROTOCOL_VERSION_MAX } from '../../src/protocol/generated.js';
import { initialize } from '../../src/runtime/grpc.js';
import { VM_SEMANTICS_TEXT } from '../../src/protocol/vm-semantics.js';
import { INSTANCE_METADATA, SLOTS_METADATA, VM_SEMANTICS_METADATA } from '../../src/worker/endpoint.js';
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
