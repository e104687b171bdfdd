/** `hostlink guest` and `hostlink agent` as processes: output, exit codes, and the agent's lifecycle. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseControlAddress } from '../../src/control/address.js';
import { GuestClient } from '../../src/control/client.js';
import { exitAfterOutput } from '../helpers.js';
import { serveHttp, startAgent, tempDir } from './helpers.js';

const BIN = fileURLToPath(new URL('../../../bin/hostlink.js', import.meta.url));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without blocking this process's event loop (the agent under test lives here). */
function hostlink(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * `hostlink agent ARGS` as a process, once it listens: its stderr so far, a wait for a text in it, and its exit.
 * Killed at the end of the test if still running.
 */
async function agentProcess(t: TestContext, args: string[]) {
  const agent = spawn(process.execPath, [BIN, 'agent', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => {
    if (agent.exitCode === null) agent.kill('SIGKILL');
  });
  const exited = exitAfterOutput(agent).then((s) => [s.code, s.signal] as const);
  let stderr = '';
  agent.stderr.on('data', (c) => (stderr += c));
  const saw = (text: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (stderr.includes(text)) resolve();
        else if (agent.exitCode !== null || agent.signalCode !== null) reject(new Error(`agent exited before '${text}': ${stderr}`));
        else setTimeout(check, 20);
      };
      check();
    });
  await saw('listening on');
  return { agent, exited, saw, stderr: () => stderr };
}

