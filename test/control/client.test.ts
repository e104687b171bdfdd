/**
 * The guest client against scripted hosts: the exact request bytes it sends for every command, protocol
 * detection (v1, legacy v0, too new), and how failures surface.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { GuestClient } from '../../src/control/client.js';
import { isHostlinkError } from '../../src/errors.js';
import { LEGACY_ACCEPTED, LEGACY_HOSTOS_VERSION, MAX_MESSAGE_BYTES } from '../../src/control/wire.js';
import { HASH, REQUEST_GOLDENS, RESPONSE_GOLDENS } from './goldens.js';
import { startAgent, tempDir } from './helpers.js';

const VERSION_REPLY = RESPONSE_GOLDENS[2]![1];

/** A host that reads each request to EOF (so the client must half-close), records it and answers with `reply`. */
async function scriptedHost(
  t: Parameters<typeof tempDir>[0],
  reply: (request: string, sock: Socket) => string | undefined,
): Promise<{ path: string; seen: string[] }> {
  const dir = await tempDir(t);
  const path = join(dir, 'host.sock');
  const seen: string[] = [];
  const open = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (sock) => {
    open.add(sock);
    sock.on('close', () => open.delete(sock));
    let body = '';
    sock.on('data', (c) => (body += c));
    sock.on('end', () => {
      seen.push(body);
      const r = reply(body, sock);
      if (r !== undefined) sock.end(r);
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of open) s.destroy(); // a silent host's half-open sockets would keep close() waiting
      }),
  );
  return { path, seen };
}

test('v1: the request bytes for every command, after the version question', async (t) => {
  const host = await scriptedHost(t, (req) => (req.includes('GetVsockProtocol') ? VERSION_REPLY : '{"Ok":"NoPayload"}'));
  const client = new GuestClient({ address: { kind: 'unix', path: host.path } });
  assert.equal('format' in (await client.protocol()), true);
  assert.deepEqual(host.seen, ['{"sender_cid":3,"message":"GetVsockProtocol"}']);
  for (const [command, golden] of REQUEST_GOLDENS) {
    if (command.type === 'get-vsock-protocol') continue;
    host.seen.length = 0;
    assert.deepEqual(await client.send(command), { ok: true, payload: { kind: 'NoPayload' } });
    assert.deepEqual(host.seen, [golden], command.type);
  }
  // The version question itself, once per client.
  const fresh = new GuestClient({ address: { kind: 'unix', path: host.path } });
  host.seen.length = 0;
  assert.deepEqual(await fresh.send({ type: 'get-vsock-protocol' }), {
    ok: true,
    payload: { kind: 'HostOSVsockVersion', version: { major: 1, minor: 0, patch: 0 } },
  });
  assert.deepEqual(host.seen, ['{"sender_cid":3,"message":"GetVsockProtocol"}']);
});

test('v1: every response golden decodes to what the guest reports', async (t) => {
  for (const [response, golden] of RESPONSE_GOLDENS) {
    const host = await scriptedHost(t, (req) => (req.includes('GetVsockProtocol') ? VERSION_REPLY : golden));
    const client = new GuestClient({ address: { kind: 'unix', path: host.path }, senderCid: 3 });
    assert.deepEqual(await client.send({ type: 'get-hostos-version' }), response);
  }
});

test('legacy host: detected from its accepted literal, then spoken to in the string format', async (t) => {
  const host = await scriptedHost(t, () => LEGACY_ACCEPTED);
  const client = new GuestClient({ address: { kind: 'unix', path: host.path }, senderCid: 3 });
  assert.deepEqual(await client.send({ type: 'get-vsock-protocol' }), {
    ok: true,
    payload: { kind: 'HostOSVsockVersion', version: { major: 0, minor: 0, patch: 0 } },
  });
  host.seen.length = 0;
  const none = { ok: true, payload: { kind: 'NoPayload' } };
  assert.deepEqual(await client.send({ type: 'attach-hsm' }), none);
  assert.deepEqual(await client.send({ type: 'notify', count: 2, message: 'hi there' }), none);
  assert.deepEqual(await client.send({ type: 'set-node-id', nodeId: 'n-1' }), none);
  assert.deepEqual(await client.send({ type: 'upgrade', url: 'http://h/u', targetHash: HASH }), none);
  assert.deepEqual(host.seen, [
    '{"sender_cid":"3","message":"attach-hsm"}',
    '{"sender_cid":"3","message":"notify[2, hi there]"}',
    '{"sender_cid":"3","message":"set-node-id[n-1]"}',
    `{"sender_cid":"3","message":"upgrade[http://h/u ${HASH}]"}`,
  ]);
  // A v0 host has no version command: answered locally, as the reference guest does.
  assert.deepEqual(await client.send({ type: 'get-hostos-version' }), { ok: true, payload: { kind: 'HostOSVersion', version: LEGACY_HOSTOS_VERSION } });
  assert.equal(host.seen.length, 4);
});

