/**
 * A compromised guest against a real agent: non-canonical CIDs, requests over 64 KiB whose JSON completes early,
 * requests sent in many small writes, terminal control sequences for the host's consoles and log, idle
 * connections that would lock the real guest out, and more pending notifications than the agent will hold.
 * Each is refused with an Err reply (or neutralised) and the agent keeps serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { MAX_MESSAGE_BYTES } from '../../src/control/wire.js';
import { rawExchange, startAgent, tempDir } from './helpers.js';

const OK = '{"Ok":"NoPayload"}';
const ATTACH = '{"sender_cid":3,"message":"attach-hsm"}';

async function agentIn(t: Parameters<typeof tempDir>[0], extra: Record<string, unknown> = {}, notify: Record<string, unknown> = {}) {
  const dir = await tempDir(t);
  const sock = join(dir, 'agent.sock');
  const hsmLog = join(dir, 'hsm.log');
  for (const tty of ['tty1', 'tty2']) await writeFile(join(dir, tty), '');
  const running = await startAgent(t, `unix://${sock}`, {
    ...extra,
    handlers: {
      'attach-hsm': { command: ['sh', '-c', `echo attach >> ${hsmLog}`] },
      notify: { consoles: [join(dir, 'tty1'), join(dir, 'tty2')], intervalMs: 1, ...notify },
    },
  });
  return { ...running, sock, dir, hsmLog };
}

function errOf(reply: Buffer | string): string {
  const v = JSON.parse(reply.toString()) as { Err?: string };
  assert.equal(typeof v.Err, 'string', `expected an Err reply, got ${reply.toString()}`);
  return v.Err!;
}

/** Writes `parts` one at a time (each its own write, the next after the previous was flushed), then half-closes. */
function exchangeInParts(where: string, parts: (string | Buffer)[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(where);
    let out = '';
    s.on('data', (c) => (out += c));
    s.on('end', () => {
      s.end();
      resolve(out);
    });
    s.on('error', reject);
    s.on('connect', () => {
      let i = 0;
      const next = (): void => {
        if (i === parts.length) return void s.end();
        s.write(parts[i++]!, () => setImmediate(next));
      };
      next();
    });
  });
}

test('sender_cid must be a canonical integer: 3.0000000000000001, 3.0, 3e0, -0 and "03" are refused, nothing runs', async (t) => {
  const { sock, hsmLog } = await agentIn(t, { allowedCids: [0, 3] });
  for (const cid of ['3.0000000000000001', '3.0', '3e0', '3E0', '30e-1', '-0', '0.0']) {
    const reply = await rawExchange(sock, `{"sender_cid":${cid},"message":"attach-hsm"}`);
    assert.match(errOf(reply), /sender_cid .* is not a 32-bit unsigned integer written as plain digits/, cid);
  }
  // Spelling the key with an escape does not hide the value from the check.
  assert.match(errOf(await rawExchange(sock, '{"sender\\u005fcid":3.0,"message":"attach-hsm"}')), /plain digits/);
  // Duplicate keys are refused before any value is looked at (robustness.test.ts has more).
  assert.equal(errOf(await rawExchange(sock, '{"sender_cid":3,"sender_cid":3.0,"message":"attach-hsm"}')), 'unable to parse client request: duplicate field `sender_cid`');
  // Legacy: the CID is a string of digits without leading zeros.
  for (const cid of ['03', '003', '+3', ' 3', '3 ']) {
    const reply = (await rawExchange(sock, `{"sender_cid":"${cid}","message":"attach-hsm"}`)).toString();
    assert.match(reply, /^\{"message": "legacy request: sender_cid '.*' is not a 32-bit unsigned integer written as plain digits", "status": "error"\}$/, cid);
  }
  // notify's count is a u32 as well.
  assert.match(errOf(await rawExchange(sock, '{"sender_cid":3,"message":{"notify":{"count":1.0,"message":"m"}}}')), /'count' must be .* plain digits/);
  assert.equal(existsSync(hsmLog), false, 'no refused request ran its command');
  // Canonical spellings still work, in both formats, with whitespace around the number.
  assert.equal((await rawExchange(sock, '{"sender_cid": 3 ,"message":"attach-hsm"}')).toString(), OK);
  assert.equal((await rawExchange(sock, '{"sender_cid":0,"message":"attach-hsm"}')).toString(), OK);
  assert.equal((await rawExchange(sock, '{"sender_cid":"3","message":"attach-hsm"}')).toString(), '{"message": "accepted request", "status": "ok"}');
  assert.equal(await readFile(hsmLog, 'utf8'), 'attach\n'.repeat(3));
});

