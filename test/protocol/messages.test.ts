import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isHostlinkError } from '../../src/errors.js';
import { emptyEffects, encodeEffects, decodeEffects } from '../../src/protocol/effects.js';
import { encodeFrame, FrameReader } from '../../src/protocol/frame.js';
import { helloProof } from '../../src/protocol/hello-proof.js';
import { METHOD_NAMES, METHOD_SCHEMAS } from '../../src/protocol/generated.js';
import { decodeRequest, decodeResponse, encodeOk, encodeRequest, encodeStatus } from '../../src/protocol/messages.js';
import { encodeResult } from '../../src/protocol/result.js';
import { ROOT, utf8 } from '../helpers.js';

const protocolError = (f: () => unknown, pattern: RegExp): void => {
  assert.throws(f, (e: unknown) => isHostlinkError(e, 'protocol') && pattern.test((e as Error).message));
};

describe('requests and responses', () => {
  test('every method round-trips its request and ok response', () => {
    const samples: Record<string, unknown> = {
      u8: 7, u32: 0xfffffffe, u64: 2n ** 64n - 1n, bytes32: new Uint8Array(32).fill(9), bytes: utf8('xyz'),
      string: 'héllo', bytes_list: [utf8('a'), new Uint8Array(0)], maybe_bytes_list: [null, utf8('v'), new Uint8Array(0)],
    };
    for (const name of METHOD_NAMES) {
      const schema = METHOD_SCHEMAS[name];
      const req = Object.fromEntries(schema.request.map((f) => [f.name, samples[f.type]]));
      const decoded = decodeRequest(encodeRequest(name, req as never));
      assert.equal(decoded.method, name);
      assert.deepEqual(decoded.fields, req);
      const res = Object.fromEntries(schema.response.map((f) => [f.name, samples[f.type]]));
      assert.deepEqual(decodeResponse(name, encodeOk(name, res as never)), { status: 'ok', fields: res });
    }
  });

  test('error statuses carry their payloads', () => {
    const r = decodeResponse('hello', encodeStatus('incompatible_version', { hostMin: 2, hostMax: 3 }));
    assert.deepEqual(r, { status: 'incompatible_version', fields: { hostMin: 2, hostMax: 3 } });
    assert.deepEqual(decodeResponse('storage_read', encodeStatus('absent', {})), { status: 'absent', fields: {} });
  });

  test('malformed bodies are protocol errors naming what is wrong', () => {
    protocolError(() => decodeRequest(new Uint8Array(0)), /empty request/);
    protocolError(() => decodeRequest(Uint8Array.of(200)), /unknown method id 200/);
    const good = encodeRequest('storage_read', { key: utf8('abc') });
    protocolError(() => decodeRequest(good.subarray(0, good.length - 1)), /truncated key/);
    protocolError(() => decodeRequest(Uint8Array.of(...good, 0)), /1 trailing bytes/);
    protocolError(() => decodeResponse('storage_read', Uint8Array.of(99)), /unknown status 99/);
    const bigList = Uint8Array.of(4, 0xff, 0xff, 0xff, 0x7f);
    protocolError(() => decodeRequest(bigList), /claims 2147483647 elements/);
    const badUtf8 = Uint8Array.of(0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0xff, 0, 0, 0, 0);
    protocolError(() => decodeRequest(badUtf8), /vmVersion at byte 8 is not valid UTF-8/);
  });
});

describe('framing', () => {
  test('frames split across chunks are reassembled', () => {
    const frames = [utf8('one'), new Uint8Array(0), new Uint8Array(70_000).fill(5)];
    const wire = Buffer.concat(frames.map((f) => encodeFrame(f)));
    const reader = new FrameReader(1 << 20);
    const out: Uint8Array[] = [];
    for (let i = 0; i < wire.length; i += 1000) out.push(...reader.push(wire.subarray(i, i + 1000)));
    assert.deepEqual(out.map((b) => Buffer.from(b)), frames.map((b) => Buffer.from(b)));
    assert.equal(reader.pendingBytes, 0);
  });

  test('an oversized length prefix is rejected before the body arrives', () => {
    const reader = new FrameReader(1024);
    protocolError(() => reader.push(Uint8Array.of(0x01, 0x04, 0, 0)), /frame of 1025 bytes exceeds the maximum of 1024/);
  });
});

describe('effects', () => {
  test('round trip, and the host rejects unsorted or malformed deltas', () => {
    const e = { ...emptyEffects(), gasUsed: 5n, logs: ['x'], writes: [[utf8('a'), utf8('1')], [utf8('b'), null]] as [Uint8Array, Uint8Array | null][] };
    assert.deepEqual(decodeEffects(encodeEffects(e)), e);
    const unsorted = { ...e, writes: [...e.writes].reverse() };
    protocolError(() => decodeEffects(encodeEffects(unsorted)), /not sorted by key/);
    protocolError(() => decodeEffects(encodeResult({ code: 'return', value: null })), /./);
  });
});

describe('docs/protocol.md worked examples', () => {
  // Only the two-hex-digit tokens of the doc's code blocks, in order: annotations between bytes are skipped.
  const blocks = readFileSync(join(ROOT, 'docs', 'protocol.md'), 'utf8').split('```').filter((_, i) => i % 2 === 1);
  const doc = blocks.map((b) => b.split(/\s+/).filter((t) => /^[0-9a-f]{2}$/.test(t)).join('')).join('|');
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex').replace(/(..)(?!$)/g, '$1 ');
  const framed = (b: Uint8Array): string => hex(encodeFrame(b));
  const inDoc = (hexText: string, what: string): void => {
    assert.ok(doc.includes(hexText.replace(/ /g, '')), `${what} (${hexText}) is not in docs/protocol.md`);
  };
  test('hello, storage and status examples match the encoders', () => {
    const fields = { minVersion: 1, maxVersion: 1, vmVersion: '0.1.0', pid: 4242, proof: new Uint8Array(32) };
    const exampleSecret = Uint8Array.from({ length: 32 }, (_, i) => i);
    fields.proof = helloProof(exampleSecret, encodeRequest('hello', fields));
    inDoc(framed(encodeRequest('hello', fields)), 'hello request');
    inDoc(framed(encodeOk('hello', { version: 1, hostVersion: '0.1.0' })), 'hello response');
    inDoc(framed(encodeStatus('incompatible_version', { hostMin: 2, hostMax: 3 })), 'incompatible_version');
    inDoc(framed(encodeRequest('storage_read', { key: utf8('e:a') })), 'storage_read');
    inDoc(framed(encodeOk('storage_read', { value: utf8('1') })), 'storage_read ok');
    inDoc(framed(encodeRequest('storage_read_many', { keys: [utf8('a'), utf8('b')] })), 'storage_read_many');
    inDoc(framed(encodeOk('storage_read_many', { values: [utf8('1'), null] })), 'storage_read_many ok');
    inDoc(framed(encodeStatus('bad_request', { reason: 'x' })), 'bad_request');
  });
  test('the consume_result example matches the encoders', () => {
    const result = encodeResult({ code: 'return', value: utf8('null') });
    const effects = encodeEffects({ ...emptyEffects(), gasUsed: 1234n, logs: ['set a'], writes: [[utf8('e:a'), utf8('1')]] });
    inDoc(framed(encodeRequest('consume_result', { result, effects })), 'consume_result');
    inDoc(hex(encodeResult({ code: 'vm_error', message: 'timeout', fingerprint: null })), 'timeout result');
  });
});
