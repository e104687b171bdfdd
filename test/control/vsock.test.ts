/**
 * vsock through socat. What runs depends on the machine, and each test says why it skips:
 * - the bridge script (socat per connection -> the agent's private socket, with the peer CID from socat's
 *   SOCAT_PEERADDR) is driven directly, as socat would run it: needs socat, not vsock;
 * - the end-to-end test (agent on VSOCK-LISTEN, guest over VSOCK-CONNECT to CID 1) needs socat, /dev/vsock
 *   and the vsock_loopback transport; it includes the forged-CID check with a CID set by the kernel;
 * - a guest whose host is not there must say "could not reach", with or without socat.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { ControlAgent } from '../../src/control/agent.js';
import { listenArgs } from '../../src/control/bridge.js';
import { GuestClient } from '../../src/control/client.js';
import { resolveAgentConfig } from '../../src/control/config.js';
import { encodeRequest, type Response } from '../../src/control/wire.js';
import { isHostlinkError } from '../../src/errors.js';

const SOCAT = spawnSync('socat', ['-V'], { encoding: 'utf8' });
const HAVE_SOCAT = SOCAT.status === 0 && /VSOCK/.test(SOCAT.stdout);
const NO_SOCAT = 'socat with VSOCK support is not installed (apt-get install socat)';

const CONFIG = { allowedCids: [1, 3], handlers: { 'attach-hsm': { command: ['true'] }, 'get-hostos-version': { version: '7.0.0' } } };

/** Runs the bridge script the way socat's fork+EXEC would, with the given peer CID. */
function throughBridge(files: Awaited<ReturnType<ControlAgent['openBridge']>>, peerCid: string, request: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(files.scriptPath, [], { env: { ...process.env, ...files.env, SOCAT_PEERADDR: peerCid }, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', () => resolve(out));
    child.stdin.end(request);
  });
}

test('vsock bridge script: the peer CID comes from socat, and a request claiming another CID is refused', { skip: HAVE_SOCAT ? false : NO_SOCAT }, async (t) => {
  const agent = new ControlAgent(resolveAgentConfig(CONFIG), { log: () => undefined });
  t.after(() => agent.close());
  const files = await agent.openBridge();
  const attach = encodeRequest({ senderCid: 3, command: { type: 'attach-hsm' } });

  assert.equal(await throughBridge(files, '3', attach), '{"Ok":"NoPayload"}');
  assert.equal(
    await throughBridge(files, '1', attach),
    `{"Err":"the sender's real CID (1) does not match the CID in the request (3)"}`,
  );
  // No CID from socat (not a vsock connection): the agent drops the connection rather than trust the request.
  assert.equal(await throughBridge(files, '', attach), '');
});

test('vsock end to end over the loopback transport, including a forged CID', async (t) => {
  if (!HAVE_SOCAT) return t.skip(NO_SOCAT);
  if (!existsSync('/dev/vsock')) return t.skip('no /dev/vsock: this kernel has no vsock');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const agent = new ControlAgent(resolveAgentConfig(CONFIG), { log: () => undefined });
  t.after(() => agent.close());
  try {
    await agent.listen({ kind: 'vsock', cid: 0xffff_ffff, port });
  } catch (e) {
    return t.skip(`cannot listen on vsock here: ${(e as Error).message}`);
  }
  const guest = (cid: number): GuestClient =>
    new GuestClient({ address: { kind: 'vsock', cid: 1, port }, senderCid: cid, connectTimeoutMs: 1000 });
  let first: Response;
  try {
    first = await guest(1).send({ type: 'get-hostos-version' });
  } catch (e) {
    if (isHostlinkError(e, 'channel_closed') && /could not connect/.test(e.message)) {
      // Typical inside a VM: vsock reaches the hypervisor (CID 2) but there is no local loopback (CID 1),
      // so a guest and an agent on one machine cannot meet, and the kernel-set peer CID cannot be tested.
      return t.skip(`no vsock loopback (CID 1) on this machine (load vsock_loopback to run it): ${e.message}`);
    }
    throw e;
  }
  assert.deepEqual(first, { ok: true, payload: { kind: 'HostOSVersion', version: '7.0.0' } });
  // The kernel says the peer is CID 1; the request claims 3 (allowed): refused.
  assert.deepEqual(await guest(3).send({ type: 'attach-hsm' }), {
    ok: false,
    error: "the sender's real CID (1) does not match the CID in the request (3)",
  });
});

