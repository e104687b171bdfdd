/**
 * The upgrade handler against a local HTTP server: good hash, bad hash, reuse and replacement of a staged file,
 * a server that stalls mid-body (per-chunk timeout), size limits, redirects, failing install, one at a time.
 * Install and reboot are harmless shell commands that append to an events file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseControlAddress } from '../../src/control/address.js';
import { GuestClient } from '../../src/control/client.js';
import { encodeRequest, type Response } from '../../src/control/wire.js';
import { serveHttp, startAgent, tempDir } from './helpers.js';

const IMAGE = randomBytes(300_000);
const IMAGE_HASH = createHash('sha256').update(IMAGE).digest('hex');
const OTHER_HASH = createHash('sha256').update('something else').digest('hex');

interface Fixture {
  base: string;
  hits: Map<string, number>;
  /** Resolves when the next request for a path arrives. */
  arrived(path: string): Promise<Socket>;
  /** Lets the `/held` response (the image) go out. */
  release(): void;
  dir: string;
  staging: string;
  /** The one file in the staging directory, if any. */
  staged: () => Promise<string | undefined>;
  events: () => Promise<string>;
  client: GuestClient;
  agent: Awaited<ReturnType<typeof startAgent>>;
}

/** Upgrade settings, or handlers other than upgrade, for the fixture's directory (its files are named there). */
type PerDir = Record<string, unknown> | ((dir: string) => Record<string, unknown>);

async function fixture(
  t: Parameters<typeof tempDir>[0],
  upgrade: PerDir = {},
  timeouts: Record<string, number> = {},
  transport: 'unix' | 'tcp' = 'unix',
  handlers: PerDir = {},
): Promise<Fixture> {
  const dir = await tempDir(t);
  const hits = new Map<string, number>();
  const waiters = new Map<string, (s: Socket) => void>();
  let release = (): void => undefined;
  const held = new Promise<void>((r) => (release = r));
  const base = await serveHttp(t, (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    waiters.get(path)?.(req.socket);
    waiters.delete(path);
    switch (path) {
      case '/image':
        res.writeHead(200, { 'content-length': IMAGE.length });
        return void res.end(IMAGE);
      case '/chunked': // no content-length: the size limit must be enforced while streaming
        res.writeHead(200);
        res.write(IMAGE.subarray(0, 100_000));
        return void setImmediate(() => res.end(IMAGE.subarray(100_000)));
      case '/stall': // half the body, then nothing
        res.writeHead(200, { 'content-length': IMAGE.length });
        return void res.write(IMAGE.subarray(0, 1000));
      case '/held': // the image, once the test says so
        return void held.then(() => {
          res.writeHead(200, { 'content-length': IMAGE.length });
          res.end(IMAGE);
        });
      case '/moved':
        res.writeHead(302, { location: '/image' });
        return void res.end();
      default:
        res.writeHead(404);
        return void res.end('not here');
    }
  });
  const staging = join(dir, 'staging');
  const expected = join(dir, 'expected-image');
  await writeFile(expected, IMAGE);
  const eventsFile = join(dir, 'events');
  const agent = await startAgent(t, transport === 'unix' ? `unix://${join(dir, 'agent.sock')}` : '127.0.0.1:0', {
    timeouts,
    handlers: {
      ...(typeof handlers === 'function' ? handlers(dir) : handlers),
      upgrade: {
        stagingDir: staging,
        allowedUrls: [base],
        allowedNetworks: ['127.0.0.0/8'],
        // Generous: on a loaded machine this process (the server too) can pause long enough for a short
        // limit to expire before the waiting data is read. The stall test sets its own.
        chunkTimeoutMs: 10_000,
        maxBytes: 1_000_000,
        // Records what the installer was handed: the image, byte for byte, from a file in the staging directory.
        installCommand: ['sh', '-c', `case "$1" in "$2"/*) ;; *) exit 9;; esac; cmp -s "$1" "$3" && echo installed >> ${eventsFile}`, 'sh', '{file}', staging, expected],
        rebootCommand: ['sh', '-c', `echo reboot >> ${eventsFile}`],
        ...(typeof upgrade === 'function' ? upgrade(dir) : upgrade),
      },
    },
  });
  return {
    base,
    hits,
    arrived: (path) => new Promise((r) => waiters.set(path, r)),
    release: () => release(),
    dir,
    staging,
    staged: async () => {
      const names = await readdir(staging);
      assert.ok(names.length <= 1, `one file at most in the staging directory: ${names.join(', ')}`);
      return names.length === 1 ? join(staging, names[0]!) : undefined;
    },
    events: () => readFile(eventsFile, 'utf8').catch(() => ''),
    client: new GuestClient({ address: parseControlAddress(agent.address) }),
    agent,
  };
}

