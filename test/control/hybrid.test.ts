/**
 * Firecracker-style hybrid vsock: the guest client connects to the VMM's unix socket, sends `CONNECT PORT\n`,
 * reads `OK ...\n`, then speaks the protocol. A test listener plays the VMM and relays to a real agent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { parseControlAddress } from '../../src/control/address.js';
import { GuestClient } from '../../src/control/client.js';
import { isHostlinkError } from '../../src/errors.js';
import { startAgent, tempDir } from './helpers.js';

interface Vmm {
  path: string;
  connectLines: string[];
}

/** A fake VMM socket: `CONNECT <port>` to `port` is relayed to the agent; other ports behave as `answer` says. */
async function fakeVmm(
  t: Parameters<typeof tempDir>[0],
  dir: string,
  agentPath: string,
  port: number,
  otherPort: 'hang-up' | 'refuse',
): Promise<Vmm> {
  const path = join(dir, 'firecracker.vsock');
  const connectLines: string[] = [];
  const open = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (vm) => {
    open.add(vm);
    vm.on('close', () => open.delete(vm));
    let line = '';
    const onData = (c: Buffer): void => {
      line += c.toString('latin1');
      const nl = line.indexOf('\n');
      if (nl < 0) return;
      vm.off('data', onData);
      connectLines.push(line.slice(0, nl + 1));
      const rest = Buffer.from(line.slice(nl + 1), 'latin1');
      if (line.slice(0, nl) !== `CONNECT ${port}`) {
        if (otherPort === 'refuse') vm.end('ERR no listener\n');
        else vm.destroy(); // what Firecracker does when nothing listens in the guest
        return;
      }
      // Answer in two pieces to exercise line reassembly, then relay both ways with half-close.
      vm.write('O');
      setImmediate(() => {
        vm.write('K 1073741824\n');
        const agent = connect({ path: agentPath, allowHalfOpen: true });
        open.add(agent);
        agent.on('close', () => open.delete(agent));
        if (rest.length) agent.write(rest);
        vm.on('data', (d) => agent.write(d));
        vm.on('end', () => agent.end());
        agent.on('data', (d) => vm.write(d));
        agent.on('end', () => vm.end());
      });
    };
    vm.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of open) s.destroy();
      }),
  );
  return { path, connectLines };
}

test('hybrid vsock: CONNECT handshake, then the protocol, for every exchange', async (t) => {
  const dir = await tempDir(t);
  const agentPath = join(dir, 'agent.sock');
  await startAgent(t, `unix://${agentPath}`, { handlers: { 'get-hostos-version': { version: '9.9.9' }, 'attach-hsm': { command: ['true'] } } });
  const vmm = await fakeVmm(t, dir, agentPath, 19090, 'hang-up');

  const address = parseControlAddress(`unix://${vmm.path}?port=19090`);
  assert.deepEqual(address, { kind: 'unix', path: vmm.path, vsockPort: 19090 });
  const client = new GuestClient({ address });
  assert.deepEqual(await client.send({ type: 'get-hostos-version' }), { ok: true, payload: { kind: 'HostOSVersion', version: '9.9.9' } });
  assert.deepEqual(await client.send({ type: 'attach-hsm' }), { ok: true, payload: { kind: 'NoPayload' } });
  // Version question, get-hostos-version, attach-hsm: one handshake per connection.
  assert.deepEqual(vmm.connectLines, ['CONNECT 19090\n', 'CONNECT 19090\n', 'CONNECT 19090\n']);
});

test('hybrid vsock: nobody listening on the port (the VMM hangs up) and an explicit refusal', async (t) => {
  const dir = await tempDir(t);
  const agentPath = join(dir, 'agent.sock');
  await startAgent(t, `unix://${agentPath}`);
  const vmm = await fakeVmm(t, dir, agentPath, 19090, 'hang-up');
  await assert.rejects(
    new GuestClient({ address: parseControlAddress(`unix://${vmm.path}?port=5000`) }).send({ type: 'attach-hsm' }),
    (e: unknown) => isHostlinkError(e, 'channel_closed') && /closed the connection after CONNECT 5000|ECONNRESET/.test(e.message),
  );

  const dir2 = await tempDir(t);
  const refusing = await fakeVmm(t, dir2, agentPath, 19090, 'refuse');
  await assert.rejects(
    new GuestClient({ address: parseControlAddress(`unix://${refusing.path}?port=5000`) }).send({ type: 'attach-hsm' }),
    (e: unknown) => isHostlinkError(e, 'channel_closed') && /answered 'ERR no listener' to CONNECT 5000/.test(e.message),
  );
});
