/**
 * A pool VM hands in its result and asks for its next message in one write (consume_result + next_message,
 * src/vm/process.ts). The host answers requests in order, and the answers it gives at once leave in one write:
 * with a job queued, the pair costs the VM one round trip and the host one write. Over real unix sockets with
 * the real session loop, and through real VM processes.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { sessionIo, sessionIoMode, type SessionIo, type SessionIoMode } from '../../src/transport/session-io.js';
import { describe, test } from 'node:test';
import { Host } from '../../src/host/host.js';
import { Job } from '../../src/host/job.js';
import { serveSession, Session, type WorkSource } from '../../src/host/session.js';
import { emptyEffects, encodeEffects } from '../../src/protocol/effects.js';
import { encodeFrame, FrameReader } from '../../src/protocol/frame.js';
import { decodeResponse, encodeRequest } from '../../src/protocol/messages.js';
import { encodeResult } from '../../src/protocol/result.js';
import { contract, id32, killBusyVm, MemoryBackend, message, tempDir, text, unixSocketPair, utf8 } from '../helpers.js';

/**
 * The session's I/O on `socket` (the socket addon or libuv's stream handle), counting its writes: each is one write
 * to the kernel on either path (a send, or one handle write).
 */
function countedIo(socket: Socket, mode: SessionIoMode): { io: SessionIo; writes: { writes: number } } {
  const io = sessionIo(socket, { io: mode });
  const counter = { writes: 0 };
  const write = io.write.bind(io);
  io.write = (bytes, taken) => (counter.writes++, write(bytes, taken));
  return { io, writes: counter };
}

