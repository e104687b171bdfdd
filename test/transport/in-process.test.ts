import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InProcessChannel } from '../../src/transport/in-process.js';
import { HostlinkError, isHostlinkError } from '../../src/errors.js';

test('InProcessChannel hands each request to the handler and returns its answer, copied both ways', () => {
  let seen: Uint8Array | undefined;
  const kept = Uint8Array.of(9, 9);
  const ch = new InProcessChannel((body) => {
    seen = body;
    return body.length ? Uint8Array.of(body[0]! + 1) : kept;
  });
  assert.equal(ch.kind, 'in-process');
  const req = Uint8Array.of(41, 0);
  assert.deepEqual(ch.request(req), Uint8Array.of(42));
  req[0] = 0; // the VM reusing its buffer must not change what the host got
  assert.deepEqual(seen, Uint8Array.of(41, 0));
  const out = ch.request(new Uint8Array(0));
  out[0] = 1; // nor may the VM change the host's buffer
  assert.deepEqual(kept, Uint8Array.of(9, 9));
});

test('InProcessChannel: errors poison the channel; close makes it unusable; oversized answers are protocol errors', () => {
  const failing = new InProcessChannel(() => {
    throw new Error('db down');
  });
  assert.throws(() => failing.request(Uint8Array.of(1)), (e: unknown) => isHostlinkError(e, 'internal') && /db down/.test(e.message));
  assert.throws(() => failing.request(Uint8Array.of(1)), (e: unknown) => isHostlinkError(e, 'channel_closed') && /db down/.test(e.message));

  const hostlink = new InProcessChannel(() => {
    throw new HostlinkError('timeout', 'slow');
  });
  assert.throws(() => hostlink.request(Uint8Array.of(1)), (e: unknown) => isHostlinkError(e, 'timeout'));

  const big = new InProcessChannel(() => new Uint8Array(11), { maxFrameBytes: 10 });
  assert.throws(() => big.request(Uint8Array.of(1)), (e: unknown) => isHostlinkError(e, 'protocol'));

  const ok = new InProcessChannel((b) => b);
  ok.close();
  ok.close();
  assert.throws(() => ok.request(Uint8Array.of(1)), (e: unknown) => isHostlinkError(e, 'channel_closed'));
});
