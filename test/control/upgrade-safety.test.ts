/**
 * The upgrade command against a guest that wants the host to fetch something else, or another local user who
 * wants the installer to get other bytes: the URL allow-list and address rules (after DNS, on every redirect),
 * replies that reveal nothing learnt from the network, and the staging directory's ownership rules. A real
 * agent and real HTTP servers; "another user" is uid 65534 (nobody), when the tests run as root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, chown, lchown, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { parseControlAddress } from '../../src/control/address.js';
import { GuestClient } from '../../src/control/client.js';
import { parseIp, specialRange } from '../../src/control/handlers/addresses.js';
import { pinnedLookup } from '../../src/control/handlers/url-policy.js';
import type { Response } from '../../src/control/wire.js';
import { startAgent, tempDir } from './helpers.js';

const IMAGE = randomBytes(50_000);
const IMAGE_HASH = createHash('sha256').update(IMAGE).digest('hex');
const OTHER_HASH = createHash('sha256').update('x').digest('hex');
const OK: Response = { ok: true, payload: { kind: 'NoPayload' } };
const FAILED = "the upgrade could not be downloaded from the allowed server; the host's agent log has the details";
const isRoot = process.getuid?.() === 0;

interface Http {
  base: string;
  port: number;
  hits: string[];
}

async function httpServer(t: Parameters<typeof tempDir>[0], handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Http> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  return { base: `http://127.0.0.1:${port}`, port, hits };
}

function images(t: Parameters<typeof tempDir>[0]): Promise<Http> {
  return httpServer(t, (req, res) => {
    if (req.url === '/image') {
      res.writeHead(200, { 'content-length': IMAGE.length });
      return void res.end(IMAGE);
    }
    if (req.url?.startsWith('/to/')) {
      res.writeHead(302, { location: decodeURIComponent(req.url.slice(4)) });
      return void res.end();
    }
    if (req.url === '/500') {
      res.writeHead(500, { 'x-secret': 'internal' });
      return void res.end('stack trace of an internal service');
    }
    if (req.url === '/reset') return void req.socket.destroy();
    res.writeHead(404);
    res.end('not here');
  });
}

async function agentWith(t: Parameters<typeof tempDir>[0], dir: string, upgrade: Record<string, unknown>) {
  const events = join(dir, 'events');
  const expected = join(dir, 'expected');
  await writeFile(expected, IMAGE);
  const running = await startAgent(t, `unix://${join(dir, 'agent.sock')}`, {
    handlers: {
      upgrade: {
        stagingDir: join(dir, 'staging'),
        chunkTimeoutMs: 5_000,
        installCommand: ['sh', '-c', `cmp -s "$1" "$2" && echo installed >> ${events} || echo "WRONG BYTES" >> ${events}`, 'sh', '{file}', expected],
        rebootCommand: ['sh', '-c', `echo reboot >> ${events}`],
        ...upgrade,
      },
    },
  });
  const client = new GuestClient({ address: parseControlAddress(running.address) });
  const send = (url: string, hash = IMAGE_HASH): Promise<Response> => client.send({ type: 'upgrade', url, targetHash: hash });
  return { ...running, send, events: () => readFile(events, 'utf8').catch(() => '') };
}

function errorOf(r: Response): string {
  assert.equal(r.ok, false, `expected a refusal, got ${JSON.stringify(r)}`);
  return (r as { error: string }).error;
}

const NOT_LISTED = 'the upgrade URL is not allowed: its scheme, host and port match no entry of handlers.upgrade.allowedUrls in the agent configuration';

test('upgrade URLs: only allow-listed origins, and loopback/private addresses only when their network is allowed', async (t) => {
  const dir = await tempDir(t);
  const http = await images(t);
  const port = http.port;
  // Nothing allow-listed (the default): every URL is refused before any connection is made.
  const none = await agentWith(t, await tempDir(t), {});
  assert.equal(errorOf(await none.send(`${http.base}/image`)), NOT_LISTED);

  // Allow-listed origins that are loopback: refused after resolution, whatever the spelling.
  const a = await agentWith(t, dir, {
    allowedUrls: [http.base, `http://localhost:${port}`, `http://[::ffff:127.0.0.1]:${port}`, `http://[::1]:${port}`, `http://0.0.0.0:${port}`],
  });
  const loopback = /^the upgrade URL is not allowed: its host resolves only to (loopback|unspecified) addresses, which handlers\.upgrade\.allowedNetworks in the agent configuration does not include$/;
  for (const url of [
    `${http.base}/image`,
    `http://localhost:${port}/image`,
    `http://[::ffff:127.0.0.1]:${port}/image`,
    `http://[::ffff:7f00:1]:${port}/image`,
    `http://[::1]:${port}/image`,
    `http://0.0.0.0:${port}/image`,
    `http://2130706433:${port}/image`, // 127.0.0.1 as one number
    `http://0x7f.1:${port}/image`,
  ]) {
    assert.match(errorOf(await a.send(url)), loopback, url);
  }
  // Another port or scheme on an allowed host is another origin.
  assert.equal(errorOf(await a.send(`http://127.0.0.1:${port + 1}/image`)), NOT_LISTED);
  assert.equal(errorOf(await a.send(`https://127.0.0.1:${port}/image`)), NOT_LISTED);
  assert.deepEqual(http.hits, [], 'no request reached the server');
  assert.equal(await a.events(), '');

  // With the network allowed, the same origin works.
  const b = await agentWith(t, await tempDir(t), { allowedUrls: [http.base], allowedNetworks: ['127.0.0.0/8'] });
  assert.deepEqual(await b.send(`${http.base}/image`), OK);
  await b.agent.idle();
  assert.equal(await b.events(), 'installed\nreboot\n');
});

test('every redirect is checked: to an origin not listed, or to a loopback address, it is refused without reaching it', async (t) => {
  const http = await images(t);
  const inside = await httpServer(t, (_req, res) => res.end('internal secret'));
  // The first server is allowed (as a private mirror); the second is not listed.
  const a = await agentWith(t, await tempDir(t), { allowedUrls: [http.base], allowedNetworks: ['127.0.0.1/32'] });
  const to = (target: string): string => `${http.base}/to/${encodeURIComponent(target)}`;
  const notListed = 'a redirect of the upgrade URL is not allowed: its scheme, host and port match no entry of handlers.upgrade.allowedUrls in the agent configuration';
  for (const target of [`${inside.base}/secret`, `http://localhost:${inside.port}/secret`, 'file:///etc/shadow', `http://169.254.169.254/latest/meta-data/`]) {
    const err = errorOf(await a.send(to(target), OTHER_HASH));
    assert.ok(err === notListed || err === 'a redirect of the upgrade URL is not http or https', `${target}: ${err}`);
    assert.ok(!err.includes(String(inside.port)), 'the reply does not tell where the server redirected to');
  }
  assert.deepEqual(inside.hits, []);
  // A redirect to an allowed origin whose name resolves to an address outside allowedNetworks.
  const b = await agentWith(t, await tempDir(t), { allowedUrls: [http.base, `http://localhost:${inside.port}`], allowedNetworks: ['127.0.0.1/32'] });
  const viaName = errorOf(await b.send(to(`http://localhost:${inside.port}/secret`), OTHER_HASH));
  // localhost is 127.0.0.1 (allowed) or ::1 (not): either it is reached, or refused by the address rule.
  if (!viaName.startsWith('file failed hash validation')) assert.match(viaName, /^a redirect of the upgrade URL is not allowed: its host resolves only to loopback addresses/);
  // Allowed redirects are followed.
  assert.deepEqual(await a.send(to(`${http.base}/image`)), OK);
});

test('failure replies carry no status, no connect error and no body hash: a closed port looks like a 404', async (t) => {
  const http = await images(t);
  // A port with nothing listening (found by listening and closing).
  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const closedPort = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));

  const dir = await tempDir(t);
  const a = await agentWith(t, dir, {
    allowedUrls: [http.base, `http://127.0.0.1:${closedPort}`],
    allowedNetworks: ['127.0.0.0/8'],
  });
  const replies = [
    errorOf(await a.send(`${http.base}/missing`, OTHER_HASH)),
    errorOf(await a.send(`${http.base}/500`, OTHER_HASH)),
    errorOf(await a.send(`${http.base}/reset`, OTHER_HASH)),
    errorOf(await a.send(`http://127.0.0.1:${closedPort}/image`, OTHER_HASH)),
  ];
  assert.deepEqual(replies, [FAILED, FAILED, FAILED, FAILED]);
  // The body was fetched, but its hash is not in the reply: only the hash the guest sent.
  const bad = errorOf(await a.send(`${http.base}/image`, OTHER_HASH));
  assert.equal(bad, `file failed hash validation: expected_hash ${OTHER_HASH}`);
  assert.ok(!bad.includes(IMAGE_HASH));
  // The operator still sees the details.
  const log = a.logs.join('\n');
  assert.match(log, /HTTP 404/);
  assert.match(log, /HTTP 500/);
  assert.match(log, /ECONNREFUSED/);
  assert.ok(log.includes(IMAGE_HASH));
  await a.agent.idle();
  assert.equal(await a.events(), '');
});

test('address ranges: loopback, private, link-local, unique-local, multicast, unspecified (v4, v6, v4-mapped) are special', () => {
  const special: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'shared (carrier-grade NAT)'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fd12:3456::1', 'unique-local'],
    ['fc00::1', 'unique-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::127.0.0.1', 'IPv4-compatible (deprecated)'],
    ['64:ff9b::7f00:1', 'NAT64'],
    ['2002:7f00:1::', '6to4'],
  ];
  for (const [ip, kind] of special) assert.equal(specialRange(parseIp(ip)!), kind, ip);
  for (const ip of ['1.1.1.1', '8.8.8.8', '172.32.0.1', '192.169.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2a00:1450::1']) {
    assert.equal(specialRange(parseIp(ip)!), undefined, ip);
  }
});

test('the download connects to the address that was checked, not to a second DNS answer', async (t) => {
  const http = await httpServer(t, (req, res) => res.end(req.headers.host));
  // A name that does not resolve at all: the request can only have gone to the pinned (checked) address.
  const body = await new Promise<string>((resolve, reject) => {
    get(`http://upgrade.invalid:${http.port}/x`, { lookup: pinnedLookup({ address: '127.0.0.1', family: 4 }), agent: false }, (res) => {
      let out = '';
      res.on('data', (c) => (out += c));
      res.on('end', () => resolve(out));
    }).on('error', reject);
  });
  assert.equal(body, `upgrade.invalid:${http.port}`, 'the Host header keeps the name');
});

test('staging directory: a shared, foreign, linked or exposed directory is refused before anything is downloaded', async (t) => {
  const http = await images(t);
  const cases: [string, (dir: string) => Promise<string>, RegExp][] = [
    [
      'world-writable and sticky, like /tmp',
      async (d) => {
        const s = join(d, 'shared');
        await mkdir(s);
        await chmod(s, 0o1777);
        return s;
      },
      /has mode 01777, which lets others in/,
    ],
    [
      'readable by others',
      async (d) => {
        const s = join(d, 'open');
        await mkdir(s);
        await chmod(s, 0o755);
        return s;
      },
      /has mode 0755/,
    ],
    [
      'a symbolic link to the agent\'s own directory',
      async (d) => {
        await mkdir(join(d, 'real'), { mode: 0o700 });
        await symlink(join(d, 'real'), join(d, 'link'));
        return join(d, 'link');
      },
      /is a symbolic link/,
    ],
    [
      'inside a directory others may write to',
      async (d) => {
        const parent = join(d, 'parent');
        await mkdir(parent);
        await chmod(parent, 0o777);
        await mkdir(join(parent, 'staging'), { mode: 0o700 });
        return join(parent, 'staging');
      },
      /is inside .*parent, which others may write to/,
    ],
  ];
  if (isRoot) {
    cases.push([
      'owned by another user',
      async (d) => {
        const s = join(d, 'theirs');
        await mkdir(s, { mode: 0o700 });
        await chown(s, 65534, 65534);
        return s;
      },
      /is owned by uid 65534, not the agent's uid 0/,
    ]);
  }
  for (const [what, make, want] of cases) {
    const dir = await tempDir(t);
    const a = await agentWith(t, dir, { stagingDir: await make(dir), allowedUrls: [http.base], allowedNetworks: ['127.0.0.0/8'] });
    const err = errorOf(await a.send(`${http.base}/image`));
    assert.match(err, want, what);
    assert.match(err, /set handlers\.upgrade\.stagingDir$/, what);
    assert.equal(await a.events(), '', what);
  }
  assert.deepEqual(http.hits, [], 'nothing was downloaded');

  // A missing directory is created, 0700, and used.
  const dir = await tempDir(t);
  const fresh = join(dir, 'new', 'staging');
  const ok = await agentWith(t, dir, { stagingDir: fresh, allowedUrls: [http.base], allowedNetworks: ['127.0.0.0/8'] });
  assert.deepEqual(await ok.send(`${http.base}/image`), OK);
  const { stat } = await import('node:fs/promises');
  assert.equal((await stat(fresh)).mode & 0o7777, 0o700);
  assert.equal((await readdir(fresh)).length, 1);
});

test(
  'staging directory: every symbolic link on the way must be root\'s or the agent\'s, and what was checked is what is used',
  { skip: isRoot ? false : 'needs root to make directories and links owned by another user (uid 65534)' },
  async (t) => {
    const http = await images(t);
    const d = await tempDir(t);
    await chmod(d, 0o755);
    // The agent's own directory, reached through links.
    await mkdir(join(d, 'good'), { mode: 0o755 });
    await mkdir(join(d, 'good', 'staging'), { mode: 0o700 });
    // A shared sticky directory (as /tmp) holding another user's link: that user can point it anywhere, at
    // any moment, e.g. at a directory of theirs between the agent's check and its use.
    await mkdir(join(d, 'shared'));
    await chmod(join(d, 'shared'), 0o1777);
    await symlink(join(d, 'good'), join(d, 'shared', 'link'));
    await lchown(join(d, 'shared', 'link'), 65534, 65534);
    // Another user's directory with a link in it.
    await mkdir(join(d, 'alice'), { mode: 0o755 });
    await chown(join(d, 'alice'), 65534, 65534);
    await symlink(join(d, 'good'), join(d, 'alice', 'link'));
    await lchown(join(d, 'alice', 'link'), 65534, 65534);
    // Root's links: one straight to the good directory, one whose target goes through the other user's link.
    await symlink(join(d, 'good'), join(d, 'root-link'));
    await symlink(join(d, 'shared', 'link'), join(d, 'root-link-via-theirs'));

    const refused: [string, RegExp][] = [
      [join(d, 'shared', 'link', 'staging'), /goes through the symbolic link .*\/shared\/link, which belongs to uid 65534:/],
      [join(d, 'alice', 'link', 'staging'), /is inside .*\/alice, which belongs to uid 65534:/],
      [join(d, 'root-link-via-theirs', 'staging'), /goes through the symbolic link .*\/shared\/link, which belongs to uid 65534:/],
    ];
    for (const [stagingDir, want] of refused) {
      const a = await agentWith(t, await tempDir(t), { stagingDir, allowedUrls: [http.base], allowedNetworks: ['127.0.0.0/8'] });
      const err = errorOf(await a.send(`${http.base}/image`));
      assert.match(err, want, stagingDir);
      assert.match(err, /set handlers\.upgrade\.stagingDir$/, stagingDir);
      assert.equal(await a.events(), '', stagingDir);
    }
    assert.deepEqual(http.hits, [], 'nothing was downloaded');
    assert.deepEqual(await readdir(join(d, 'good', 'staging')), [], 'nothing was staged');

    // Root's own link is followed: the image lands in the directory it points to, and is installed from there.
    const ok = await agentWith(t, await tempDir(t), { stagingDir: join(d, 'root-link', 'staging'), allowedUrls: [http.base], allowedNetworks: ['127.0.0.0/8'] });
    assert.deepEqual(await ok.send(`${http.base}/image`), OK);
    await ok.agent.idle();
    assert.equal(await ok.events(), 'installed\nreboot\n');
    assert.equal((await readdir(join(d, 'good', 'staging'))).length, 1);
  },
);

test(
  'another user cannot swap the staged image between verification and install',
  { skip: !isRoot || spawnSync('setpriv', ['--version']).status !== 0 ? 'needs root and setpriv to act as another user' : false },
  async (t) => {
    const http = await images(t);
    const dir = await tempDir(t);
    await chmod(dir, 0o755); // let nobody reach the staging directory's parent, as under /var/lib
    const events = join(dir, 'events');
    const expected = join(dir, 'expected');
    await writeFile(expected, IMAGE);
    // The installer first lets uid 65534 try everything on the file it is handed, then checks what it got.
    const attacker = [
      'echo "attacker uid $(id -u)";',
      'for f in "$1" "$(dirname "$1")/evil"; do',
      '  (echo evil > "$f") 2>/dev/null && echo "wrote $f";',
      'done;',
      '(rm -f "$1") 2>/dev/null && [ ! -e "$1" ] && echo "removed";',
      '(ln -sf /etc/passwd "$1") 2>/dev/null && echo "linked";',
      'true',
    ].join(' ');
    const { address, agent } = await startAgent(t, `unix://${join(dir, 'agent.sock')}`, {
      handlers: {
        upgrade: {
          stagingDir: join(dir, 'staging'),
          allowedUrls: [http.base],
          allowedNetworks: ['127.0.0.0/8'],
          installCommand: [
            'sh',
            '-c',
            `setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '${attacker}' sh "$1" >> ${events}; cmp -s "$1" "$2" && echo installed >> ${events}`,
            'sh',
            '{file}',
            expected,
          ],
          rebootCommand: ['true'],
        },
      },
    });
    const client = new GuestClient({ address: parseControlAddress(address) });
    assert.deepEqual(await client.send({ type: 'upgrade', url: `${http.base}/image`, targetHash: IMAGE_HASH }), OK);
    await agent.idle();
    assert.equal(await readFile(events, 'utf8'), 'attacker uid 65534\ninstalled\n', 'the other user changed nothing; the installer got the verified bytes');
  },
);
