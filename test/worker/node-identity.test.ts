/**
 * A worker's slots are the node's alone: the workers' certificates come from the same operator CA (with clientAuth),
 * so a certificate that merely chains to it would let one compromised worker hold every slot of every other worker
 * (the node's calls then waited slotWaitMs and failed) or run its own code there. A real `hostlink worker` process
 * accepts a slot connection only from a certificate that also carries the node's name: by default the host of its
 * --runtime (which the node's certificate carries already), or --node-name. The token still admits a node without
 * that certificate. Real TLS, real sandboxed VMs, a real node.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { after, describe, test } from 'node:test';
import { makeCerts, NODE_NAME, NODE_SUBDOMAIN_NAME, opensslMissing, type TestCerts } from '../../bench/certs.js';
import { Host } from '../../src/host/host.js';
import { newVmSecret } from '../../src/protocol/hello-proof.js';
import { encodeRequest, parseReply, readPreamble, SLOT_STATUS, type SlotReply } from '../../src/worker/preamble.js';
import { readTlsFiles, type TlsFiles } from '../../src/worker/tls.js';
import { contract, id32, tempDir, utf8 } from '../helpers.js';
import { freePort, startWorkerProcess, waitFor, type WorkerProcess } from './helpers.js';

const skip = opensslMissing();

/** Opens a slot connection as `files` would (trusting the worker's certificate) and reads the worker's reply. */
async function askForSlot(addr: string, files: TlsFiles, token = ''): Promise<{ reply: SlotReply; socket: TLSSocket }> {
  const t = readTlsFiles(files);
  const at = addr.lastIndexOf(':');
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect({ host: addr.slice(0, at), port: Number(addr.slice(at + 1)), ca: t.ca, cert: t.cert, key: t.key });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
  socket.on('error', () => undefined);
  socket.write(encodeRequest(newVmSecret(), token));
  return { reply: await readPreamble(socket, parseReply, 30_000), socket };
}

describe("a worker's slots take only the node's certificate (or the token)", { skip }, () => {
  const dir = tempDir('hostlink-node-identity-');
  let certs: TestCerts;
  const workers: WorkerProcess[] = [];
  const sockets: TLSSocket[] = [];
  let host: Host | undefined;
  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await host?.close();
    dir.remove();
  });

  test("by default the name is --runtime's host: another worker's certificate is refused, the node's and the token pass", { timeout: 120_000 }, async () => {
    certs = makeCerts(dir.path);
    const tokenFile = join(dir.path, 'token');
    writeFileSync(tokenFile, 'a-long-enough-worker-token\n');
    // No node listens there: the worker keeps retrying its registration and serves its slot port meanwhile. The node's
    // certificate carries `localhost`; the workers' do not.
    const w = startWorkerProcess({ runtime: `localhost:${await freePort()}`, slots: 2, listen: '127.0.0.1:0', tls: certs.worker, token: tokenFile });
    workers.push(w);
    await waitFor('the slot listener', () => /serving 2 slots on \S+/.test(w.output()));
    const addr = /serving 2 slots on (\S+)/.exec(w.output())![1]!;

    const impostor = await askForSlot(addr, certs.otherWorker);
    sockets.push(impostor.socket);
    assert.equal(impostor.reply.status, SLOT_STATUS.refused, impostor.reply.message);
    assert.match(impostor.reply.message, /the client certificate from the CA is not the node's \(it does not carry the name localhost itself, as a subject alternative name\) and no valid token/);
    // The worker logs the refusal before it answers, but its stderr pipe and the TLS reply race to this process.
    await waitFor('the refusal in the worker\'s log', () => /refused a connection from \S+: the client certificate from the CA is not the node's/.test(w.output()));

    const node = await askForSlot(addr, certs.node);
    sockets.push(node.socket);
    assert.equal(node.reply.status, SLOT_STATUS.ok, `the node's certificate gets a VM: ${node.reply.message}`);
    const withToken = await askForSlot(addr, certs.otherWorker, 'a-long-enough-worker-token');
    sockets.push(withToken.socket);
    assert.equal(withToken.reply.status, SLOT_STATUS.ok, `the token admits a node without that certificate: ${withToken.reply.message}`);
  });

  test('the name must be carried as itself: a wildcard or a bare common name that TLS would accept is refused', { timeout: 120_000 }, async () => {
    const w = startWorkerProcess({ runtime: `127.0.0.1:${await freePort()}`, slots: 2, listen: '127.0.0.1:0', tls: certs.worker, extra: ['--node-name', NODE_SUBDOMAIN_NAME.toUpperCase() + '.'] });
    workers.push(w);
    await waitFor('the slot listener', () => /serving 2 slots on \S+/.test(w.output()));
    const addr = /serving 2 slots on (\S+)/.exec(w.output())![1]!;
    // Before, TLS's own name check decided: both certificates below got the node's VMs.
    for (const [what, files] of [['a wildcard certificate', certs.wildcardWorker], ['a certificate naming it only as its common name', certs.commonNameWorker]] as const) {
      const impostor = await askForSlot(addr, files);
      sockets.push(impostor.socket);
      assert.equal(impostor.reply.status, SLOT_STATUS.refused, `${what}: ${impostor.reply.message}`);
      assert.match(impostor.reply.message, /does not carry the name \S+ itself, as a subject alternative name/, what);
    }
    // The node's certificate carries the name (DNS names compare without case and a final dot).
    const node = await askForSlot(addr, certs.node);
    sockets.push(node.socket);
    assert.equal(node.reply.status, SLOT_STATUS.ok, node.reply.message);
  });

  test('with --node-name: another worker cannot take a registered worker\'s slots, and the node\'s calls run there', { timeout: 120_000 }, async () => {
    const h = await Host.open({ dataDir: join(dir.path, 'data'), poolSize: 1, deadlineMs: 30_000, workers: { listen: '127.0.0.1:0', tls: certs.node } });
    host = h;
    const kv = await h.deploy(contract('kv-store'));
    // --runtime is an IP address both kinds of test certificate carry: only the name tells the node apart here.
    const w = startWorkerProcess({ runtime: h.remote!.address!, slots: 1, listen: '127.0.0.1:0', tls: certs.worker, extra: ['--node-name', NODE_NAME] });
    workers.push(w);
    await waitFor('the worker to register', () => h.remote!.launcher.workers().length === 1, 60_000);
    const addr = h.remote!.launcher.workers()[0]!.addr;

    // Another worker, with its own certificate from the same CA, tries to take the only slot.
    const impostor = await askForSlot(addr, certs.otherWorker);
    sockets.push(impostor.socket);
    assert.equal(impostor.reply.status, SLOT_STATUS.refused, impostor.reply.message);
    assert.match(impostor.reply.message, new RegExp(`does not carry the name ${NODE_NAME}`));

    const o = await h.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key: 'k', value: 'v' })), contextId: id32('node-identity') });
    assert.equal(o.result.code, 'return', JSON.stringify(o.result));
  });
});
