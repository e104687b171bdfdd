/**
 * Host.open with remote workers whose TLS files cannot be read: the error names the option and the file, and
 * nothing the open had taken stays taken (the LMDB environment, the data directory's lock), so the same
 * directory opens again at once, in this process, and serves calls.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { LOCK_FILE } from '../../src/host/state/data-dir.js';
import { contract, id32, tempDir, utf8 } from '../helpers.js';

/** Files under `dir` this process holds open (Linux /proc; [] elsewhere, where the check is then vacuous). */
function openFilesUnder(dir: string): string[] {
  if (!existsSync('/proc/self/fd')) return [];
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

test('Host.open with unreadable worker TLS files fails clearly and releases the store and the lock', { timeout: 60_000 }, async () => {
  const dir = tempDir('hostlink-open-failure-');
  try {
    const dataDir = join(dir.path, 'data');
    const missing = join(dir.path, 'no-such-node.pem');
    for (let attempt = 0; attempt < 2; attempt++) {
      await assert.rejects(
        Host.open({ dataDir, workers: { listen: '127.0.0.1:0', tls: { cert: missing, key: missing, ca: missing } } }),
        (e: Error) => {
          assert.match(e.message, /^HostOptions\.workers: cannot read the TLS cert file .*no-such-node\.pem/);
          return true;
        },
      );
      assert.equal(existsSync(join(dataDir, LOCK_FILE)), false, 'the data directory lock was released');
      assert.deepEqual(openFilesUnder(dataDir), [], 'the LMDB environment was closed');
    }
    // The same directory, in the same process: the store opens, takes writes, and reads them back.
    const host = await Host.open({ dataDir, poolSize: 1 });
    try {
      const kv = await host.deploy(contract('kv-store'));
      const ctx = id32('open-failure');
      const o = await host.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key: 'k', value: 'v' })), contextId: ctx });
      assert.equal(o.applied, true, JSON.stringify(o.result));
    } finally {
      await host.close();
    }
    const again = await Host.open({ dataDir });
    assert.equal(again.state(id32('open-failure')).entries.length > 0, true, 'the write survived a close and reopen');
    await again.close();
  } finally {
    dir.remove();
  }
});