const OK: Response = { ok: true, payload: { kind: 'NoPayload' } };

function errorOf(r: Response): string {
  assert.equal(r.ok, false, `expected a refusal, got ${JSON.stringify(r)}`);
  return (r as { error: string }).error;
}

test('good hash: downloads, verifies, installs, replies, then reboots', async (t) => {
  const f = await fixture(t);
  assert.deepEqual(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH }), OK);
  await f.agent.agent.idle();
  assert.equal(await f.events(), `installed\nreboot\n`);
  assert.ok((await readFile((await f.staged())!)).equals(IMAGE));
  // The reply was written before the reboot command ran.
  const logs = f.agent.logs;
  const replied = logs.findIndex((l) => /upgrade -> ok/.test(l));
  const rebooted = logs.findIndex((l) => /upgrade: running sh -c/.test(l));
  assert.ok(replied >= 0 && rebooted > replied, logs.join('\n'));
});

test('a file the agent did not write is never reused, even with the right hash; its own verified image is, by a retry', async (t) => {
  // The installer fails while `busy` exists (the other partition in use, say), so the guest retries; no reboot
  // is promised until an install succeeds (after that no upgrade is accepted, see the next test).
  const f = await fixture(t, (dir) => ({
    installCommand: [
      'sh',
      '-c',
      '[ -e "$4" ] && { echo "partition B is busy" >&2; exit 4; }; case "$1" in "$2"/*) ;; *) exit 9;; esac; cmp -s "$1" "$3" && echo installed >> "$5"',
      'sh',
      '{file}',
      join(dir, 'staging'),
      join(dir, 'expected-image'),
      join(dir, 'busy'),
      join(dir, 'events'),
    ],
  }));
  const busy = join(f.dir, 'busy');
  await writeFile(busy, '');
  const send = (): Promise<Response> => f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH });
  // Planted before the agent's first upgrade: an image with the right hash, a link to it, a file under a guessable name.
  const { mkdir, rm } = await import('node:fs/promises');
  await mkdir(f.staging, { mode: 0o700 });
  await writeFile(join(f.staging, 'planted.img'), IMAGE);
  await symlink(join(f.staging, 'planted.img'), join(f.staging, 'upgrade.img'));
  assert.match(errorOf(await send()), /partition B is busy$/);
  assert.equal(f.hits.get('/image'), 1, 'downloaded, not taken from the planted file');
  const mine = (await f.staged())!;
  assert.ok(!mine.endsWith('planted.img') && !mine.endsWith('upgrade.img'), 'the planted files are gone');

  // A retry with the same hash reuses the image this agent verified.
  assert.match(errorOf(await send()), /partition B is busy$/);
  assert.equal(f.hits.get('/image'), 1, 'reused, not downloaded again');
  assert.ok(f.agent.logs.some((l) => /reusing/.test(l)));
  // ...but not once it was changed (here by root, the only other user who can write there).
  await chmod(mine, 0o600);
  await writeFile(mine, 'stale image from an earlier attempt');
  assert.match(errorOf(await send()), /partition B is busy$/);
  assert.equal(f.hits.get('/image'), 2);
  await rm(busy);
  assert.deepEqual(await send(), OK);
  assert.equal(f.hits.get('/image'), 2, 'the image downloaded again is reused');
  await f.agent.agent.idle();
  assert.equal(await f.events(), `installed\nreboot\n`);
});

test('once an installed upgrade waits for its reboot, no other upgrade or guest upgrade VM is started', async (t) => {
  // The reboot waits (rebootDelayMs, as long as a timer can) until the agent is closed, which cuts it short.
  const f = await fixture(t, { rebootDelayMs: 2_147_483_647 }, {}, 'unix', (dir) => ({
    'start-upgrade-guest-vm': { command: ['sh', '-c', 'echo guest-upgrade-vm >> "$1"', 'sh', join(dir, 'events')] },
  }));
  const send = (): Promise<Response> => f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH });
  assert.deepEqual(await send(), OK);
  const installed = (await f.staged())!;
  const refused = (what: string): RegExp =>
    new RegExp(`^the host has installed an upgrade and is about to reboot: ${what} is refused until it has rebooted; retry after the reboot`);
  // A second upgrade would clear the staging directory and run the installer while the first reboot can land.
  assert.match(errorOf(await send()), refused('another upgrade'));
  assert.match(errorOf(await f.client.send({ type: 'start-upgrade-guest-vm' })), refused("'start-upgrade-guest-vm'"));
  // Commands that change nothing the reboot could cut in half are still served.
  assert.deepEqual(await f.client.send({ type: 'get-vsock-protocol' }), { ok: true, payload: { kind: 'HostOSVsockVersion', version: { major: 1, minor: 0, patch: 0 } } });
  assert.equal(await f.staged(), installed, 'the installed image was not deleted');
  assert.equal(f.hits.get('/image'), 1);
  assert.equal(await f.events(), 'installed\n', 'one install, nothing else started, the reboot still pending');
  await f.agent.agent.close();
  assert.equal(await f.events(), 'installed\nreboot\n', 'the promised reboot happens when the agent stops');
});

