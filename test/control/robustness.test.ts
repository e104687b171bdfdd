/**
 * The agent under bad input: malformed JSON, unknown commands, oversized and empty requests, forged and
 * unlisted CIDs, guests that never half-close, legacy requests. Each gets a reply, and the agent keeps serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { LEGACY_ACCEPTED, MAX_MESSAGE_BYTES, parseLegacyCommand } from '../../src/control/wire.js';
import { rawExchange, startAgent, tempDir } from './helpers.js';

const OK = '{"Ok":"NoPayload"}';
const ATTACH = '{"sender_cid":3,"message":"attach-hsm"}';

async function agentIn(t: Parameters<typeof tempDir>[0], extra: Record<string, unknown> = {}) {
  const dir = await tempDir(t);
  const sock = join(dir, 'agent.sock');
  await writeFile(join(dir, 'tty'), '');
  const running = await startAgent(t, `unix://${sock}`, {
    ...extra,
    handlers: {
      'attach-hsm': { command: ['true'] },
      notify: { consoles: [join(dir, 'tty')], intervalMs: 1 },
    },
  });
  return { ...running, sock, dir };
}

function errOf(reply: Buffer): string {
  const v = JSON.parse(reply.toString('utf8')) as { Err?: string };
  assert.equal(typeof v.Err, 'string', `expected an Err reply, got ${reply.toString()}`);
  return v.Err!;
}

test('malformed JSON, unknown commands and bad fields get an Err reply and the agent keeps serving', async (t) => {
  const { sock } = await agentIn(t);
  assert.match(errOf(await rawExchange(sock, '{ not json')), /^unable to parse client request: /);
  assert.equal((await rawExchange(sock, ATTACH)).toString(), OK);
  assert.equal(errOf(await rawExchange(sock, '{"sender_cid":3,"message":"reboot-now"}')), "unknown command 'reboot-now'");
  assert.match(errOf(await rawExchange(sock, '{"sender_cid":3,"message":{"notify":{"count":"x","message":"m"}}}')), /count/);
  assert.match(errOf(await rawExchange(sock, Buffer.from([0xc3, 0x28]))), /UTF-8/);
  // A field named twice is two readings of one request (JSON.parse keeps the last, serde refuses): refused,
  // at any depth and however the name is escaped.
  for (const [twice, name] of [
    ['{"sender_cid":4,"sender_cid":3,"message":"attach-hsm"}', 'sender_cid'],
    ['{"sender_cid":3,"message":"attach-hsm","message":"detach-hsm"}', 'message'],
    ['{"sender_cid":3,"sender\\u005fcid":3,"message":"attach-hsm"}', 'sender_cid'],
    ['{"sender_cid":3,"message":{"notify":{"count":1,"count":2,"message":"m"}}}', 'count'],
  ]) {
    assert.equal(errOf(await rawExchange(sock, twice!)), `unable to parse client request: duplicate field \`${name}\``, twice);
  }
  assert.equal((await rawExchange(sock, '{"sender_cid":3,"message":{"notify":{"count":1,"message":"count"}}}')).toString().includes('Err'), false, 'a value equal to a key name is no duplicate');
  assert.equal((await rawExchange(sock, ATTACH)).toString(), OK);
});

test('oversized requests are refused; a request of exactly 64 KiB is served', async (t) => {
  const { sock, agent } = await agentIn(t);
  const big = Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20);
  assert.equal(errOf(await rawExchange(sock, big)), `request too large: more than ${MAX_MESSAGE_BYTES} bytes`);
  // Far larger, and still being written while the agent answers: the agent drains it and replies.
  assert.match(errOf(await rawExchange(sock, Buffer.alloc(4 * 1024 * 1024, 0x7b))), /request too large/);

  const head = '{"sender_cid":3,"message":{"notify":{"count":1,"message":"';
  const tail = '"}}}';
  const exact = head + 'x'.repeat(MAX_MESSAGE_BYTES - head.length - tail.length) + tail;
  assert.equal(Buffer.byteLength(exact), MAX_MESSAGE_BYTES);
  assert.equal((await rawExchange(sock, exact)).toString(), OK);
  await agent.idle();
  assert.equal((await rawExchange(sock, ATTACH)).toString(), OK);
});

test('empty and incomplete requests get an error, not a hang', async (t) => {
  // Not shorter: the complete requests below must not meet the read limit on a loaded machine.
  const { sock } = await agentIn(t, { timeouts: { readMs: 1000 } });
  assert.match(errOf(await rawExchange(sock, '')), /^empty request/);
  // Half a request and no half-close: the read timeout answers.
  assert.match(errOf(await rawExchange(sock, '{"sender_cid":3,"mess', false)), /^no complete request within 1000 ms/);
  // Half a request then EOF: it is parsed and refused.
  assert.match(errOf(await rawExchange(sock, '{"sender_cid":3,"mess')), /unable to parse client request/);
  assert.equal((await rawExchange(sock, ATTACH)).toString(), OK);
});

test('a guest that never half-closes (older reference guests) is answered as soon as its JSON is complete', async (t) => {
  const { sock } = await agentIn(t);
  assert.equal((await rawExchange(sock, ATTACH, false)).toString(), OK);
  // Split across writes, still no half-close.
  const reply = await new Promise<string>((resolve, reject) => {
    const s = connect(sock, () => {
      s.write(ATTACH.slice(0, 10));
      setImmediate(() => s.write(ATTACH.slice(10)));
    });
    let out = '';
    s.on('data', (c) => (out += c));
    s.on('end', () => {
      s.end();
      resolve(out);
    });
    s.on('error', reject);
  });
  assert.equal(reply, OK);
});

test('only configured CIDs are served', async (t) => {
  const { sock } = await agentIn(t, { allowedCids: [3, 7] });
  assert.equal((await rawExchange(sock, '{"sender_cid":7,"message":"attach-hsm"}')).toString(), OK);
  assert.equal(
    errOf(await rawExchange(sock, '{"sender_cid":4,"message":"attach-hsm"}')),
    'this host only accepts requests from guest CID 3, 7; the request claims CID 4',
  );
});

test('a request claiming another CID than the connection really has is refused (unix listener with peerCid)', async (t) => {
  // One unix socket per VM (Firecracker hybrid vsock): the socket tells the real CID, as accept() does on vsock.
  const { sock, logs } = await agentIn(t, { allowedCids: [3, 5], peerCid: 5 });
  assert.equal(
    errOf(await rawExchange(sock, ATTACH)),
    "the sender's real CID (5) does not match the CID in the request (3)",
  );
  assert.equal((await rawExchange(sock, '{"sender_cid":5,"message":"attach-hsm"}')).toString(), OK);
  assert.ok(logs.some((l) => l.includes('cid 5')), 'the log names the real CID');
});

test('legacy-format requests are served and answered in the legacy format', async (t) => {
  const { sock, dir, agent } = await agentIn(t);
  assert.equal((await rawExchange(sock, '{"sender_cid":"3","message":"attach-hsm"}')).toString(), LEGACY_ACCEPTED);
  assert.equal((await rawExchange(sock, '{"sender_cid":"3","message":"notify[3, legacy hello]"}')).toString(), LEGACY_ACCEPTED);
  await agent.idle();
  const { readFile } = await import('node:fs/promises');
  assert.equal(await readFile(join(dir, 'tty'), 'utf8'), '\nlegacy hello\n'.repeat(3));
  // A count past u32 is said to be that, not a missing count.
  for (const count of ['4294967296', '99999999999999999999']) {
    assert.equal(
      (await rawExchange(sock, `{"sender_cid":"3","message":"notify[${count}, hi]"}`)).toString(),
      `{"message": "legacy request: notify's COUNT ${count} is over 4294967295, the largest count", "status": "error"}`,
    );
  }
  assert.equal((await rawExchange(sock, '{"sender_cid":"3","message":"notify[x]"}')).toString(), '{"message": "legacy request: notify needs [COUNT, MESSAGE]", "status": "error"}');
  assert.equal(
    (await rawExchange(sock, '{"sender_cid":"3","message":"format-disk"}')).toString(),
    `{"message": "legacy request: unknown command 'format-disk'", "status": "error"}`,
  );
  assert.equal(
    (await rawExchange(sock, '{"sender_cid":"9","message":"attach-hsm"}')).toString(),
    '{"message": "this host only accepts requests from guest CID 3; the request claims CID 9", "status": "error"}',
  );
  // The legacy host answered; without half-close, as v0 guests did.
  assert.equal((await rawExchange(sock, '{"sender_cid":"3","message":"detach-hsm"}', false)).toString().startsWith('{"message": '), true);
});

test('many concurrent requests are all answered', async (t) => {
  // One unix listener is one peer: let it have every slot.
  const { sock } = await agentIn(t, { maxConnectionsPerPeer: 32 });
  const replies = await Promise.all(Array.from({ length: 20 }, () => rawExchange(sock, ATTACH)));
  assert.deepEqual(replies.map((r) => r.toString()), Array(20).fill(OK));
});

test('concurrent set-node-id requests are handled one at a time: each is accepted, and the file holds the id last run', async (t) => {
  const dir = await tempDir(t);
  const sock = join(dir, 'agent.sock');
  const file = join(dir, 'node-id');
  const ran = join(dir, 'ran.log');
  // The command logs its own id next to what the node-id file held while it ran.
  await startAgent(t, `unix://${sock}`, {
    maxConnections: 64,
    maxConnectionsPerPeer: 64,
    handlers: { 'set-node-id': { nodeIdFile: file, command: ['sh', '-c', 'echo "$1 $(cat "$2")" >> "$3"', 'sh', '{node_id}', file, ran] } },
  });
  const setNodeId = (id: string): string => JSON.stringify({ sender_cid: 3, message: { 'set-node-id': { 'node-id': id } } });
  for (let round = 0; round < 5; round++) {
    const ids = Array.from({ length: 8 }, (_, i) => `node-r${round}-${i}`);
    const replies = await Promise.all(ids.map((id) => rawExchange(sock, setNodeId(id))));
    assert.deepEqual(replies.map((r) => r.toString()), Array(8).fill(OK), `round ${round}`);
  }
  const lines = (await readFile(ran, 'utf8')).trim().split('\n');
  assert.equal(lines.length, 40);
  for (const line of lines) {
    const [id, seen] = line.split(' ');
    assert.equal(seen, id, 'the command ran while the file held its own id');
  }
  assert.equal(await readFile(file, 'utf8'), `${lines.at(-1)!.split(' ')[0]}\n`, 'the file holds the id the command ran with last');
  assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.tmp-')), [], 'no temporary file is left');
});

test('a node id that cannot be written is refused without the host\'s path; the log has the details', async (t) => {
  const dir = await tempDir(t);
  const sock = join(dir, 'agent.sock');
  const { logs } = await startAgent(t, `unix://${sock}`, { handlers: { 'set-node-id': { nodeIdFile: join(dir, 'missing', 'node-id') } } });
  const reply = errOf(await rawExchange(sock, '{"sender_cid":3,"message":{"set-node-id":{"node-id":"n1"}}}'));
  assert.equal(reply, "the host could not record the node id in handlers.set-node-id.nodeIdFile; the host's agent log has the details");
  assert.ok(logs.some((l) => l.includes(join(dir, 'missing', 'node-id')) && /ENOENT/.test(l)), logs.join('\n'));
});

test('a second agent cannot take over a live socket; a stale socket file is replaced', async (t) => {
  const { sock } = await agentIn(t);
  const { ControlAgent } = await import('../../src/control/agent.js');
  const { resolveAgentConfig } = await import('../../src/control/config.js');
  const second = new ControlAgent(resolveAgentConfig({}), { log: () => undefined });
  await assert.rejects(second.listen({ kind: 'unix', path: sock }), /another process is serving it/);
  await second.close();

  // A socket file with nobody behind it (an agent that was killed) is replaced.
  const dir = await tempDir(t);
  const stale = join(dir, 'stale.sock');
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(stale, r));
  // Close the listener but keep the file, as a crash would.
  const { rename } = await import('node:fs/promises');
  await rename(stale, stale + '.keep');
  await new Promise<void>((r) => srv.close(() => r()));
  await rename(stale + '.keep', stale);
  const third = await startAgent(t, `unix://${stale}`, { handlers: { 'attach-hsm': { command: ['true'] } } });
  assert.equal(third.address, `unix://${stale}`);
  assert.equal((await rawExchange(stale, ATTACH)).toString(), OK);
});

test('connections over the limit: an idle one gives way, a busy one does not; either way the refused one gets an Err reply', async (t) => {
  const dir = await tempDir(t);
  const sock = join(dir, 'agent.sock');
  const go = join(dir, 'go');
  const started = join(dir, 'started');
  await startAgent(t, `unix://${sock}`, {
    maxConnections: 1,
    handlers: {
      'attach-hsm': { command: ['true'] },
      // Busy until the test creates the file.
      'detach-hsm': { command: ['sh', '-c', ': > "$2"; while [ ! -e "$1" ]; do sleep 0.02; done', 'sh', go, started] },
    },
  });
  // An idle connection (connected, nothing sent) is evicted with an Err reply when the slot is needed.
  const held = connect(sock);
  const heldReply = new Promise<string>((resolve) => {
    let out = '';
    held.on('data', (c) => (out += c));
    held.on('end', () => resolve(out));
    held.on('error', () => resolve(out));
  });
  t.after(() => held.destroy());
  await once(held, 'connect');
  // The agent registers a connection asynchronously: ask until the held one has been evicted.
  let reply = '';
  for (let i = 0; i < 200 && reply !== OK; i++) reply = (await rawExchange(sock, ATTACH)).toString();
  assert.equal(reply, OK);
  assert.match(errOf(Buffer.from(await heldReply)), /needed this connection slot for another request/);

  // A connection whose request is being handled keeps its slot: the newcomer is refused, with a reason.
  const busy = rawExchange(sock, '{"sender_cid":3,"message":"detach-hsm"}');
  while (!existsSync(started)) await new Promise((r) => setTimeout(r, 10)); // the test's timeout guards a hang
  let refused = '';
  for (let i = 0; i < 200 && !refused.startsWith('{"Err"'); i++) {
    refused = (await rawExchange(sock, ATTACH)).toString();
    if (!refused.startsWith('{"Err"')) await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(errOf(Buffer.from(refused)), 'the agent is already serving 1 connections from this peer (maxConnectionsPerPeer); retry later');
  await writeFile(go, '');
  assert.equal((await busy).toString(), OK);
  assert.equal((await rawExchange(sock, ATTACH)).toString(), OK, 'served again once the busy connection is done');
});

test('a command that ignores SIGTERM, or leaves a child holding its output, gives its slot back', { timeout: 60_000 }, async (t) => {
  // maxCommands 1: attach-hsm's command outlives its request (it ignores SIGTERM, or exits at once leaving a
  // child behind); detach-hsm must still run afterwards. Each used to hold the one slot until that process ended.
  for (const [why, script] of [
    ['ignores SIGTERM', "trap '' TERM; sleep 30"],
    ['leaves a child', 'sleep 30 & exit 0'],
  ] as const) {
    const dir = await tempDir(t);
    const sock = join(dir, 'agent.sock');
    await startAgent(t, `unix://${sock}`, {
      maxCommands: 1,
      timeouts: { requestMs: 500 },
      handlers: { 'attach-hsm': { command: ['sh', '-c', script] }, 'detach-hsm': { command: ['true'] } },
    });
    await rawExchange(sock, ATTACH);
    // The first command is stopped (SIGTERM, then SIGKILL a grace later) or its leftovers killed at its exit.
    let reply = '';
    for (let i = 0; i < 40 && reply !== OK; i++) {
      reply = (await rawExchange(sock, '{"sender_cid":3,"message":"detach-hsm"}')).toString();
      if (reply !== OK) await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(reply, OK, `${why}: the slot never came back (${reply})`);
  }
});

test('a legacy request of many spaces and one stray character is refused at once, in linear time', { timeout: 30_000 }, async (t) => {
  // Adjacent optional spaces in the legacy pattern backtracked quadratically: 65,000 spaces and an `x` (the most
  // a request holds) held the agent's event loop for 5-20 s, every guest's requests with it. The parser alone,
  // given 1,000,000 spaces, would have taken hours; it answers in linear time.
  assert.throws(() => parseLegacyCommand(`attach-hsm${' '.repeat(1_000_000)}x`), /could not match 'attach-hsm {70}… \(1000011 characters\)' to a command/);
  assert.deepEqual(parseLegacyCommand('  set-node-id [ node-1 ]  '), { type: 'set-node-id', nodeId: 'node-1' });
  assert.deepEqual(parseLegacyCommand('detach-hsm'), { type: 'detach-hsm' });
  assert.throws(() => parseLegacyCommand('attach-hsm x'), /could not match/);
  const { sock } = await agentIn(t);
  const reply = (await rawExchange(sock, `{"sender_cid":"3","message":"attach-hsm${' '.repeat(65_000)}x"}`)).toString();
  assert.match(reply, /"legacy request: could not match 'attach-hsm {70}… \(65011 characters\)' to a command", "status": "error"/);
  assert.equal((await rawExchange(sock, '{"sender_cid":"3","message":"attach-hsm"}')).toString(), LEGACY_ACCEPTED);
});
