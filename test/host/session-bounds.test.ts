/**
 * Session bounds against real (fake) VM processes on real sockets: a VM that pipelines requests while its
 * next_message is parked does not make the host read them into memory, and a storage_read_many that repeats a
 * key with a large value reads it once and is refused with limit_exceeded instead of building a response
 * larger than a frame, and a VM that sends more requests than its call's gas limit pays for is cut off at the first
 * one over. Plus the response size check of every ok answer.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Socket } from 'node:net';
import { Job } from '../../src/host/job.js';
import { serveSession, Session, type WorkSource } from '../../src/host/session.js';
import { launchVm, type VmProcess } from '../../src/host/supervisor.js';
import { MAX_FRAME_BYTES } from '../../src/protocol/generated.js';
import { decodeResponse, encodeOk, encodeRequest, encodeStatus, MAX_BATCH_KEYS } from '../../src/protocol/messages.js';
import { roundTripGas } from '../../src/protocol/effect-limits.js';
import { DEFAULT_GAS_LIMIT } from '../../src/protocol/message.js';
import { NONDET_LIMITS } from '../../src/protocol/nondet.generated.js';
import { sessionIo, type SessionIo, type SessionIoMode } from '../../src/transport/session-io.js';
import { MemoryBackend, message, utf8 } from '../helpers.js';

const FAKE_VM = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'fake-vm.js');

async function fakeVm(mode: string): Promise<{ vm: VmProcess; socket: Socket; stderr: () => string }> {
  const vm = await launchVm({ transport: 'unix', command: [process.execPath, FAKE_VM, mode] });
  return { vm, socket: await vm.connection, stderr: () => vm.stderrTail() };
}

const never: WorkSource = { nextJob: () => new Promise(() => undefined) };

/** Work that is `job` once, then none. */
function onlyJob(job: Job): WorkSource {
  let given = false;
  return { nextJob: () => Promise.resolve(given ? null : ((given = true), job)) };
}

/**
 * The session's I/O of `mode` on `socket`, or null (the test skips) when that mode is not available here. What
 * the host read and holds unsent is asked of it: each mode counts its own (bytesRead, bytesUnsent).
 */
function ioFor(socket: Socket, mode: SessionIoMode, t: { skip(why: string): void }): SessionIo | null {
  const io = sessionIo(socket, { io: mode });
  if (io.mode === mode) return io;
  t.skip('the host socket addon is not built (no C compiler?)');
  return null;
}