test('a guest whose vsock host is not there reports "could not connect" (socat or not)', async () => {
  const port = 40000 + Math.floor(Math.random() * 20000);
  const client = new GuestClient({ address: { kind: 'vsock', cid: 2, port }, connectTimeoutMs: 1000 });
  await assert.rejects(client.send({ type: 'attach-hsm' }), (e: unknown) => {
    assert.ok(isHostlinkError(e, 'channel_closed') || isHostlinkError(e, 'timeout'), String(e));
    if (!HAVE_SOCAT) assert.match((e as Error).message, /apt-get install socat/);
    else assert.match((e as Error).message, /could not connect to vsock:\/\/2:/);
    return true;
  });
  // And without socat at all, the message says what to install.
  const missing = new GuestClient({ address: { kind: 'vsock', cid: 2, port }, socatPath: '/nonexistent/socat' });
  await assert.rejects(missing.send({ type: 'attach-hsm' }), (e: unknown) => isHostlinkError(e, 'channel_closed') && /was not found.*apt-get install socat/.test((e as Error).message));
});

test('the vsock listener bridges at most maxConnections connections at once: idle guests cannot pile up host processes', { skip: HAVE_SOCAT ? false : NO_SOCAT }, async (t) => {
  // The agent's own listen arguments, with TCP-LISTEN in place of VSOCK-LISTEN (this machine may have no vsock
  // loopback; socat forks and runs the bridge the same way for both). Each bridged connection holds four
  // processes until the guest hangs up: unbounded, 80 idle connections held 320 processes for minutes.
  const maxConnections = 3;
  const agent = new ControlAgent(resolveAgentConfig({ ...CONFIG, maxConnections, maxConnectionsPerPeer: maxConnections }), { log: () => undefined });
  t.after(() => agent.close());
  const files = await agent.openBridge();
  const port = 20000 + Math.floor(Math.random() * 20000);
  const wrapper = join(files.dir, 'as-cid-3.sh');
  writeFileSync(wrapper, `#!/bin/sh\nSOCAT_PEERADDR=3 exec ${files.scriptPath}\n`, { mode: 0o700 });
  const args = listenArgs(port, files, maxConnections).map((a) =>
    a.startsWith('VSOCK-LISTEN:') ? a.replace(/^VSOCK-LISTEN:\d+/, `TCP-LISTEN:${port},bind=127.0.0.1`) : a.startsWith('EXEC:') ? `EXEC:${wrapper}` : a,
  );
  const socat = spawn('socat', args, { env: { ...process.env, ...files.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => socat.kill('SIGKILL'));
  await new Promise<void>((resolve) => {
    let err = '';
    socat.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/listening on/.test(err)) resolve();
    });
  });
  const descendants = (): number => {
    const rows = spawnSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
    const kids = new Map<number, number[]>();
    for (const [pid, ppid] of rows) kids.set(ppid!, [...(kids.get(ppid!) ?? []), pid!]);
    let n = 0;
    const walk = (p: number): void => {
      for (const k of kids.get(p) ?? []) {
        n++;
        walk(k);
      }
    };
    walk(socat.pid!);
    return n;
  };
  const idle: Socket[] = [];
  t.after(() => idle.forEach((s) => s.destroy()));
  for (let i = 0; i < 6 * maxConnections; i++) {
    const c = connect(port, '127.0.0.1');
    c.on('error', () => undefined);
    idle.push(c); // sends nothing and never closes
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 1000));
  const held = descendants();
  assert.ok(held > 0, 'no connection was bridged');
  assert.ok(held <= 4 * maxConnections, `${held} processes under the bridge for ${idle.length} idle connections (at most ${4 * maxConnections})`);
});