test('the 64 KiB limit is on bytes received: a complete request followed by padding over the limit is refused and not run', async (t) => {
  const { sock, hsmLog } = await agentIn(t);
  const tooBig = `request too large: more than ${MAX_MESSAGE_BYTES} bytes`;
  // One write: JSON first, whitespace after, 64 KiB + 1 in all.
  const padded = ATTACH + ' '.repeat(MAX_MESSAGE_BYTES + 1 - ATTACH.length);
  assert.equal(errOf(await rawExchange(sock, padded)), tooBig);
  // Far more padding, and newlines rather than spaces.
  assert.equal(errOf(await rawExchange(sock, ATTACH + '\n'.repeat(200_000))), tooBig);
  // The same without half-close (the agent must not run it while the padding is still arriving).
  assert.equal(errOf(await rawExchange(sock, padded, false)), tooBig);
  // The JSON and the padding in separate writes, half-closed.
  assert.equal(errOf(await exchangeInParts(sock, [ATTACH, ' '.repeat(40_000), ' '.repeat(40_000)])), tooBig);
  assert.equal(existsSync(hsmLog), false, 'no oversized request ran');
  // Something other than whitespace after the object is an error at once.
  assert.match(errOf(await rawExchange(sock, ATTACH + '{"sender_cid":3,"message":"detach-hsm"}')), /unexpected data after the request object/);
  assert.equal(existsSync(hsmLog), false);

  // Within the limit, padding is fine.
  const exact = ATTACH + ' '.repeat(MAX_MESSAGE_BYTES - ATTACH.length);
  assert.equal((await rawExchange(sock, exact)).toString(), OK);
  assert.equal(await readFile(hsmLog, 'utf8'), 'attach\n');
});

test('a request sent in many small writes is parsed once, not once per write', async (t) => {
  const { sock, dir, agent } = await agentIn(t);
  // Every part ends in '}', the byte that made the old reader re-join and re-parse everything received so far.
  const message = '}'.repeat(3000);
  const whole = `{"sender_cid":3,"message":{"notify":{"count":1,"message":"${message}"}}}`;
  const parts: string[] = [];
  for (let i = 0; i < whole.length; i += 10) parts.push(whole.slice(i, i + 10));
  const parse = JSON.parse;
  let parses = 0;
  JSON.parse = ((text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
    parses++;
    return parse(text, reviver);
  }) as typeof JSON.parse;
  let reply: string;
  try {
    reply = await exchangeInParts(sock, parts);
  } finally {
    JSON.parse = parse;
  }
  assert.equal(reply, OK);
  // One parse of the whole request; the old reader re-joined and re-parsed everything at every '}'.
  assert.equal(parses, 1, `JSON.parse ran ${parses} times for a request sent in ${parts.length} writes`);
  await agent.idle();
  assert.equal(await readFile(join(dir, 'tty1'), 'utf8'), `\n${message}\n`);
});

test('console output is stripped of control characters except newline; log lines show them escaped', async (t) => {
  const { sock, dir, agent, logs } = await agentIn(t);
  const evil = 'a\u001b[2J\u001b]0;owned\u0007b\rc\bd\te\u007ff\u009b31mg\u0085h\u202ei\u0000j\nk';
  const req = JSON.stringify({ sender_cid: 3, message: { notify: { count: 2, message: evil } } });
  assert.equal((await rawExchange(sock, req)).toString(), OK);
  await agent.idle();
  const want = '\na[2J]0;ownedbcdef31mghij\nk\n'.repeat(2);
  for (const tty of ['tty1', 'tty2']) assert.equal(await readFile(join(dir, tty), 'utf8'), want, tty);

  // Guest text reaches the agent's log only escaped (here an unknown command name and a node id).
  await rawExchange(sock, JSON.stringify({ sender_cid: 3, message: 'x\u001b[31m\r\n' }));
  await rawExchange(sock, JSON.stringify({ sender_cid: 3, message: { 'set-node-id': { 'node-id': 'n\u001b]2;t\u0007' } } }));
  assert.ok(logs.length > 0);
  for (const line of logs) assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f]/, line);
  assert.ok(logs.some((l) => l.includes('x\\u001b[31m\\u000d\\u000a')), logs.join('\n'));
});

