/**
 * The host's session state machine, request by request (the same handlers serve real sockets; see
 * test/host/host.test.ts for the socket path). Every out-of-order or malformed request ends the session with a
 * protocol error that names the problem.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isHostlinkError } from '../../src/errors.js';
import { Job } from '../../src/host/job.js';
import { MAX_BATCH_KEYS } from '../../src/protocol/messages.js';
import { Session } from '../../src/host/session.js';
import { emptyEffects, encodeEffects } from '../../src/protocol/effects.js';
import { decodeResponse, encodeRequest } from '../../src/protocol/messages.js';
import { encodeResult } from '../../src/protocol/result.js';
import { InProcessChannel } from '../../src/transport/in-process.js';
import { HostClient } from '../../src/vm/host-client.js';
import type { GasMeter } from '../../src/vm/execution.js';
import { ROUND_TRIP_GAS } from '../../src/vm/host-functions.generated.js';
import { hostStorage } from '../../src/vm/runner.js';
import { MemoryBackend, message, utf8 } from '../helpers.js';

const backend = new MemoryBackend();
const code = backend.deploy(utf8('\0asm\x01\0\0\0'));
const hello = encodeRequest('hello', { minVersion: 1, maxVersion: 1, vmVersion: 't', pid: 1, proof: new Uint8Array(32) });

function oneShot(): { session: Session; job: Job } {
  const job = new Job(message({ codeHash: code, method: 'm' }));
  return { session: new Session(backend, { oneShot: job }), job };
}

const send = (s: Session, body: Uint8Array) => s.handle(body) as Uint8Array;
const violation = (f: () => unknown, pattern: RegExp): void => {
  assert.throws(f, (e: unknown) => isHostlinkError(e, 'protocol') && pattern.test((e as Error).message));
};

describe('session state machine', () => {
  test('nothing but hello first; hello only once', () => {
    const { session } = oneShot();
    violation(() => send(session, encodeRequest('storage_read', { key: utf8('k') })), /^storage_read before hello$/);
    const s2 = oneShot().session;
    assert.equal(decodeResponse('hello', send(s2, hello)).status, 'ok');
    violation(() => send(s2, hello), /^hello sent twice$/);
  });

  test('a version range without overlap is answered, not fatal', () => {
    const { session } = oneShot();
    const r = decodeResponse('hello', send(session, encodeRequest('hello', { minVersion: 5, maxVersion: 9, vmVersion: 't', pid: 1, proof: new Uint8Array(32) })));
    assert.deepEqual(r, { status: 'incompatible_version', fields: { hostMin: 1, hostMax: 1 } });
    assert.equal(session.state, 'new');
  });

  test('a one-shot VM may not ask for work, and may not act after its result', async () => {
    const { session, job } = oneShot();
    send(session, hello);
    // next_message may wait for work, so its handler answers (or fails) asynchronously.
    await assert.rejects(
      Promise.resolve().then(() => session.handle(encodeRequest('next_message', {}))),
      (e: unknown) => isHostlinkError(e, 'protocol') && /^next_message from a one-shot VM$/.test((e as Error).message),
    );
    const ack = send(session, encodeRequest('consume_result', { result: encodeResult({ code: 'return', value: null }), effects: encodeEffects(emptyEffects()) }));
    assert.equal(decodeResponse('consume_result', ack).status, 'ok');
    assert.equal(job.ending?.kind, 'result');
    violation(() => send(session, encodeRequest('storage_read', { key: utf8('k') })), /^storage_read while no execution is in progress$/);
  });

  test('malformed results and effects are protocol violations; the job is not ended by them', () => {
    const { session, job } = oneShot();
    send(session, hello);
    violation(() => send(session, encodeRequest('consume_result', { result: Uint8Array.of(9), effects: encodeEffects(emptyEffects()) })), /./);
    violation(() => send(session, encodeRequest('consume_result', { result: encodeResult({ code: 'return', value: null }), effects: Uint8Array.of(0) })), /^invalid effects: effects must be a map$/);
    assert.equal(job.ending, undefined);
  });

  test('storage reads answer from committed state; batches are bounded', () => {
    const { session, job } = oneShot();
    backend.apply(job.message.contextId, [[utf8('a'), utf8('1')]]);
    send(session, hello);
    const one = decodeResponse('storage_read', send(session, encodeRequest('storage_read', { key: utf8('a') })));
    assert.deepEqual(one, { status: 'ok', fields: { value: utf8('1') } });
    const many = decodeResponse('storage_read_many', send(session, encodeRequest('storage_read_many', { keys: [utf8('a'), utf8('b')] })));
    assert.deepEqual(many, { status: 'ok', fields: { values: [utf8('1'), null] } });
    assert.deepEqual(decodeResponse('get_code', send(session, encodeRequest('get_code', { codeHash: new Uint8Array(32) }))), { status: 'absent', fields: {} });
  });

  test("the VM's storage reads of more keys than one request may hold go in several requests", () => {
    // A collection listing of more than MAX_BATCH_KEYS members used to be one storage_read_many over the bound,
    // which failed the execution. The VM's storage source (hostStorage) batches; the session answers each.
    const { session, job } = oneShot();
    const keys = Array.from({ length: 2 * MAX_BATCH_KEYS + 5 }, (_, i) => utf8(`key-${i}`));
    backend.apply(job.message.contextId, keys.filter((_, i) => i % 3 === 0).map((k) => [k, utf8(`v-${Buffer.from(k).toString()}`)]));
    const requests: number[] = [];
    const host = new HostClient(new InProcessChannel((body) => {
      if (body[0] === encodeRequest('storage_read_many', { keys: [] })[0]) requests.push(Buffer.from(body.buffer, body.byteOffset, body.length).readUInt32LE(1));
      return send(session, body);
    }));
    send(session, hello);
    let charged = 0n;
    const values = hostStorage(host, { charge: (gas: bigint) => void (charged += gas), gasUsed: () => charged } satisfies GasMeter).readMany(keys);
    assert.deepEqual(requests, [MAX_BATCH_KEYS, MAX_BATCH_KEYS, 5]);
    assert.equal(charged, BigInt(keys.length) * BigInt(ROUND_TRIP_GAS.perKey), 'every key looked up is charged round_trip.per_key');
    assert.deepEqual(values.map((v) => (v === null ? null : Buffer.from(v).toString())), keys.map((k, i) => (i % 3 === 0 ? `v-${Buffer.from(k).toString()}` : null)));
  });

  test('a storage_read_many over its key bound is a protocol violation, refused before any key is read', () => {
    // A VM sending 16 million empty keys in one frame used to make the host build them all (6 s, 2 GB) before
    // answering limit_exceeded; the count is now checked before the first item. An honest VM batches.
    for (const count of [MAX_BATCH_KEYS + 1, 1_000_000]) {
      const { session } = oneShot();
      send(session, hello);
      const body = Buffer.alloc(1 + 4 + count * 4); // the method byte, the count, then `count` empty keys
      body[0] = encodeRequest('storage_read_many', { keys: [] })[0]!;
      body.writeUInt32LE(count, 1);
      violation(() => send(session, body), new RegExp(`^storage_read_many request: keys has ${count} items; at most ${MAX_BATCH_KEYS}$`));
    }
  });
});
