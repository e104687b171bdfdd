/** A real agent on a unix socket and on TCP: every command's round trip through the guest client, and the bytes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseControlAddress } from '../../src/control/address.js';
import { GuestClient } from '../../src/control/client.js';
import { encodeRequest } from '../../src/control/wire.js';
import { rawExchange, startAgent, tempDir } from './helpers.js';

async function fullConfig(dir: string): Promise<unknown> {
  await writeFile(join(dir, 'version.txt'), '2024.05.1\n');
  // The consoles: the agent writes to them but never creates one.
  for (const tty of ['tty1', 'ttyS0']) await writeFile(join(dir, tty), '');
  return {
    handlers: {
      'get-hostos-version': { versionFile: join(dir, 'version.txt') },
      'attach-hsm': { command: ['sh', '-c', `echo attach >> ${join(dir, 'hsm.log')}`] },
      'detach-hsm': { command: ['sh', '-c', `echo detach >> ${join(dir, 'hsm.log')}`] },
      'start-upgrade-guest-vm': { command: ['sh', '-c', 'echo "upgrade-guestos.service not found" >&2; exit 3'] },
      'set-node-id': {
        nodeIdFile: join(dir, 'node-id'),
        command: ['sh', '-c', `echo "host-$1" > ${join(dir, 'hostname')}`, 'sh', '{node_id}'],
      },
      notify: { consoles: [join(dir, 'tty1'), join(dir, 'ttyS0')], intervalMs: 1 },
      upgrade: { enabled: false },
    },
  };
}

for (const transport of ['unix', 'tcp'] as const) {
  test(`${transport}: every command round-trips through a real agent`, async (t) => {
    const dir = await tempDir(t);
    const listen = transport === 'unix' ? `unix://${join(dir, 'agent.sock')}` : '127.0.0.1:0';
    const { agent, address, logs } = await startAgent(t, listen, await fullConfig(dir));
    const client = new GuestClient({ address: parseControlAddress(address) });

    assert.deepEqual(await client.send({ type: 'get-vsock-protocol' }), {
      ok: true,
      payload: { kind: 'HostOSVsockVersion', version: { major: 1, minor: 0, patch: 0 } },
    });
    assert.deepEqual(await client.send({ type: 'get-hostos-version' }), { ok: true, payload: { kind: 'HostOSVersion', version: '2024.05.1' } });

    const none = { ok: true, payload: { kind: 'NoPayload' } };
    assert.deepEqual(await client.send({ type: 'attach-hsm' }), none);
    assert.deepEqual(await client.send({ type: 'detach-hsm' }), none);
    assert.equal(await readFile(join(dir, 'hsm.log'), 'utf8'), 'attach\ndetach\n');

    assert.deepEqual(await client.send({ type: 'set-node-id', nodeId: 'abcde-fghij-12345' }), none);
    assert.equal(await readFile(join(dir, 'node-id'), 'utf8'), 'abcde-fghij-12345\n');
    assert.equal(await readFile(join(dir, 'hostname'), 'utf8'), 'host-abcde-fghij-12345\n');
    const badId = await client.send({ type: 'set-node-id', nodeId: 'x; reboot' });
    assert.equal(badId.ok, false);
    assert.match((badId as { error: string }).error, /invalid node id/);

    // notify answers at once and writes min(count, 10) times to every console in the background.
    assert.deepEqual(await client.send({ type: 'notify', count: 25, message: 'replica starting' }), none);
    await agent.idle();
    for (const tty of ['tty1', 'ttyS0']) {
      assert.equal(await readFile(join(dir, tty), 'utf8'), '\nreplica starting\n'.repeat(10), tty);
    }

    // A failing command's text reaches the guest.
    const failed = await client.send({ type: 'start-upgrade-guest-vm' });
    assert.equal(failed.ok, false);
    assert.match((failed as { error: string }).error, /exit 3.*upgrade-guestos\.service not found/);

    const disabled = await client.send({ type: 'upgrade', url: 'http://127.0.0.1:1/x', targetHash: '0'.repeat(64) });
    assert.deepEqual(disabled, {
      ok: false,
      error: "the host has disabled 'upgrade' (handlers.upgrade.enabled is false in the agent configuration)",
    });
    assert.ok(logs.some((l) => /attach-hsm -> ok/.test(l)), 'the agent logs each request');
  });

  test(`${transport}: the agent's reply bytes for every payload kind`, async (t) => {
    const dir = await tempDir(t);
    const listen = transport === 'unix' ? `unix://${join(dir, 'agent.sock')}` : '127.0.0.1:0';
    const { address } = await startAgent(t, listen, await fullConfig(dir));
    const where = transport === 'unix' ? join(dir, 'agent.sock') : address;
    const ask = async (body: string): Promise<string> => (await rawExchange(where, body)).toString('utf8');

    assert.equal(await ask('{"sender_cid":3,"message":"GetVsockProtocol"}'), '{"Ok":{"HostOSVsockVersion":{"major":1,"minor":0,"patch":0}}}');
    assert.equal(await ask('{"sender_cid":3,"message":"GetHostOSVersion"}'), '{"Ok":{"HostOSVersion":"2024.05.1"}}');
    assert.equal(await ask('{"sender_cid":3,"message":"attach-hsm"}'), '{"Ok":"NoPayload"}');
    assert.equal(await ask('{"sender_cid":3,"message":"detach-hsm"}'), '{"Ok":"NoPayload"}');
    assert.equal(await ask('{"sender_cid":3,"message":{"set-node-id":{"node-id":"n1"}}}'), '{"Ok":"NoPayload"}');
    assert.equal(await ask('{"sender_cid":3,"message":{"notify":{"count":1,"message":"hi"}}}'), '{"Ok":"NoPayload"}');
    assert.equal(
      await ask(encodeRequest({ senderCid: 3, command: { type: 'upgrade', url: 'http://x/', targetHash: '0'.repeat(64) } }).toString()),
      `{"Err":"the host has disabled 'upgrade' (handlers.upgrade.enabled is false in the agent configuration)"}`,
    );
    assert.equal(
      await ask('{"sender_cid":3,"message":"start-upgrade-guest-vm"}'),
      '{"Err":"command sh -c \\"echo \\\\\\"upgrade-guestos.service not found\\\\\\" >&2; exit 3\\" failed (exit 3): upgrade-guestos.service not found"}',
    );
  });
}
