/**
 * The native channel's blocked read sleeps until its socket is readable, not through every wake-up of the
 * socket. A task asleep in a unix socket's recv() is also woken each time the peer reads what this end wrote
 * (the "space to write again" wake-up), so a VM waiting for an answer woke, found nothing and slept again once
 * per request the host read: a context switch in the VM and a cross-CPU wake-up paid by the host. Through a real
 * process on a real unix socket, the host side reading each byte as it arrives.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { channelInfo } from '../../src/transport/connect.js';
import { tempDir } from '../helpers.js';

const CHILD = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'fixtures', 'blocked-reader.js');
const BYTES = 20;
const nativeMissing = channelInfo().native.available ? false : `native addon unavailable: ${channelInfo().native.reason}`;

test('a read blocked in the native channel is not woken each time the host reads what this end wrote', { skip: nativeMissing, timeout: 60_000 }, async () => {
  const dir = tempDir('hostlink-wakeups-');
  const path = join(dir.path, 's.sock');
  let received = 0;
  const server = createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received === BYTES) socket.write(Uint8Array.of(1));
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  try {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [CHILD, path, String(BYTES)], { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
    );
    const { got, wakeups } = JSON.parse(out) as { got: number; wakeups: number };
    assert.equal(got, 1, 'the answer was read');
    assert.equal(received, BYTES);
    // Woken by the answer (and at most a few times by the scheduler); before, once more per byte the host read.
    assert.ok(wakeups < BYTES / 2, `the blocked read woke ${wakeups} times while the host read ${BYTES} bytes one by one`);
  } finally {
    server.close();
    dir.remove();
  }
});