test('a console that does not exist is an error naming its entry, and is never created', async (t) => {
  const dir = await tempDir(t);
  const sock = join(dir, 'agent.sock');
  const [tty, gone] = [join(dir, 'tty1'), join(dir, 'ttyS9')];
  await writeFile(tty, '');
  const { agent, logs } = await startAgent(t, `unix://${sock}`, { handlers: { notify: { consoles: [tty, gone], intervalMs: 1 } } });
  const reply = errOf(await rawExchange(sock, '{"sender_cid":3,"message":{"notify":{"count":2,"message":"hello"}}}'));
  assert.equal(reply, "cannot open console handlers.notify.consoles[1]: it does not exist (the agent never creates one); nothing was written, the host's agent log has the details");
  await agent.idle();
  assert.equal(existsSync(gone), false, 'the missing console was not created');
  assert.equal(await readFile(tty, 'utf8'), '', 'nothing was written to the console that exists either');
  assert.ok(logs.some((l) => l.startsWith(`notify: cannot open console ${gone}: ENOENT`) && /does not create consoles/.test(l)), logs.join('\n'));
});

test('a version file that never ends (/dev/zero) is refused after 4 KiB; the agent keeps serving', async (t) => {
  // The file used to be read whole: /dev/zero until the string limit, ~620 MB of the agent's memory per request.
  const dir = await tempDir(t);
  const sock = join(dir, 'agent.sock');
  await startAgent(t, `unix://${sock}`, { handlers: { 'get-hostos-version': { versionFile: '/dev/zero' } } });
  const request = '{"sender_cid":3,"message":"GetHostOSVersion"}';
  for (let i = 0; i < 2; i++) {
    assert.equal(errOf(await rawExchange(sock, request)), 'the HostOS version file /dev/zero holds more than 4096 bytes: it should hold one version line');
  }
});

test('40 idle connections cannot lock the real guest out', async (t) => {
  const { sock } = await agentIn(t);
  const idle: Socket[] = [];
  t.after(() => idle.forEach((s) => s.destroy()));
  for (let i = 0; i < 40; i++) {
    const s = connect(sock);
    s.on('error', () => undefined);
    s.resume();
    idle.push(s);
    await new Promise((r) => s.on('connect', r));
  }
  // More idle connections than maxConnections: the guest's request still gets a slot, at once.
  for (let i = 0; i < 5; i++) assert.equal((await rawExchange(sock, ATTACH)).toString(), OK);
  idle.forEach((s) => s.destroy());
});

test('a connection that sends nothing is answered after idleMs and closed', async (t) => {
  const { sock } = await agentIn(t, { timeouts: { idleMs: 50 } });
  assert.equal(errOf(await rawExchange(sock, '', false)), 'no data for 50 ms: send one JSON request right after connecting, then half-close the connection');
});

