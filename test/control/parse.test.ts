/** Address syntax and configuration validation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatControlAddress, parseControlAddress, VSOCK_CID_ANY } from '../../src/control/address.js';
import { defaultAgentConfig, loadAgentConfig, resolveAgentConfig } from '../../src/control/config.js';
import { isHostlinkError } from '../../src/errors.js';
import { tempDir } from './helpers.js';

test('addresses: vsock with defaults, unix, hybrid vsock, TCP', () => {
  const cases: [string, ReturnType<typeof parseControlAddress>, string][] = [
    ['vsock://2:19090', { kind: 'vsock', cid: 2, port: 19090 }, 'vsock://2:19090'],
    ['vsock://', { kind: 'vsock', cid: 2, port: 19090 }, 'vsock://2:19090'],
    ['vsock://3', { kind: 'vsock', cid: 3, port: 19090 }, 'vsock://3:19090'],
    ['vsock://:1024', { kind: 'vsock', cid: 2, port: 1024 }, 'vsock://2:1024'],
    ['vsock://any:19090', { kind: 'vsock', cid: VSOCK_CID_ANY, port: 19090 }, 'vsock://any:19090'],
    ['unix:///run/hostlink/agent.sock', { kind: 'unix', path: '/run/hostlink/agent.sock' }, 'unix:///run/hostlink/agent.sock'],
    ['unix:///srv/vm1/v.sock?port=19090', { kind: 'unix', path: '/srv/vm1/v.sock', vsockPort: 19090 }, 'unix:///srv/vm1/v.sock?port=19090'],
    ['127.0.0.1:19090', { kind: 'tcp', host: '127.0.0.1', port: 19090 }, '127.0.0.1:19090'],
    ['tcp://localhost:0', { kind: 'tcp', host: 'localhost', port: 0 }, 'localhost:0'],
    ['[::1]:9', { kind: 'tcp', host: '::1', port: 9 }, '[::1]:9'],
  ];
  for (const [text, want, formatted] of cases) {
    assert.deepEqual(parseControlAddress(text), want, text);
    assert.equal(formatControlAddress(want), formatted);
  }
  for (const bad of ['vsock://two:1', 'vsock://2:99999999999', 'unix://relative.sock', 'unix:///x?port=abc', 'localhost', 'http://x:1', '1.2.3.4:70000']) {
    assert.throws(() => parseControlAddress(bad), (e: unknown) => isHostlinkError(e, 'usage') && e.message.includes(bad), bad);
  }
});

test('configuration: defaults, merging, and errors that name the key', async (t) => {
  const d = defaultAgentConfig();
  assert.deepEqual(d.allowedCids, [3]);
  assert.equal(d.timeouts.readMs, 5000);
  assert.equal(d.handlers.notify.maxCount, 10);
  assert.deepEqual(d.handlers.notify.consoles, ['/dev/tty1', '/dev/ttyS0']);

  const c = resolveAgentConfig({ allowedCids: [3, 4], timeouts: { requestMs: 10 }, handlers: { notify: { enabled: false } } });
  assert.deepEqual(c.allowedCids, [3, 4]);
  assert.equal(c.timeouts.requestMs, 10);
  assert.equal(c.timeouts.writeMs, 5000, 'untouched keys keep their defaults');
  assert.equal(c.handlers.notify.enabled, false);
  assert.deepEqual(c.handlers.notify.consoles, ['/dev/tty1', '/dev/ttyS0']);

  const bad: [unknown, RegExp][] = [
    [{ allowedCid: [3] }, /unknown key 'allowedCid'/],
    [{ allowedCids: ['3'] }, /'allowedCids\[0\]' must be a CID/],
    [{ handlers: { 'attach-hsm': { command: 'virsh attach-device' } } }, /'handlers\.attach-hsm\.command' must be a non-empty array of strings/],
    [{ handlers: { reboot: {} } }, /unknown key 'handlers\.reboot'/],
    [{ timeouts: { readMs: -1 } }, /'timeouts\.readMs' must be a whole number of milliseconds from 1 to 2147483647/],
    [[1], /must be a JSON object/],
  ];
  for (const [input, re] of bad) assert.throws(() => resolveAgentConfig(input), (e: unknown) => isHostlinkError(e, 'usage') && re.test(e.message), JSON.stringify(input));

  const dir = await tempDir(t);
  const file = join(dir, 'agent.json');
  await writeFile(file, '{ "allowedCids": [3], }');
  assert.throws(() => loadAgentConfig(file), (e: unknown) => isHostlinkError(e, 'usage') && /not valid JSON/.test(e.message));
  assert.throws(() => loadAgentConfig(join(dir, 'missing.json')), (e: unknown) => isHostlinkError(e, 'usage') && /does not exist/.test(e.message));
});