describe('session bounds', () => {
  for (const mode of ['polled', 'libuv'] as SessionIoMode[]) {
  test(`${mode}: requests pipelined while next_message is parked are not read into the host`, { timeout: 60_000 }, async (t) => {
    const backend = new MemoryBackend();
    const { vm, socket, stderr } = await fakeVm('flood');
    const io = ioFor(socket, mode, t);
    if (io === null) return void (await vm.stop(200));
    const session = new Session(backend, { pool: never });
    const served = serveSession(session, socket, MAX_FRAME_BYTES, { io });
    // Wait until the host has stopped reading (its read count is stable) or has read far more than a bound.
    const BOUND = 16 * 1024 * 1024;
    let last = -1;
    while (io.bytesRead !== last && io.bytesRead <= BOUND && !stderr().includes('done')) {
      last = io.bytesRead;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(io.bytesRead > 0, 'the host read the hello and next_message');
    assert.ok(io.bytesRead <= BOUND, `the host read ${io.bytesRead} bytes of pipelined requests`);
    assert.doesNotMatch(stderr(), /done/, 'the flooding VM could write its whole flood');
    assert.equal(backend.reads, 0, 'no pipelined storage_read was served while no execution was in progress');
    socket.destroy();
    await served;
    await vm.stop(200);
  });

  test(`${mode}: a VM that sends more requests than its gas limit pays for is cut off at the first one over`, { timeout: 60_000 }, async (t) => {
    const backend = new MemoryBackend();
    const code = backend.deploy(utf8('\0asm\x01\0\0\0'));
    // Enough gas for 50 round trips: an honest VM charges round_trip.base before it sends each request.
    // Enough gas for 50 reads of an empty key and their answers (absent), as an honest VM charges them: base and
    // bytes before sending each, per_key for its key, the answer's bytes when it arrives.
    const oneRead = encodeRequest('storage_read', { key: new Uint8Array(0) }).length + encodeStatus('absent', {}).length;
    const gasLimit = roundTripGas({ count: 50, bytes: 50 * oneRead, keys: 50 }) + 7n;
    const job = new Job(message({ codeHash: code, method: 'm', gasLimit }));
    const once = onlyJob(job);
    const { vm, socket, stderr } = await fakeVm('flood-read');
    const io = ioFor(socket, mode, t);
    if (io === null) return void (await vm.stop(200));
    const { error } = await serveSession(new Session(backend, { pool: once }), socket, MAX_FRAME_BYTES, { io });
    socket.destroy();
    await vm.exited;
    assert.match(error?.message ?? '', /storage_read is request 51 on the guest's behalf: .* more than the call's gas limit \d+ pays for/);
    assert.equal(stderr().trim(), 'answered 50', `the 50 requests the gas paid for were answered, and no more: ${JSON.stringify(vm.crash())}`);
    assert.equal(job.guest.count, 51);
  });

  test(`${mode}: a VM asking for the code again and again during one call is cut off past what a VM needs`, { timeout: 60_000 }, async (t) => {
    // get_code is the VM's own request (not priced to the guest): unbounded, a 3 MiB module fetched 841 times in
    // one call cost the host 3.6 s of copying, until the deadline.
    const backend = new MemoryBackend();
    const code = backend.deploy(utf8('\0asm\x01\0\0\0'));
    const job = new Job(message({ codeHash: code, method: 'm' }));
    const once = onlyJob(job);
    const { vm, socket, stderr } = await fakeVm('flood-code');
    const io = ioFor(socket, mode, t);
    if (io === null) return void (await vm.stop(200));
    const { error } = await serveSession(new Session(backend, { pool: once }), socket, MAX_FRAME_BYTES, { io });
    socket.destroy();
    await vm.exited;
    const most = 1 + NONDET_LIMITS.maxSubInstanceDepth;
    assert.equal(error?.message, `get_code is request ${most + 1} for the code during one call; a VM needs at most ${most}`);
    assert.equal(stderr().trim(), `answered ${most}`);
  });

  // Requests whose keys or bytes cost far more than round_trip.base: the cut counts them too. Counting requests
  // alone, the default gas limit let a VM have 555 lookups of 4,096 keys each (2.3 million keys in 2.4 s), or
  // 555 MiB of blob data staged, from one call.
  for (const [kind, request, keys] of [
    ['keys', encodeRequest('storage_read_many', { keys: Array.from({ length: MAX_BATCH_KEYS }, (_, i) => Uint8Array.of(i & 0xff, i >> 8)) }), MAX_BATCH_KEYS],
    ['blob', encodeRequest('blob_append', { handle: 1n, data: new Uint8Array(1024 * 1024) }), 0],
  ] as const) {
    test(`${mode}: a VM flooding requests of many keys or bytes (${kind}) is cut off at the first its gas cannot pay`, { timeout: 60_000 }, async (t) => {
      const backend = new MemoryBackend();
      const code = backend.deploy(utf8('\0asm\x01\0\0\0'));
      const job = new Job(message({ codeHash: code, method: 'm' }));
      const once = onlyJob(job);
      const { vm, socket, stderr } = await fakeVm(`flood-${kind}`);
      const io = ioFor(socket, mode, t);
      if (io === null) return void (await vm.stop(200));
      const { error } = await serveSession(new Session(backend, { pool: once }), socket, MAX_FRAME_BYTES, { io });
      socket.destroy();
      await vm.exited;
      const cut = /is request (\d+) on the guest's behalf: with the requests before it and their answers it asks for (\d+) gas/.exec(error?.message ?? '');
      assert.ok(cut, `the session ended for want of gas: ${error?.message}`);
      assert.ok(BigInt(cut[2]!) > DEFAULT_GAS_LIMIT);
      // At most what the gas limit pays for the requests alone (their answers only add to it).
      const paid = Number(DEFAULT_GAS_LIMIT / roundTripGas({ count: 1, bytes: request.length, keys }));
      const answered = Number(/^answered (\d+)$/.exec(stderr().trim())?.[1] ?? -1);
      assert.equal(answered, Number(cut[1]) - 1, 'every request before the cut was answered');
      assert.ok(answered >= 1 && answered <= paid, `${answered} requests answered, the gas pays for at most ${paid}`);
    });
  }

  for (const [gas, expected] of [
    // 4096 copies of a 32 KiB value make a 128 MiB answer, twice the frame limit, from a 30 KB request. With
    // the gas for it, the host answers the longest prefix that fits in a frame (the VM asks for the rest);
    // with the default gas, which pays for about 10 MB of answers, it answers `unaffordable` and builds nothing.
    [10n ** 13n, `ok ${Math.floor((MAX_FRAME_BYTES - 5) / (5 + 32 * 1024))}`],
    [DEFAULT_GAS_LIMIT, 'unaffordable'],
  ] as const) {
    test(`${mode}: storage_read_many of one large key repeated (gas ${gas}): read once, answered ${expected.split(' ')[0]}, never over a frame`, { timeout: 60_000 }, async (t) => {
      const backend = new MemoryBackend();
      const code = backend.deploy(utf8('\0asm\x01\0\0\0'));
      const job = new Job(message({ codeHash: code, method: 'm', gasLimit: gas }));
      backend.apply(job.message.contextId, [[utf8('big'), new Uint8Array(32 * 1024).fill(7)]]);
      const once = onlyJob(job);
      const { vm, socket, stderr } = await fakeVm('read-many');
      const io = ioFor(socket, mode, t);
      if (io === null) return void (await vm.stop(200));
      const served = serveSession(new Session(backend, { pool: once }), socket, MAX_FRAME_BYTES, { io });
      await vm.exited;
      assert.equal(stderr().trim(), expected);
      assert.equal(backend.reads, 1, 'the repeated key was read once');
      socket.destroy();
      await served;
    });
  }

  test(`${mode}: a VM that does not read its answers: the host holds about one answer, then answers every request in order`, { timeout: 60_000 }, async (t) => {
    const backend = new MemoryBackend();
    const code = backend.deploy(utf8('\0asm\x01\0\0\0'));
    // Gas for the 256 reads and their 16 MiB of answers (round_trip per_byte): the default limit pays for fewer.
    const job = new Job(message({ codeHash: code, method: 'm', gasLimit: 4_000_000_000n }));
    const VALUE_BYTES = 64 * 1024; // NO_READ_VALUE_BYTES in fake-vm.ts
    backend.apply(job.message.contextId, [[utf8('big'), new Uint8Array(VALUE_BYTES).fill(9)]]);
    const once = onlyJob(job);
    const { vm, socket, stderr } = await fakeVm('no-read');
    const io = ioFor(socket, mode, t);
    if (io === null) return void (await vm.stop(200));
    const served = serveSession(new Session(backend, { pool: once }), socket, MAX_FRAME_BYTES, { io });
    // While the VM does not read (256 answers of 64 KiB, 16 MiB, far past the socket buffers), what the host
    // holds unsent stays about one answer.
    let held = 0;
    while (!stderr().includes('not reading')) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 20; i++) {
      held = Math.max(held, io.bytesUnsent);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Something is held (the VM stopped reading while answers were due), and no more than about one answer.
    assert.ok(held > 0, 'the host held no answer for a VM that stopped reading');
    assert.ok(held <= 2 * (VALUE_BYTES + 16), `the host held ${held} bytes of answers for a VM that does not read`);
    await vm.exited;
    assert.match(stderr(), /answered 256\n/, stderr());
    assert.equal(backend.reads, 256);
    socket.destroy();
    assert.deepEqual(await served, {});
  });
  }

  test('an ok response over the frame limit is answered limit_exceeded, computed before it is built', () => {
    const body = encodeOk('storage_read', { value: new Uint8Array(100) }, 64);
    const r = decodeResponse('storage_read', body);
    assert.equal(r.status, 'limit_exceeded');
    assert.match((r.fields as { reason: string }).reason, /^storage_read response of 105 bytes exceeds the 64-byte frame limit$/);
    assert.equal(decodeResponse('storage_read', encodeOk('storage_read', { value: new Uint8Array(59) }, 64)).status, 'ok');
    assert.ok(MAX_FRAME_BYTES > 64);
    assert.ok(encodeRequest('next_message', {}).length === 1);
  });
});