test('one TCP peer cannot take the slots of another: the per-peer limit is below the total', async (t) => {
  const dir = await tempDir(t);
  const go = join(dir, 'go');
  const started = join(dir, 'started');
  const { address } = await startAgent(t, '127.0.0.1:0', {
    maxConnections: 4,
    maxConnectionsPerPeer: 2,
    handlers: {
      'attach-hsm': { command: ['true'] },
      'detach-hsm': { command: ['sh', '-c', 'echo >> "$2"; while [ ! -e "$1" ]; do sleep 0.02; done', 'sh', go, started] },
    },
  });
  const port = Number(address.split(':').pop());
  const from = (localAddress: string, body: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, localAddress }, () => s.end(body));
      let out = '';
      s.on('data', (c) => (out += c));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
  // Peer 127.0.0.2 keeps two requests busy: its third is refused...
  const busy = [from('127.0.0.2', '{"sender_cid":3,"message":"detach-hsm"}'), from('127.0.0.2', '{"sender_cid":3,"message":"detach-hsm"}')];
  while ((await readFile(started, 'utf8').catch(() => '')).length < 2) await new Promise((r) => setTimeout(r, 10));
  assert.equal(errOf(await from('127.0.0.2', ATTACH)), 'the agent is already serving 2 connections from this peer (maxConnectionsPerPeer); retry later');
  // ...while the guest at 127.0.0.1 is served.
  assert.equal(await from('127.0.0.1', ATTACH), OK);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(go, '');
  assert.deepEqual(await Promise.all(busy), [OK, OK]);
});

test('pending notifications are bounded: one over maxPending is an Err reply, and room comes back when one is done', async (t) => {
  const { sock, agent, dir } = await agentIn(t, {}, { maxPending: 2, intervalMs: 60_000 });
  const notify = (n: number): string => JSON.stringify({ sender_cid: 3, message: { notify: { count: n, message: 'hello' } } });
  assert.equal((await rawExchange(sock, notify(2))).toString(), OK);
  assert.equal((await rawExchange(sock, notify(2))).toString(), OK);
  assert.equal(
    errOf(await rawExchange(sock, notify(2))),
    'the host is still writing 2 notifications (handlers.notify.maxPending); retry when they are done',
  );
  // The agent keeps serving everything else, and close() ends the waiting notifications.
  assert.equal((await rawExchange(sock, ATTACH)).toString(), OK);
  await agent.close();
  assert.equal(await readFile(join(dir, 'tty1'), 'utf8'), '\nhello\n'.repeat(2));
});

test('a notification that finishes gives its slot back', async (t) => {
  const { sock, agent } = await agentIn(t, {}, { maxPending: 1 });
  const one = JSON.stringify({ sender_cid: 3, message: { notify: { count: 3, message: 'x' } } });
  for (let i = 0; i < 3; i++) {
    assert.equal((await rawExchange(sock, one)).toString(), OK);
    await agent.idle();
  }
});

test('vsock bridge: the per-peer limit counts the CID the kernel reported, so another VM cannot take the guest\'s slots', async (t) => {
  const dir = await tempDir(t);
  const go = join(dir, 'go');
  const started = join(dir, 'started');
  const { ControlAgent } = await import('../../src/control/agent.js');
  const { resolveAgentConfig } = await import('../../src/control/config.js');
  const agent = new ControlAgent(
    resolveAgentConfig({
      allowedCids: [3, 4],
      maxConnections: 4,
      maxConnectionsPerPeer: 2,
      handlers: {
        'attach-hsm': { command: ['true'] },
        'detach-hsm': { command: ['sh', '-c', 'echo >> "$2"; while [ ! -e "$1" ]; do sleep 0.02; done', 'sh', go, started] },
      },
    }),
    { log: () => undefined },
  );
  t.after(() => agent.close());
  // The bridge's unix socket, spoken to as the bridge script would (header line first): no socat needed.
  const files = await agent.openBridge();
  const as = (cid: number, body: string): Promise<string> =>
    rawExchange(files.socketPath, `HOSTLINK-PEER-CID ${cid}\n${body}`).then((b) => b.toString());
  const busy = [as(4, '{"sender_cid":4,"message":"detach-hsm"}'), as(4, '{"sender_cid":4,"message":"detach-hsm"}')];
  while ((await readFile(started, 'utf8').catch(() => '')).length < 2) await new Promise((r) => setTimeout(r, 10));
  assert.equal(errOf(await as(4, '{"sender_cid":4,"message":"attach-hsm"}')), 'the agent is already serving 2 connections from this peer (maxConnectionsPerPeer); retry later');
  assert.equal(await as(3, ATTACH), OK);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(go, '');
  assert.deepEqual(await Promise.all(busy), [OK, OK]);
});
