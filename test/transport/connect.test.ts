/** connectHost and channelInfo, in this process: nothing here blocks waiting for the host. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { channelInfo, connectHost } from '../../src/transport/connect.js';
import { parseAddress } from '../../src/transport/address.js';
import { isHostlinkError } from '../../src/errors.js';
import { startEchoHost } from './fixtures/echo-host.js';

test('channelInfo says which implementations exist and what auto picks', () => {
  const info = channelInfo();
  assert.equal(info.js.available, process.platform !== 'win32');
  assert.equal(info.auto, info.native.available ? 'native' : 'js');
  assert.match(info.native.path, /native\/build\/Release\/hostlink_channel\.node$/);
  if (!info.native.available) assert.match(info.native.reason ?? '', /not built|failed to load/);
});

test('connectHost: auto picks native when built; explicit impls are honoured; close is idempotent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-connect-test-'));
  const host = await startEchoHost({ unix: join(dir, 'h.sock') });
  try {
    const info = channelInfo();
    const auto = await connectHost(parseAddress(host.address));
    assert.equal(auto.kind, info.auto);
    auto.close();
    auto.close();
    assert.throws(() => auto.request(Uint8Array.of(1)), (e: unknown) => isHostlinkError(e, 'channel_closed'));
    const js = await connectHost(parseAddress(host.address), { impl: 'js' });
    assert.equal(js.kind, 'js');
    js.close();
    if (info.native.available) {
      const native = await connectHost(parseAddress(host.address), { impl: 'native' });
      assert.equal(native.kind, 'native');
      native.close();
    } else {
      await assert.rejects(connectHost(parseAddress(host.address), { impl: 'native' }), (e: unknown) => isHostlinkError(e, 'usage'));
    }
    assert.equal(host.received, 0);
  } finally {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('connectHost resolves localhost for both impls', async () => {
  const host = await startEchoHost({ tcp: true });
  try {
    const port = Number(host.address.split(':')[1]);
    for (const impl of channelInfo().native.available ? (['native', 'js'] as const) : (['js'] as const)) {
      const ch = await connectHost({ kind: 'tcp', host: 'localhost', port }, { impl });
      ch.close();
    }
  } finally {
    await host.close();
  }
});
