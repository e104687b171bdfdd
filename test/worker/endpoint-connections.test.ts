/**
 * Every connection to the node's worker endpoint is counted and timed, registered or not, in-process through
 * real TLS and HTTP/2 on loopback:
 * - grpc-js names a connection by its remote address and port; a second connection from the same ones to another
 *   of the node's addresses took the first one's place in the tables, which left the first uncounted and open
 *   for good (400 pairs: 400 held past the 256 bound and the 10 s deadline);
 * - a registered connection was never bounded or timed again: one certificate held 1,000 of them, and with the
 *   node's descriptors used up it could no longer open a file or a socket.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeCerts, opensslMissing } from '../../bench/certs.js';
import { Host } from '../../src/host/host.js';
import { VM_SEMANTICS_TEXT } from '../../src/protocol/vm-semantics.js';
import { INSTANCE_METADATA, MAX_CONNECTIONS_PER_IDENTITY, REGISTER_WITHIN_MS, SLOTS_METADATA, VM_SEMANTICS_METADATA } from '../../src/worker/endpoint.js';
import { tempDir } from '../helpers.js';
import { freePort, waitFor } from './helpers.js';

const skip = opensslMissing();

/** An Initialize request for `addr` (protocol version 1), as a gRPC message frame. */
function initializeFrame(addr: string): Buffer {
  const msg = Buffer.concat([Buffer.from([0x08, 0x01, 0x12, addr.length]), Buffer.from(addr)]);
  return Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]);
}

describe("the worker endpoint's connections", { skip }, () => {
  const dir = tempDir('hostlink-endpoint-connections-');
  const certs = makeCerts(dir.path);
  const sockets: TLSSocket[] = [];
  const sessions: ClientHttp2Session[] = [];
  let host: Host | undefined;
  after(async () => {
    for (const s of sockets) s.destroy();
    for (const s of sessions) s.destroy();
    await host?.close();
    dir.remove();
  });

  test('a connection from the same remote address and port to another address is refused; registered connections are bounded per identity and must register again', { timeout: 120_000 }, async () => {
    host = await Host.open({ dataDir: join(dir.path, 'data'), poolSize: 1, workers: { listen: '0.0.0.0:0', tls: certs.node } });
    await host.remote!.ready;
    const port = Number(host.remote!.address!.split(':').pop());

    // 1. Strangers, from one source port to two of the node's addresses.
    const open = (dest: string, localPort: number): Promise<TLSSocket> =>
      new Promise((resolve) => {
        const raw = netConnect({ host: dest, port, localAddress: '127.0.0.1', localPort });
        raw.on('error', () => undefined);
        const s = tlsConnect({ socket: raw, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
        sockets.push(s);
        s.on('error', () => undefined);
        s.resume();
        s.once('secureConnect', () => resolve(s));
        s.once('close', () => resolve(s));
      });
    const pairs: [TLSSocket, TLSSocket][] = [];
    for (let i = 0; i < 10; i++) {
      const localPort = await freePort();
      pairs.push([await open('127.0.0.1', localPort), await open('127.0.0.2', localPort)]);
    }
    const isOpen = (s: TLSSocket): boolean => !s.destroyed && s.readyState === 'open';
    await waitFor('the second connection of each pair to be closed', () => pairs.every(([, second]) => !isOpen(second)), 10_000);

    // 2. One certificate registering on more connections than it may hold.
    const tls = { ca: readFileSync(certs.worker.ca), key: readFileSync(certs.worker.key), cert: readFileSync(certs.worker.cert) };
    const register = (): Promise<{ session: ClientHttp2Session; status: string | undefined }> =>
      new Promise((resolve) => {
        const session = h2connect(`https://127.0.0.1:${port}`, { ...tls, servername: 'localhost' });
        sessions.push(session);
        session.on('error', () => undefined);
        const stream = session.request({
          ':method': 'POST', ':path': '/hostlink.runtime.v1.Runtime/Initialize', 'content-type': 'application/grpc', te: 'trailers',
          [SLOTS_METADATA]: '1', [VM_SEMANTICS_METADATA]: VM_SEMANTICS_TEXT, [INSTANCE_METADATA]: 'one',
        });
        let status: string | undefined;
        stream.on('response', (h) => (status ??= h['grpc-status'] as string | undefined));
        stream.on('trailers', (h) => (status ??= h['grpc-status'] as string | undefined));
        stream.on('error', () => undefined);
        stream.resume();
        stream.on('close', () => resolve({ session, status }));
        stream.end(initializeFrame('127.0.0.1:9'));
      });
    const extra = 10;
    const registered: ClientHttp2Session[] = [];
    for (let i = 0; i < MAX_CONNECTIONS_PER_IDENTITY + extra; i++) {
      const r = await register();
      assert.equal(r.status, '0', `registration ${i}`);
      registered.push(r.session);
    }
    const stillOpen = (): number => registered.filter((s) => !s.closed && !s.destroyed).length;
    await waitFor(`the oldest ${extra} to be closed`, () => stillOpen() === MAX_CONNECTIONS_PER_IDENTITY, 10_000);
    assert.ok(registered.slice(0, extra).every((s) => s.closed || s.destroyed), 'the oldest ones went');

    // 3. None of them registers again, nor does any stranger register: all are closed after the deadline.
    await sleep(REGISTER_WITHIN_MS);
    await waitFor('every connection that did not register (again) to be closed', () => stillOpen() === 0 && pairs.every(([first]) => !isOpen(first)), 10_000);
  });
});