async function until(ok: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const hello = (): Uint8Array => encodeRequest('hello', { minVersion: 1, maxVersion: 1, vmVersion: 'test', pid: 1, proof: new Uint8Array(32) });
const okResult = (): Uint8Array => encodeRequest('consume_result', { result: encodeResult({ code: 'return', value: null }), effects: encodeEffects(emptyEffects()) });
const nextMessage = (): Uint8Array => encodeRequest('next_message', {});

/**
 * A session on a real socket whose work source hands out `jobs` at once, or (`wait`) only when the test calls
 * `release()`, one ask at a time.
 */
async function served(jobs: Job[], options: { wait?: boolean; io?: SessionIoMode } = {}) {
  const backend = new MemoryBackend();
  let asked = 0;
  const waiting: (() => void)[] = [];
  const work: WorkSource = {
    nextJob: () => {
      asked++;
      if (!options.wait) return jobs.shift() ?? null;
      return new Promise((resolve) => waiting.push(() => resolve(jobs.shift() ?? null)));
    },
  };
  const { server, client, close } = await unixSocketPair();
  const { io, writes } = countedIo(server, options.io ?? sessionIoMode().mode);
  const done = serveSession(new Session(backend, { pool: work }), server, undefined, { io });
  const reader = new FrameReader();
  const answers: Buffer[] = [];
  client.on('data', (c: Buffer) => answers.push(...reader.push(c)));
  const release = async (): Promise<void> => {
    await until(() => waiting.length > 0, 'the session to ask for work');
    waiting.shift()!();
  };
  return { client, close, done, answers, writes, asked: () => asked, release };
}

const jobFor = (backend: MemoryBackend, method: string): Job => new Job(message({ codeHash: backend.deploy(utf8('\0asm\x01\0\0\0')), method }));

describe('a result and the next message sent together', () => {
  for (const io of ['polled', 'libuv'] as SessionIoMode[]) {
  test(`${io}: with a job queued, both are answered in one write, the next job handed out at once`, async (t) => {
    if (io === 'polled' && sessionIoMode().mode !== 'polled') return t.skip('the host socket addon is not built (no C compiler?)');
    const b = new MemoryBackend();
    const first = jobFor(b, 'first');
    const second = jobFor(b, 'second');
    const { client, close, done, answers, writes, asked } = await served([first, second], { io });
    try {
      client.write(Buffer.concat([encodeFrame(hello()), encodeFrame(nextMessage())]));
      await until(() => answers.length === 2, 'hello and the first job');
      assert.equal(decodeResponse('next_message', answers[1]!).status, 'ok');
      const before = writes.writes;
      client.write(Buffer.concat([encodeFrame(okResult()), encodeFrame(nextMessage())]));
      await until(() => answers.length === 4, 'the result acknowledged and the second job');
      assert.equal(decodeResponse('consume_result', answers[2]!).status, 'ok');
      const next = decodeResponse('next_message', answers[3]!);
      assert.equal(next.status, 'ok');
      assert.equal((next.fields as { message: string }).message, second.messageJson);
      assert.equal(writes.writes - before, 1, 'the two answers left in one write');
      assert.equal(asked(), 2);
      assert.deepEqual(first.ending?.kind, 'result');
      client.end();
      assert.deepEqual(await done, {});
    } finally {
      close();
    }
  });
  }

  test('with no job yet, the result is acknowledged at once and the next message answered when work comes', async () => {
    const b = new MemoryBackend();
    const { client, close, done, answers, release } = await served([jobFor(b, 'first'), jobFor(b, 'second')], { wait: true });
    try {
      client.write(Buffer.concat([encodeFrame(hello()), encodeFrame(nextMessage())]));
      await release();
      await until(() => answers.length === 2, 'hello and the first job');
      client.write(Buffer.concat([encodeFrame(okResult()), encodeFrame(nextMessage())]));
      await until(() => answers.length === 3, 'the result acknowledged');
      assert.equal(decodeResponse('consume_result', answers[2]!).status, 'ok');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(answers.length, 3, 'no answer to next_message before there is work');
      await release();
      await until(() => answers.length === 4, 'the second job');
      assert.equal(decodeResponse('next_message', answers[3]!).status, 'ok');
      client.end();
      assert.deepEqual(await done, {});
    } finally {
      close();
    }
  });

  test('a result the host refuses ends the session before the next message is looked at: no job handed out', async () => {
    const b = new MemoryBackend();
    const queued = jobFor(b, 'queued');
    const { client, close, done, answers, asked } = await served([jobFor(b, 'first'), queued]);
    try {
      client.write(Buffer.concat([encodeFrame(hello()), encodeFrame(nextMessage())]));
      await until(() => answers.length === 2, 'hello and the first job');
      const garbage = encodeRequest('consume_result', { result: Uint8Array.of(0xee), effects: encodeEffects(emptyEffects()) });
      client.write(Buffer.concat([encodeFrame(garbage), encodeFrame(nextMessage())]));
      const { error } = await done;
      assert.equal(error?.code, 'protocol');
      await until(() => answers.length === 3, 'bad_request');
      assert.equal(decodeResponse('consume_result', answers[2]!).status, 'bad_request');
      assert.equal(asked(), 1, 'the pipelined next_message was never answered with work');
      assert.equal(queued.ending, undefined, 'the queued job is untouched');
    } finally {
      close();
    }
  });
});

describe('pipelined results through real VM processes', () => {
  test('one pool VM serves queued calls back to back; a VM killed holding a job taken with its last result fails only that job', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const host = await Host.open({ dataDir: dir.path, poolSize: 1, killGraceMs: 200 });
    try {
      const kv = await host.deploy(contract('kv-store'));
      const hold = await host.deploy(contract('hold'));
      const set = (i: number) => host.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key: `k${i}`, value: `v${i}` })), contextId: id32(`pipe-${i}`) });
      const outcomes = await Promise.all(Array.from({ length: 24 }, (_, i) => set(i)));
      assert.deepEqual(outcomes.map((o) => o.result.code), Array(24).fill('return'));
      for (let i = 0; i < 24; i += 7) {
        const got = await host.call({ codeHash: kv, method: 'get', input: utf8(JSON.stringify({ key: `k${i}` })), contextId: id32(`pipe-${i}`) });
        assert.match(text((got.result as { value: Uint8Array }).value), new RegExp(`v${i}`));
      }
      assert.equal(host.poolStats!.launched, 1, 'queued calls need no second VM');

      // The VM takes `before`, then the looping call with its result (queued behind it), then is killed.
      const before = set(100);
      const looping = host.call({ codeHash: hold, method: 'write_then_loop', contextId: id32('pipe-loop'), deadlineMs: 20_000, gasLimit: 10n ** 15n });
      const after = set(101);
      assert.equal((await before).result.code, 'return');
      await killBusyVm(host);
      const lost = await looping;
      assert.deepEqual([lost.result.code, lost.applied], ['internal_error', false]);
      assert.equal((await after).result.code, 'return', 'the call queued behind it runs on a new VM');
    } finally {
      await host.close();
      dir.remove();
    }
  });
});
