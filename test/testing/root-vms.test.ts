/**
 * The harness run as root where the VM user cannot read the installation (a project in a private folder): like
 * the hostlink command, it runs VMs as root with the other sandbox layers on and warns, and doctor says why
 * VMs run as root. Real processes: Node is started from a 0700 folder (a hard link to the same binary), so the
 * default VM user cannot read the program that would run the VM.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, linkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, test } from 'node:test';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { contractPath, ROOT, tempDir } from '../helpers.js';

const notRoot = process.getuid?.() !== 0 ? 'needs root (the VM user is dropped to only by a root host)' : false;

describe('root host, installation unreadable by the VM user', { skip: notRoot }, () => {
  const dir = tempDir('hostlink-private-'); // mkdtemp makes it 0700: nobody cannot enter it
  after(() => dir.remove());
  const node = join(dir.path, 'node');
  try {
    linkSync(process.execPath, node);
  } catch {
    copyFileSync(process.execPath, node); // another file system: a copy (mode kept)
  }
  const env = { ...process.env };
  delete env['HOSTLINK_SANDBOX_USER'];

  test('TestHost runs the calls as root VMs and warns, naming the variable that chooses', () => {
    const script = join(dir.path, 'probe.mjs');
    writeFileSync(
      script,
      `import { TestHost } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'src', 'testing', 'index.js')).href)};
const t = await TestHost.open();
try {
  const kv = await t.deploy(${JSON.stringify(contractPath('kv-store'))});
  const r = await kv.call('set', { key: 'a', value: 'b' });
  console.log(JSON.stringify({ code: r.result.code, message: r.result.code === 'return' ? null : r.result.message }));
} finally {
  await t.close();
}
`,
    );
    const r = spawnSync(node, [script], { encoding: 'utf8', env, timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { code: 'return', message: null }, r.stderr);
    // What nobody cannot read: the node binary, or the checkout itself when that is private too (a clone in mktemp -d).
    assert.match(r.stderr, /the VM user nobody .*cannot read .*(node|hostlink\.js); the tests run VMs as root with the other sandbox layers on \(.*set HOSTLINK_SANDBOX_USER to choose\)/);
  });

  test('doctor says why VMs run as root, not that an operator configured it', () => {
    const r = spawnSync(node, [HOSTLINK_BIN, 'doctor', '--json'], { encoding: 'utf8', env, timeout: 60_000 });
    const out = JSON.parse(r.stdout) as { checks: { name: string; detail: string }[] };
    const uid = out.checks.find((c) => c.name === 'sandbox uid');
    assert.ok(uid, r.stdout);
    assert.doesNotMatch(uid.detail, /operator configured/);
    assert.match(uid.detail, /VMs run as root with the other layers on, because the VM user nobody .*cannot read .*(node|hostlink\.js)/);
    assert.match(r.stderr, /warning: the VM user nobody .*cannot read/);
  });
});