test('hostlink guest: payloads on stdout, exit 0; refusal exit 1; usage exit 2; unreachable exit 3; garbage exit 4', async (t) => {
  const dir = await tempDir(t);
  const sock = join(dir, 'agent.sock');
  await writeFile(join(dir, 'tty'), '');
  await startAgent(t, `unix://${sock}`, {
    allowedCids: [3, 6],
    handlers: {
      'get-hostos-version': { version: '2024.05.1' },
      'attach-hsm': { command: ['true'] },
      'detach-hsm': { command: ['sh', '-c', 'echo "no HSM device found" >&2; exit 1'] },
      'set-node-id': { nodeIdFile: join(dir, 'node-id') },
      notify: { consoles: [join(dir, 'tty')], intervalMs: 1 },
    },
  });
  const addr = `--addr=unix://${sock}`;

  assert.deepEqual(await hostlink(['guest', addr, 'protocol-version']), { code: 0, stdout: '1.0.0\n', stderr: '' });
  assert.deepEqual(await hostlink(['guest', addr, 'get-hostos-version']), { code: 0, stdout: '2024.05.1\n', stderr: '' });
  assert.deepEqual(await hostlink(['guest', addr, 'attach-hsm']), { code: 0, stdout: '', stderr: '' });
  assert.deepEqual(await hostlink(['guest', addr, 'notify', 'replica up', '--count', '2']), { code: 0, stdout: '', stderr: '' });
  assert.deepEqual(await hostlink(['guest', addr, 'set-node-id', 'abc-def']), { code: 0, stdout: '', stderr: '' });
  assert.deepEqual(await hostlink(['guest', addr, 'detach-hsm']), {
    code: 1,
    stdout: '',
    stderr: 'hostlink: the host refused detach-hsm: command sh -c "echo \\"no HSM device found\\" >&2; exit 1" failed (exit 1): no HSM device found\n',
  });
  // The claimed CID: --cid or $HOSTLINK_GUEST_CID.
  const wrongCid = await hostlink(['guest', addr, '--cid', '4', 'attach-hsm']);
  assert.equal(wrongCid.code, 1);
  assert.match(wrongCid.stderr, /claims CID 4/);
  assert.equal((await hostlink(['guest', addr, 'attach-hsm'], { HOSTLINK_GUEST_CID: '6' })).code, 0);

  for (const bad of [['guest', addr], ['guest', addr, 'reboot'], ['guest', addr, 'upgrade', 'http://x'], ['guest', addr, 'attach-hsm', '--count', '2'], ['guest', '--addr', 'vsock://x:1', 'attach-hsm']]) {
    const r = await hostlink(bad);
    assert.equal(r.code, 2, `${bad.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^hostlink: .+\n$/);
  }

  const unreachable = await hostlink(['guest', `--addr=unix://${join(dir, 'nobody.sock')}`, 'attach-hsm']);
  assert.equal(unreachable.code, 3);
  assert.match(unreachable.stderr, /^hostlink: could not reach the host: could not connect to unix:\/\/.*nobody\.sock/);

  const garbage = createServer({ allowHalfOpen: true }, (s) => {
    s.resume();
    s.on('end', () => s.end('<html>proxy error</html>'));
  });
  garbage.listen(join(dir, 'garbage.sock'));
  await once(garbage, 'listening');
  t.after(() => new Promise<void>((r) => garbage.close(() => r())));
  const confused = await hostlink(['guest', `--addr=unix://${join(dir, 'garbage.sock')}`, 'attach-hsm']);
  assert.equal(confused.code, 4);
  assert.match(confused.stderr, /does not understand: <html>proxy error<\/html>/);

  const help = await hostlink(['guest', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /exit codes: 0 done, 1 the host refused/);
});

test('hostlink guest --timeout: whole seconds from 1 to 2000000, stated in the error and the help', async (t) => {
  const dir = await tempDir(t);
  const sock = join(dir, 'agent.sock');
  await startAgent(t, `unix://${sock}`, { handlers: { 'get-hostos-version': { version: '1.2.3' } } });
  const addr = `--addr=unix://${sock}`;
  // The longest wait works (its milliseconds, with 10 s to connect and write, fit a Node.js timer).
  assert.deepEqual(await hostlink(['guest', addr, '--timeout', '2000000', 'get-hostos-version']), { code: 0, stdout: '1.2.3\n', stderr: '' });
  // Longer (3000000 s would overflow the timer and fire at once), 0 (would give up at once) and non-numbers are usage errors.
  for (const bad of ['2000001', '3000000', '99999999999', '0', '-1', '1.5', 'ten']) {
    const r = await hostlink(['guest', addr, `--timeout=${bad}`, 'get-hostos-version']);
    assert.equal(r.code, 2, `--timeout ${bad}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `hostlink: --timeout must be a whole number of seconds from 1 to 2000000, not '${bad}' (see hostlink guest --help)\n`);
  }
  assert.match((await hostlink(['guest', '--help'])).stdout, /--timeout SECONDS how long to wait for the reply, 1 to 2000000 \(default 300/);
});

test('hostlink guest: text from the host is printed without control characters on every path', async (t) => {
  const dir = await tempDir(t);
  const ESC = '\u001b';
  // A hostile host (or whatever answers in its place): each socket sends one fixed answer.
  const host = async (name: string, answer: string, handshake = false): Promise<string> => {
    const path = join(dir, name);
    const server = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      if (handshake) s.once('data', () => s.end(answer));
      else {
        s.resume();
        s.on('end', () => s.end(answer));
      }
    });
    server.listen(path);
    await once(server, 'listening');
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    return `--addr=unix://${path}${handshake ? '?port=19090' : ''}`;
  };
  const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
  const cases: [string[], number, RegExp][] = [
    // A reply that is not JSON (a raw ESC in a string): to the version question, and to a command sent as v1.
    [[await host('raw.sock', `{"Ok":{"Weird":"${ESC}[31mred${ESC}]0;title\u0007"}}`), 'get-hostos-version'], 4, /does not understand: \{"Ok":\{"Weird":"\[31mred\]0;title"\}\}\n$/],
    [[await host('raw-v1.sock', `{"Ok":"${ESC}[2J"}`), '--protocol=v1', 'attach-hsm'], 4, /\{"Ok":"\[2J"\}\n$/],
    // A refusal (sanitised before) and a VMM's answer to the hybrid vsock CONNECT.
    [[await host('err.sock', JSON.stringify({ Err: `bad ${ESC}[2J stuff` })), '--protocol=v1', 'attach-hsm'], 1, /refused attach-hsm: bad \[2J stuff\n$/],
    [[await host('vmm.sock', `NO ${ESC}[2Jgo away\n`, true), 'attach-hsm'], 3, /answered 'NO \[2Jgo away' to CONNECT/],
  ];
  for (const [args, code, re] of cases) {
    const r = await hostlink(['guest', ...args]);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr.slice(0, -1), CONTROL, JSON.stringify(r.stderr));
    assert.match(r.stderr, re);
  }
});

test('hostlink agent: serves until SIGTERM; a bad configuration is a one-line usage error', async (t) => {
  const dir = await tempDir(t);
  const sock = join(dir, 'cli-agent.sock');
  const config = join(dir, 'agent.json');
  await writeFile(config, JSON.stringify({ listen: `unix://${sock}`, handlers: { 'get-hostos-version': { version: '3.1.4' } } }));
  const { agent, exited, stderr } = await agentProcess(t, ['--config', config]);
  assert.match(stderr(), new RegExp(`listening on unix://${sock}`));
  assert.deepEqual(await hostlink(['guest', `--addr=unix://${sock}`, 'get-hostos-version']), { code: 0, stdout: '3.1.4\n', stderr: '' });
  agent.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0);
  assert.match(stderr(), /get-hostos-version -> ok/);

  await writeFile(config, JSON.stringify({ handlers: { upgrade: { instalCommand: ['x'] } } }));
  const bad = await hostlink(['agent', '--config', config]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown key 'handlers\.upgrade\.instalCommand'/);
  assert.equal(bad.stderr.trim().split('\n').length, 1);

  // A file that is not there is a bad configuration too: exit 2, one line naming the file and what to do.
  const missing = join(dir, 'nonexist.json');
  assert.deepEqual(await hostlink(['agent', '--config', missing, '--listen', `unix://${sock}`]), {
    code: 2,
    stdout: '',
    stderr: `hostlink: cannot read the agent configuration ${missing}: it does not exist; give --config the path of a readable JSON file, or leave --config out to run with the defaults\n`,
  });
});

test('hostlink agent: SIGTERM during an upgrade stops it: the guest is told, nothing is installed, no reboot follows', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const image = randomBytes(100_000);
  // The server sends the headers and half the image, then holds the rest until the agent has been stopped.
  let release = (): void => undefined;
  const held = new Promise<void>((r) => (release = r));
  let downloading = (): void => undefined;
  const requested = new Promise<void>((r) => (downloading = r));
  t.after(() => release());
  const base = await serveHttp(t, (_req, res) => {
    res.writeHead(200, { 'content-length': image.length });
    res.write(image.subarray(0, 50_000));
    downloading();
    void held.then(() => res.end(image.subarray(50_000)));
  });
  const events = join(dir, 'events');
  const staging = join(dir, 'staging');
  const sock = join(dir, 'agent.sock');
  const config = join(dir, 'agent.json');
  await writeFile(
    config,
    JSON.stringify({
      handlers: {
        upgrade: {
          stagingDir: staging,
          allowedUrls: [base],
          allowedNetworks: ['127.0.0.0/8'],
          installCommand: ['sh', '-c', 'echo install >> "$1"', 'sh', events],
          rebootCommand: ['sh', '-c', 'echo reboot >> "$1"', 'sh', events],
        },
      },
    }),
  );
  const { agent, exited, stderr } = await agentProcess(t, ['--listen', `unix://${sock}`, '--config', config]);
  const client = new GuestClient({ address: parseControlAddress(`unix://${sock}`) });
  const reply = client.send({ type: 'upgrade', url: `${base}/image`, targetHash: createHash('sha256').update(image).digest('hex') }).catch((e: Error) => e);
  await requested; // the agent is downloading
  agent.kill('SIGTERM');
  const answer = await reply;
  // Whatever the agent still does once told to stop (the old agent went on downloading, installing and
  // rebooting after it had hung up on the guest) it can do now, before the test looks.
  release();
  const [code] = await exited;
  assert.equal(code, 0, stderr());
  assert.deepEqual(answer, {
    ok: false,
    error: "the agent is stopping: nothing was installed and the host will not reboot; retry the upgrade when the host's agent is running again",
  });
  assert.equal(await readFile(events, 'utf8').catch(() => ''), '', 'no install, no reboot');
  assert.deepEqual(await readdir(staging), [], 'the partial download was removed');
  assert.match(stderr(), /SIGTERM: stopping\n[^]*upgrade -> refused: the agent is stopping/);
});

test('hostlink agent: a second SIGTERM while it stops (a command still running) does not cut the stop short', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const sock = join(dir, 'agent.sock');
  const started = join(dir, 'started');
  const config = join(dir, 'agent.json');
  // A command that ignores SIGTERM: stopping the agent waits for it (SIGKILL after the grace), seconds in which a
  // second signal arrives. Node's default action for it ended the agent at once (no exit code).
  await writeFile(config, JSON.stringify({ handlers: { 'attach-hsm': { command: ['sh', '-c', 'echo x > "$1"; trap "" TERM; sleep 30', 'sh', started] } } }));
  const { agent, exited, saw, stderr } = await agentProcess(t, ['--listen', `unix://${sock}`, '--config', config]);
  const client = new GuestClient({ address: parseControlAddress(`unix://${sock}`) });
  const reply = client.send({ type: 'attach-hsm' }).catch((e: Error) => e);
  for (let i = 0; i < 400 && (await readFile(started, 'utf8').catch(() => '')) === ''; i++) await new Promise((r) => setTimeout(r, 25));
  agent.kill('SIGTERM');
  await saw('SIGTERM: stopping');
  agent.kill('SIGTERM');
  const [code, signal] = await exited;
  await reply;
  assert.deepEqual([code, signal], [0, null], stderr());
  assert.match(stderr(), /SIGTERM: already stopping/);
});

test('hostlink agent: every timer option is bounded by what Node.js timers take; a longer one is a configuration error (exit 2)', async (t) => {
  const dir = await tempDir(t);
  const config = join(dir, 'agent.json');
  const timers = [
    ['timeouts', 'readMs'],
    ['timeouts', 'idleMs'],
    ['timeouts', 'writeMs'],
    ['timeouts', 'requestMs'],
    ['timeouts', 'upgradeMs'],
    ['handlers', 'upgrade', 'chunkTimeoutMs'],
    ['handlers', 'upgrade', 'rebootDelayMs'],
    ['handlers', 'notify', 'intervalMs'],
  ];
  const nested = (path: string[], value: unknown): unknown => path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value);
  for (const path of timers) {
    // Were the value accepted, the agent would get as far as vsock and fail there (exit 1) for want of socat.
    await writeFile(config, JSON.stringify({ socatPath: join(dir, 'no-socat-here'), ...(nested(path, 3_000_000_000) as object) }));
    const r = await hostlink(['agent', '--config', config, '--listen', 'vsock://any:19999']);
    const key = path.join('.');
    assert.equal(r.code, 2, `${key}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^hostlink: .*'${key.replace(/\./g, '\\.')}' must be a whole number of milliseconds from [01] to 2147483647 `));
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
  // A time limit of 0 would refuse every request at once.
  await writeFile(config, JSON.stringify({ timeouts: { readMs: 0 } }));
  const zero = await hostlink(['agent', '--config', config, '--listen', 'vsock://any:19999']);
  assert.equal(zero.code, 2, zero.stderr);
  assert.match(zero.stderr, /'timeouts\.readMs' must be a whole number of milliseconds from 1 to 2147483647/);

  // The longest timer there is works.
  const max = 2_147_483_647;
  const sock = join(dir, 'agent.sock');
  await startAgent(t, `unix://${sock}`, {
    timeouts: { readMs: max, idleMs: max, writeMs: max, requestMs: max, upgradeMs: max },
    handlers: { 'get-hostos-version': { version: '1.2.3' } },
  });
  assert.deepEqual(await hostlink(['guest', `--addr=unix://${sock}`, 'get-hostos-version']), { code: 0, stdout: '1.2.3\n', stderr: '' });
});

test('hostlink agent: listen failures are one line and the process exits', async (t) => {
  const dir = await tempDir(t);
  const config = join(dir, 'agent.json');
  await writeFile(config, JSON.stringify({ socatPath: join(dir, 'no-socat-here') }));
  const vsock = await hostlink(['agent', '--config', config, '--listen', 'vsock://any:19999']);
  assert.equal(vsock.code, 1);
  assert.match(vsock.stderr, /^hostlink: cannot use vsock: '.*no-socat-here' was not found\. vsock needs socat >= 1\.7\.4 \(Debian\/Ubuntu: apt-get install socat\)/);
  assert.equal(vsock.stderr.trim().split('\n').length, 1);

  const taken = createServer();
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.after(() => new Promise<void>((r) => taken.close(() => r())));
  const port = (taken.address() as { port: number }).port;
  const busy = await hostlink(['agent', '--listen', `127.0.0.1:${port}`]);
  assert.equal(busy.code, 2);
  assert.match(busy.stderr, new RegExp(`^hostlink: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
});