test('a host upgrade and the guest upgrade VM never run at once: each is refused while the other runs', { timeout: 30_000 }, async (t) => {
  // The guest upgrade VM's command runs until `go` exists.
  const f = await fixture(t, {}, {}, 'unix', (dir) => ({
    'start-upgrade-guest-vm': {
      command: ['sh', '-c', 'echo guest-vm-started >> "$1"; while [ ! -e "$2" ]; do sleep 0.05; done; echo guest-vm-done >> "$1"', 'sh', join(dir, 'events'), join(dir, 'go')],
    },
  }));
  const until = async (cond: () => Promise<boolean>): Promise<void> => {
    while (!(await cond())) await sleep(10, undefined, { signal: t.signal }); // the test's timeout guards a hang
  };
  // 1. The guest upgrade VM is starting: an upgrade (which reboots the host once installed) is refused.
  const guestVm = f.client.send({ type: 'start-upgrade-guest-vm' });
  await until(async () => (await f.events()).includes('guest-vm-started'));
  const upgrade = (path: string): Promise<Response> => f.client.send({ type: 'upgrade', url: `${f.base}${path}`, targetHash: IMAGE_HASH });
  assert.equal(errorOf(await upgrade('/image')), "an upgrade is refused while 'start-upgrade-guest-vm' is running on this host; try again when it has finished");
  assert.equal(f.hits.get('/image'), undefined, 'nothing downloaded');
  await writeFile(join(f.dir, 'go'), '');
  assert.deepEqual(await guestVm, OK);
  // 2. An upgrade is downloading: the guest upgrade VM is refused (the upgrade's reboot would cut it short).
  const downloading = f.arrived('/held');
  const upgrading = upgrade('/held');
  await downloading;
  assert.match(errorOf(await f.client.send({ type: 'start-upgrade-guest-vm' })), /^'start-upgrade-guest-vm' is refused while a host upgrade is running \(it reboots the host when installed\); retry when/);
  f.release();
  assert.deepEqual(await upgrading, OK);
  await f.agent.agent.idle();
  assert.equal(await f.events(), 'guest-vm-started\nguest-vm-done\ninstalled\nreboot\n', 'one guest VM start, then the upgrade; never both');
});

test('bad hash: names the expected hash only, keeps nothing, installs nothing', async (t) => {
  const f = await fixture(t);
  const err = errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: OTHER_HASH }));
  // Not the computed hash: the guest must not learn anything about a body it may not be able to fetch itself.
  assert.equal(err, `file failed hash validation: expected_hash ${OTHER_HASH}`);
  assert.equal(await f.staged(), undefined);
  await f.agent.agent.idle();
  assert.equal(await f.events(), '');
});

test('a server that stalls mid-body is given up on after the per-chunk timeout', async (t) => {
  const f = await fixture(t, { chunkTimeoutMs: 500 });
  const err = errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/stall`, targetHash: IMAGE_HASH }));
  assert.equal(err, 'the upgrade download stalled: no data for handlers.upgrade.chunkTimeoutMs (500 ms)');
  assert.equal(await f.staged(), undefined);
  assert.equal(await f.events(), '');
  // The agent keeps serving, and the next attempt works.
  assert.deepEqual(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH }), OK);
});

test('size limits: by Content-Length and while streaming', async (t) => {
  const f = await fixture(t, { maxBytes: 50_000 });
  assert.match(
    errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH })),
    /^the upgrade image is larger than handlers\.upgrade\.maxBytes \(50000 bytes\)$/,
  );
  assert.match(
    errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/chunked`, targetHash: IMAGE_HASH })),
    /^the upgrade image is larger than handlers\.upgrade\.maxBytes \(50000 bytes\)$/,
  );
  assert.equal(await f.staged(), undefined);
});

