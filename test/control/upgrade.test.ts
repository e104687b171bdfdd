/**
 * The upgrade handler against a local HTTP server: good hash, bad hash, reuse and replacement of a staged file,
 * a server that stalls mid-body (per-chunk timeout), size limits, redirects, failing install, one at a time.
 * Install and reboot are harmless shell commands that append to an events file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseControlAddress } from '../../src/control/address.js';
import { GuestClient } from '../../src/control/client.js';
import { encodeRequest, type Response } from '../../src/control/wire.js';
import { startAgent, tempDir } from './helpers.js';

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
  staged: string;
  events: () => Promise<string>;
  client: GuestClient;
  agent: Awaited<ReturnType<typeof startAgent>>;
}

async function fixture(
  t: Parameters<typeof tempDir>[0],
  upgrade: Record<string, unknown> = {},
  timeouts: Record<string, number> = {},
  transport: 'unix' | 'tcp' = 'unix',
): Promise<Fixture> {
  const dir = await tempDir(t);
  const hits = new Map<string, number>();
  const waiters = new Map<string, (s: Socket) => void>();
  const sockets = new Set<Socket>();
  let release = (): void => undefined;
  const held = new Promise<void>((r) => (release = r));
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
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
  http.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => http.close(() => r()));
  });
  const addr = http.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const staged = join(dir, 'staged-upgrade');
  const eventsFile = join(dir, 'events');
  const agent = await startAgent(t, transport === 'unix' ? `unix://${join(dir, 'agent.sock')}` : '127.0.0.1:0', {
    timeouts,
    handlers: {
      upgrade: {
        stagingFile: staged,
        chunkTimeoutMs: 200,
        maxBytes: 1_000_000,
        installCommand: ['sh', '-c', `cmp -s "$1" "$2" && echo "installed $1" >> ${eventsFile}`, 'sh', '{file}', staged],
        rebootCommand: ['sh', '-c', `echo reboot >> ${eventsFile}`],
        ...upgrade,
      },
    },
  });
  return {
    base,
    hits,
    arrived: (path) => new Promise((r) => waiters.set(path, r)),
    release: () => release(),
    dir,
    staged,
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
  assert.equal(await f.events(), `installed ${f.staged}\nreboot\n`);
  assert.ok((await readFile(f.staged)).equals(IMAGE));
  assert.equal(existsSync(`${f.staged}.partial`), false);
  // The reply was written before the reboot command ran.
  const logs = f.agent.logs;
  const replied = logs.findIndex((l) => /upgrade -> ok/.test(l));
  const rebooted = logs.findIndex((l) => /upgrade: running sh -c/.test(l));
  assert.ok(replied >= 0 && rebooted > replied, logs.join('\n'));
});

test('a staged file with the right hash is reused; one with a wrong hash is deleted and downloaded again', async (t) => {
  const f = await fixture(t);
  await writeFile(f.staged, IMAGE);
  assert.deepEqual(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH }), OK);
  assert.equal(f.hits.get('/image') ?? 0, 0, 'reused, not downloaded');
  assert.ok(f.agent.logs.some((l) => /reusing/.test(l)));

  await writeFile(f.staged, 'stale image from an earlier attempt');
  assert.deepEqual(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH }), OK);
  assert.equal(f.hits.get('/image'), 1);
  assert.ok((await readFile(f.staged)).equals(IMAGE));
  await f.agent.agent.idle();
  assert.equal(await f.events(), `installed ${f.staged}\nreboot\n`.repeat(2));
});

test('bad hash: names both hashes, keeps nothing, installs nothing', async (t) => {
  const f = await fixture(t);
  const err = errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: OTHER_HASH }));
  assert.equal(err, `file failed hash validation: computed_hash ${IMAGE_HASH}, expected_hash ${OTHER_HASH}`);
  assert.equal(existsSync(f.staged), false);
  assert.equal(existsSync(`${f.staged}.partial`), false);
  await f.agent.agent.idle();
  assert.equal(await f.events(), '');
});

test('a server that stalls mid-body is given up on after the per-chunk timeout', async (t) => {
  const f = await fixture(t);
  const err = errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/stall`, targetHash: IMAGE_HASH }));
  assert.match(err, /stalled: no data for 200 ms after 1000 bytes/);
  assert.equal(existsSync(`${f.staged}.partial`), false);
  assert.equal(await f.events(), '');
  // The agent keeps serving, and the next attempt works.
  assert.deepEqual(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH }), OK);
});

test('size limits: by Content-Length and while streaming', async (t) => {
  const f = await fixture(t, { maxBytes: 50_000 });
  assert.match(
    errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH })),
    /is 300000 bytes, more than the limit of 50000/,
  );
  assert.match(
    errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/chunked`, targetHash: IMAGE_HASH })),
    /larger than the limit of 50000 bytes/,
  );
  assert.equal(existsSync(`${f.staged}.partial`), false);
});

test('redirects are followed; HTTP errors, bad URLs and bad hashes are refused before anything runs', async (t) => {
  const f = await fixture(t);
  assert.deepEqual(await f.client.send({ type: 'upgrade', url: `${f.base}/moved`, targetHash: IMAGE_HASH }), OK);
  assert.match(errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/missing`, targetHash: OTHER_HASH })), /HTTP 404/);
  assert.match(errorOf(await f.client.send({ type: 'upgrade', url: 'ftp://example.com/x', targetHash: IMAGE_HASH })), /only http and https/);
  assert.match(
    errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH.toUpperCase() })),
    /64 lowercase hex digits/,
  );
});

test('a failing install is reported with its output and no reboot follows', async (t) => {
  const f = await fixture(t, { installCommand: ['sh', '-c', 'echo "partition B is busy" >&2; exit 4'] });
  const err = errorOf(await f.client.send({ type: 'upgrade', url: `${f.base}/image`, targetHash: IMAGE_HASH }));
  assert.match(err, /failed \(exit 4\): partition B is busy$/);
  await f.agent.agent.idle();
  assert.equal(await f.events(), '');
});

test('one upgrade at a time; a request that runs out of time is answered and its download stopped', { timeout: 30_000 }, async (t) => {
  const f = await fixture(t, { chunkTimeoutMs: 60_000 }, { upgradeMs: 400 });
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
  assert.equal(errorOf(await first), "the host did not finish 'upgrade' within 400 ms");
  await closed; // the agent hung up on the stalled download
  await f.agent.agent.idle();
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
  assert.equal(await f.events(), `installed ${f.staged}\nreboot\n`);
});