test('legacy host: any other reply is its error text; a hang-up after an upgrade request is success', async (t) => {
  const host = await scriptedHost(t, (req, sock) => {
    if (req.includes('GetVsockProtocol')) return LEGACY_ACCEPTED;
    if (req.includes('upgrade[')) return void sock.destroy(); // rebooting
    return 'HSM not present';
  });
  const client = new GuestClient({ address: { kind: 'unix', path: host.path } });
  assert.deepEqual(await client.send({ type: 'attach-hsm' }), { ok: false, error: 'HSM not present' });
  assert.deepEqual(await client.send({ type: 'upgrade', url: 'http://h/u', targetHash: HASH }), { ok: true, payload: { kind: 'NoPayload' } });
});

test('a host with another major version is refused as incompatible; garbage is a protocol error', async (t) => {
  const newer = await scriptedHost(t, () => '{"Ok":{"HostOSVsockVersion":{"major":2,"minor":1,"patch":0}}}');
  await assert.rejects(
    new GuestClient({ address: { kind: 'unix', path: newer.path } }).send({ type: 'attach-hsm' }),
    (e: unknown) => isHostlinkError(e, 'incompatible_version') && /2\.1\.0/.test(e.message),
  );
  const garbage = await scriptedHost(t, () => '<html>hello</html>');
  await assert.rejects(
    new GuestClient({ address: { kind: 'unix', path: garbage.path } }).send({ type: 'attach-hsm' }),
    (e: unknown) => isHostlinkError(e, 'protocol') && /<html>/.test(e.message),
  );
  const huge = await scriptedHost(t, () => `{"Err":"${'x'.repeat(MAX_MESSAGE_BYTES)}"}`);
  await assert.rejects(
    new GuestClient({ address: { kind: 'unix', path: huge.path } }).send({ type: 'attach-hsm' }),
    (e: unknown) => isHostlinkError(e, 'protocol') && /larger than 65536/.test(e.message),
  );
});

test('a refusal of the version question is returned as the refusal', async (t) => {
  const host = await scriptedHost(t, () => '{"Err":"a type4 host only accepts the first VM"}');
  const r = await new GuestClient({ address: { kind: 'unix', path: host.path }, senderCid: 4 }).send({ type: 'attach-hsm' });
  assert.deepEqual(r, { ok: false, error: 'a type4 host only accepts the first VM' });
});

test('unreachable and silent hosts: channel_closed and timeout errors', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(
    new GuestClient({ address: { kind: 'unix', path: join(dir, 'nobody.sock') } }).send({ type: 'attach-hsm' }),
    (e: unknown) => isHostlinkError(e, 'channel_closed') && /could not connect/.test(e.message),
  );
  const closer = await scriptedHost(t, (_r, sock) => void sock.end());
  await assert.rejects(
    new GuestClient({ address: { kind: 'unix', path: closer.path } }).send({ type: 'attach-hsm' }),
    (e: unknown) => isHostlinkError(e, 'channel_closed') && /without replying/.test(e.message),
  );
  const silent = await scriptedHost(t, () => undefined);
  await assert.rejects(
    new GuestClient({ address: { kind: 'unix', path: silent.path }, replyTimeoutMs: 100 }).send({ type: 'attach-hsm' }),
    (e: unknown) => isHostlinkError(e, 'timeout'),
  );
});

test('our agent also serves a guest forced to the legacy format', async (t) => {
  const dir = await tempDir(t);
  const { address } = await startAgent(t, `unix://${join(dir, 'a.sock')}`, { handlers: { 'attach-hsm': { command: ['true'] }, 'detach-hsm': { command: ['false'] } } });
  const client = new GuestClient({ address: { kind: 'unix', path: address.slice('unix://'.length) }, protocol: 'legacy' });
  assert.deepEqual(await client.send({ type: 'attach-hsm' }), { ok: true, payload: { kind: 'NoPayload' } });
  const r = await client.send({ type: 'detach-hsm' });
  assert.deepEqual(r, { ok: false, error: 'command false failed (exit 1)' });
});