test('redirects are followed; HTTP errors, bad URLs and bad hashes are refused before anything runs', async (t) => {
  const f = await fixture(t);
  // The status stays in the agent's log: the reply does not tell the guest what the server answered.
  const missing = errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/missing`, targetHash: OTHER_HASH }));
  assert.equal(missing, "the upgrade could not be downloaded from the allowed server; the host's agent log has the details");
  assert.ok(f.agent.logs.some((l) => /HTTP 404/.test(l)));
  assert.match(errorOf(await f.client.send({ type: 'upgrade', url: 'ftp://example.com/x', targetHash: IMAGE_HASH })), /only http and https/);
  assert.match(
    errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH.toUpperCase() })),
    /64 lowercase hex digits/,
  );
  // Last: after a successful upgrade the agent takes no other until the host has rebooted.
  assert.deepEqual(await f.client.send({ type: 'upgrade', url: `${f.base}/moved`, targetHash: IMAGE_HASH }), OK);
});

test('a failing install is reported with its output and no reboot follows', async (t) => {
  const f = await fixture(t, { installCommand: ['sh', '-c', 'echo "partition B is busy" >&2; exit 4'] });
  const err = errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH }));
  assert.match(err, /failed \(exit 4\): partition B is busy$/);
  await f.agent.agent.idle();
  assert.equal(await f.events(), '');
});

test('one upgrade at a time; a request that runs out of time is answered and its download stopped', { timeout: 30_000 }, async (t) => {
  const f = await fixture(t, { chunkTimeoutMs: 60_000 }, { upgradeMs: 1500 });
  const stalled = f.arrived('/stall');
  const first = f.client.send({ type: 'upgrade', url: `${f.base}/stall`, targetHash: IMAGE_HASH });
  const serverSide = await Promise.race([
    stalled,
    first.then((r) => {
      throw new Error(`the upgrade ended before its download started: ${JSON.stringify(r)}`);
    }),
  ]);
  const closed = once(serverSide, 'close');
  assert.match(
    errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH })),
    /an upgrade is already running/,
  );
  assert.equal(errorOf(await first), "the host did not finish 'upgrade' within 1500 ms");
  await closed; // the agent hung up on the stalled download
  await f.agent.agent.idle(); // which includes the stopped handler's cleanup
  assert.equal(await f.staged(), undefined, 'the partial download was removed');
  assert.equal(await f.events(), '');
});

test('a guest that hangs up while the upgrade runs still gets its host rebooted', { timeout: 30_000 }, async (t) => {
  // TCP, so the guest can reset the connection (a unix socket has no RST).
  const f = await fixture(t, {}, {}, 'tcp');
  const until = async (cond: () => Promise<boolean> | boolean): Promise<void> => {
    // Waits for a condition, not a deadline: the test's timeout guards a hang.
    while (!(await cond())) await sleep(10, undefined, { signal: t.signal }); // stops when the test ends
  };
  const request = encodeRequest({ senderCid: 3, command: { type: 'upgrade', url: `${f.base}/held`, targetHash: IMAGE_HASH } });
  const downloading = f.arrived('/held');
  const { port } = parseControlAddress(f.agent.address) as { port: number };
  const sock = connect({ host: '127.0.0.1', port });
  sock.on('error', () => undefined);
  // No half-close (as older guests): the agent starts on the complete JSON and keeps reading, so it sees the RST.
  sock.on('connect', () => sock.write(request));
  await downloading; // the agent has the request and is downloading
  sock.resetAndDestroy(); // the guest dies before the agent can answer
  await until(() => f.agent.logs.some((l) => /connection error/.test(l)));
  f.release();
  await until(async () => (await f.events()).includes('reboot'));
  assert.equal(await f.events(), `installed\nreboot\n`);
});

test('close() during the install stops the installer, tells the guest and schedules no reboot; it returns once that is done', { timeout: 30_000 }, async (t) => {
  // The installer runs until `go` exists; SIGTERM (the agent stopping it) is recorded.
  const f = await fixture(t, (dir) => ({
    installCommand: [
      'sh',
      '-c',
      'trap \'echo install-stopped >> "$1"; exit 1\' TERM; echo install-started >> "$1"; while [ ! -e "$2" ]; do sleep 0.05; done; echo install-done >> "$1"',
      'sh',
      join(dir, 'events'),
      join(dir, 'go'),
    ],
  }));
  const reply = f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH }).catch((e: Error) => e);
  while (!(await f.events()).includes('install-started')) await sleep(10, undefined, { signal: t.signal }); // a condition, not a deadline
  await f.agent.agent.close();
  // Were the installer still running (the old agent neither stopped it nor waited for it), it would finish now.
  await writeFile(join(f.dir, 'go'), '');
  assert.equal(await f.events(), 'install-started\ninstall-stopped\n', 'stopped, and nothing after it: no reboot');
  const answer = await reply;
  assert.ok(!(answer instanceof Error), `the guest got a reply: ${String(answer)}`);
  assert.equal(
    errorOf(answer),
    "the agent is stopping: the install command was stopped before it finished (or never started) and the host will not reboot; retry the upgrade when the host's agent is running again",
  );
});
