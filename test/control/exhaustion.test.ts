/**
 * The agent as a process with few descriptors (`ulimit -n 64`, about 40 above what Node itself holds): a guest
 * floods it with notifications (which used to hold two console descriptors each for 18 s), concurrent commands
 * and idle connections. Every request gets a reply or a clean refusal, the process does not die on EMFILE, and
 * afterwards it serves normally again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers.js';

const BIN = fileURLToPath(new URL('../../../bin/hostlink.js', import.meta.url));
const OK = '{"Ok":"NoPayload"}';
const ATTACH = '{"sender_cid":3,"message":"attach-hsm"}';

/** One exchange; a connection the agent could not even accept (EMFILE) resolves to '' instead of failing. */
function exchange(where: string, body: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(where, () => s.end(body));
    let out = '';
    s.on('data', (c) => (out += c));
    s.on('end', () => resolve(out));
    s.on('error', () => resolve(out));
    s.on('close', () => resolve(out));
  });
}

test('with 64 descriptors, floods of notifications, commands and connections get replies and the agent survives', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const sock = join(dir, 'agent.sock');
  const config = join(dir, 'agent.json');
  for (const tty of ['tty1', 'tty2']) await writeFile(join(dir, tty), '');
  await writeFile(
    config,
    JSON.stringify({
      handlers: {
        'attach-hsm': { command: ['sh', '-c', 'sleep 0.05'] },
        // Long notifications: each stays pending for a minute unless the agent bounds them.
        notify: { consoles: [join(dir, 'tty1'), join(dir, 'tty2')], intervalMs: 60_000, maxCount: 2 },
      },
    }),
  );
  const agent = spawn('sh', ['-c', 'ulimit -n 64 && exec "$0" "$@"', process.execPath, BIN, 'agent', '--listen', `unix://${sock}`, '--config', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  agent.stderr.setEncoding('utf8');
  const up = new Promise<void>((resolve, reject) => {
    agent.stderr.on('data', (s: string) => {
      stderr += s;
      if (stderr.includes('listening on')) resolve();
    });
    agent.on('exit', (code) => reject(new Error(`the agent exited (${code}) before listening: ${stderr}`)));
  });
  t.after(() => {
    if (agent.exitCode === null) agent.kill('SIGKILL');
  });
  await up;
  const alive = (): void => assert.equal(agent.exitCode, null, `the agent died:\n${stderr.slice(-3000)}`);

  // 1. Notifications, one after another: the agent holds at most maxPending; the rest are refused.
  const notify = JSON.stringify({ sender_cid: 3, message: { notify: { count: 2, message: 'flood' } } });
  const notifyReplies: string[] = [];
  for (let i = 0; i < 60; i++) notifyReplies.push(await exchange(sock, notify));
  alive();
  assert.ok(notifyReplies.every((r) => r === OK || r.startsWith('{"Err":"the host is still writing')), notifyReplies.find((r) => r !== OK));
  assert.ok(notifyReplies.some((r) => r.startsWith('{"Err"')), 'some notifications were refused');

  // 2. Commands at once, more than the descriptors allow: each gets an answer (done, or why not).
  const commandReplies = await Promise.all(Array.from({ length: 40 }, () => exchange(sock, ATTACH)));
  alive();
  assert.ok(commandReplies.includes(OK), 'some commands ran');
  for (const r of commandReplies) assert.ok(r === '' || r === OK || r.startsWith('{"Err"'), r);

  // 3. Connections that send nothing and never read, far more than the descriptors: the agent hands their
  // slots to newcomers and answers what it can; what it cannot accept (EMFILE) is closed by the OS.
  const idle: Socket[] = [];
  for (let i = 0; i < 120; i++) {
    const s = connect({ path: sock, allowHalfOpen: true });
    s.on('error', () => undefined);
    s.pause();
    idle.push(s);
  }
  await Promise.all(idle.map((s) => Promise.race([once(s, 'connect'), once(s, 'close')])));
  const during = await Promise.all(Array.from({ length: 10 }, () => exchange(sock, ATTACH)));
  alive();
  for (const r of during) assert.ok(r === '' || r === OK || r.startsWith('{"Err"'), r);
  for (const s of idle) s.destroy();

  // 4. ...and afterwards everything works as before.
  let after = '';
  for (let i = 0; i < 50 && after !== OK; i++) {
    after = await exchange(sock, ATTACH);
    if (after !== OK) await new Promise((r) => setTimeout(r, 20));
  }
  alive();
  assert.equal(after, OK);
  assert.match(stderr, /EMFILE/, 'the flood did run the agent out of descriptors');

  agent.kill('SIGTERM');
  const [code] = (await once(agent, 'exit')) as [number | null];
  assert.equal(code, 0, stderr.slice(-2000));
  assert.doesNotMatch(stderr, /Unhandled|uncaught|TypeError/i);
});
