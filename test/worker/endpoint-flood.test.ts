/**
 * The node's endpoint for workers against strangers who reach its port: connections that never start TLS,
 * and TLS connections without a certificate from the CA that never register, opened in numbers. A real
 * `hostlink serve` process (with a low descriptor limit, so that exhaustion is within a test's reach), a real
 * `hostlink worker` process, real TLS; the node must keep its descriptors, its HTTP API and its workers.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, describe, test } from 'node:test';
import { makeCerts, opensslMissing } from '../../bench/certs.js';
import { MAX_UNREGISTERED_CONNECTIONS } from '../../src/worker/endpoint.js';
import { contractPath, tempDir } from '../helpers.js';
import { api, startServe, type ServeProcess } from '../server/serve-process.js';
import { freePort, startWorkerProcess, waitFor, type WorkerProcess } from './helpers.js';

const skip = opensslMissing();
/** The serve process's descriptor limit: what it needs, a pool VM and a worker included, is far below it. */
const NOFILE = 512;

describe("the node's worker endpoint under a flood of strangers", { skip }, () => {
  const dir = tempDir('hostlink-endpoint-flood-');
  const held: Socket[] = [];
  let node: ServeProcess | undefined;
  let worker: WorkerProcess | undefined;
  after(async () => {
    for (const s of held) s.destroy();
    await worker?.kill('SIGKILL');
    if (node !== undefined && node.child.exitCode === null) await node.stop();
    dir.remove();
  });

  test('connections that never register are bounded: the node keeps serving HTTP, and a worker registers and runs calls', { timeout: 120_000 }, async () => {
    const certs = makeCerts(dir.path);
    const port = await freePort();
    node = await startServe(
      ['--data-dir', join(dir.path, 'data'), '--pool-size', '1', '--workers-listen', `127.0.0.1:${port}`, '--workers-cert', certs.node.cert, '--workers-key', certs.node.key, '--workers-ca', certs.node.ca],
      {},
      ['/bin/sh', '-c', `ulimit -n ${NOFILE} && exec "$0" "$@"`],
    );
    const strangers = NOFILE + 64; // more than the node has descriptors
    let closedByNode = 0;
    await Promise.all(
      Array.from({ length: strangers }, (_, i) =>
        new Promise<void>((resolve) => {
          // Half never start TLS; half complete it without a client certificate and then say nothing.
          const s = i % 2 === 0 ? netConnect(port, '127.0.0.1') : tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
          held.push(s);
          s.resume(); // a paused socket would never see the node's end
          s.on('error', () => undefined);
          s.once('close', () => {
            closedByNode++;
            resolve();
          });
          s.once(i % 2 === 0 ? 'connect' : 'secureConnect', () => resolve());
        }),
      ),
    );
    assert.equal((await api(`${node.url}healthz`)).status, 200, 'the HTTP API answers');
    // The oldest strangers made room for the newest (the node accepts what waits in its backlog as it goes). Waited
    // for before the worker comes: a worker's connection accepted while strangers still wait in the backlog is
    // the oldest when they arrive, and is closed like theirs (it retries; seen once under a loaded full run).
    await waitFor(`the node to close at least ${strangers - MAX_UNREGISTERED_CONNECTIONS} of ${strangers}`, () => closedByNode >= strangers - MAX_UNREGISTERED_CONNECTIONS, 60_000);

    worker = startWorkerProcess({ runtime: `127.0.0.1:${port}`, slots: 1, listen: `127.0.0.1:${await freePort()}`, tls: certs.worker });
    await waitFor('the worker to register', () => /registered with the node/.test(worker!.output()), 60_000);
    const deployed = await api(`${node.url}api/codes`, { method: 'POST', headers: { 'content-type': 'application/wasm' }, body: readFileSync(contractPath('kv-store')) });
    assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
    const call = await api(`${node.url}api/calls`, { json: { code: deployed.body.code_hash, method: 'set', mode: 'oneshot', input: '{"key":"a","value":"b"}' } });
    assert.equal(call.body.outcome?.result, 'return', JSON.stringify(call.body).slice(0, 400));
  });
});
