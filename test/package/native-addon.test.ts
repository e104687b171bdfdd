// The one loader of Hostlink's compiled addons: a missing or broken addon is a reason, not a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addonStatus, nativeArtifact } from '../../src/native-addon.js';

test('a missing addon file gives a reason that names it and how to build it', () => {
  const path = join(tmpdir(), `hostlink-no-such-addon-${process.pid}.node`);
  const status = addonStatus<object>(path, 'example');
  assert.equal(status.addon, undefined);
  assert.match(status.reason ?? '', /the example addon is not built/);
  assert.ok(status.reason?.includes(path));
  assert.match(status.reason ?? '', /node scripts\/build-native\.mjs/);
});

test('a file that is not a loadable addon gives a reason, and the answer is kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hostlink-addon-'));
  try {
    const path = join(dir, 'broken.node');
    writeFileSync(path, 'not an ELF file');
    const first = addonStatus<object>(path, 'broken');
    assert.equal(first.addon, undefined);
    assert.match(first.reason ?? '', /the broken addon failed to load/);
    assert.equal(addonStatus<object>(path, 'broken'), first, 'loaded once per path');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the built addons load through it', (t) => {
  const channel = nativeArtifact('hostlink_channel.node');
  if (!existsSync(channel)) return t.skip('native parts not built (node scripts/build-native.mjs)');
  const status = addonStatus<Record<string, unknown>>(channel, 'native channel');
  assert.equal(status.reason, undefined);
  assert.equal(typeof status.addon?.['connectUnix'], 'function');
});
