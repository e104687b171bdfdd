import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isHostlinkError } from '../../src/errors.js';
import { decodeCalldata, encodeCalldata, type CalldataMap } from '../../src/protocol/calldata.js';
import { effectDecodeLimits, resultEffectsProblem } from '../../src/protocol/effect-limits.js';
import { emptyEffects, encodeEffects, decodeEffects } from '../../src/protocol/effects.js';
import { encodeFrame, FrameReader } from '../../src/protocol/frame.js';
import { helloProof } from '../../src/protocol/hello-proof.js';
import { METHOD_NAMES, METHOD_SCHEMAS } from '../../src/protocol/generated.js';
import { decodeRequest, decodeResponse, encodeOk, encodeRequest, encodeStatus } from '../../src/protocol/messages.js';
import { DEFAULT_GAS_LIMIT, DEFAULT_LIMITS } from '../../src/protocol/message.js';
import { NONDET_LIMITS } from '../../src/protocol/nondet.generated.js';
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
    protocolError(() => decodeRequest(bigList), /^storage_read_many request: keys has 2147483647 items; at most 4096$/);
    const shortList = Uint8Array.of(4, 100, 0, 0, 0);
    protocolError(() => decodeRequest(shortList), /claims 100 elements, more than the body holds/);
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

/** How many values decoding `bytes` builds, map keys included (the unit of DecodeLimits.maxValues). */
function countValues(bytes: Uint8Array): number {
  const walk = (v: unknown): number => {
    if (Array.isArray(v)) return 1 + v.reduce((n: number, x) => n + walk(x), 0);
    if (v instanceof Map) return 1 + [...v.values()].reduce((n: number, x) => n + 1 + walk(x), 0);
    return 1;
  };
  return walk(decodeCalldata(bytes));
}

describe('effects', () => {
  test('round trip, and the host rejects unsorted or malformed deltas', () => {
    const e = { ...emptyEffects(), gasUsed: 5n, logs: ['x'], writes: [[utf8('a'), utf8('1')], [utf8('b'), null]] as [Uint8Array, Uint8Array | null][] };
    assert.deepEqual(decodeEffects(encodeEffects(e)), e);
    const unsorted = { ...e, writes: [...e.writes].reverse() };
    protocolError(() => decodeEffects(encodeEffects(unsorted)), /not sorted by key/);
    protocolError(() => decodeEffects(encodeResult({ code: 'return', value: null })), /./);
  });

  test('a key the effects map or one of its maps does not have is refused, named by its first 40 characters', () => {
    const withKey = (e: ReturnType<typeof emptyEffects>, path: (m: CalldataMap) => CalldataMap, key: string): Uint8Array => {
      const m = decodeCalldata(encodeEffects(e)) as CalldataMap;
      path(m).set(key, null);
      return encodeCalldata(m);
    };
    const e = { ...emptyEffects(), events: [{ kind: 'k', data: new Uint8Array(0), handler: null }], proposals: [{ id: new Uint8Array(32), actions: new Uint8Array(4) }] };
    protocolError(() => decodeEffects(withKey(e, (m) => m, 'zzz')), /^invalid effects: effects has the unknown key "zzz"$/);
    protocolError(() => decodeEffects(withKey(e, (m) => m, 'k'.repeat(50))), /^invalid effects: effects has the unknown key "k{40}"\.\.\.$/);
    protocolError(() => decodeEffects(withKey(e, (m) => (m.get('events') as CalldataMap[])[0]!, 'extra')), /^invalid effects: events\[0\] has the unknown key "extra"$/);
    protocolError(() => decodeEffects(withKey(e, (m) => (m.get('proposals') as CalldataMap[])[0]!, 'proposer')), /^invalid effects: proposals\[0\] has the unknown key "proposer"$/);
    assert.deepEqual(decodeEffects(encodeEffects(e)), e);
  });

  test('the largest effects an honest VM may send fit the decode bounds and pass the host check; one more value does not', () => {
    // Every list at its limit, each item in its largest shape (a node action as a context_create map, an
    // event with a handler), so effectDecodeLimits cannot fall below what the VM allows.
    const l = { ...DEFAULT_LIMITS, maxLogs: 7, maxEvents: 5, maxXcalls: 3, maxStorageWrites: 11, maxNodeActions: 4 };
    const e = emptyEffects();
    e.gasUsed = DEFAULT_GAS_LIMIT;
    for (let i = 0; i < l.maxLogs; i++) e.logs.push('x'.repeat(l.maxLogSize));
    for (let i = 0; i < l.maxEvents; i++) e.events.push({ kind: 'k'.repeat(l.maxEventKindSize), data: new Uint8Array(l.maxEventDataSize), handler: 'h'.repeat(l.maxMethodNameLength) });
    for (let i = 0; i < l.maxXcalls; i++) e.xcalls.push({ contextId: new Uint8Array(32), function: 'f'.repeat(l.maxXcallFunctionSize), params: new Uint8Array(l.maxXcallParamsSize) });
    for (let i = 0; i < l.maxStorageWrites; i++) e.writes.push([Uint8Array.of(i), i % 2 ? null : Uint8Array.of(1)]);
    for (let i = 0; i < l.maxNodeActions; i++) {
      e.contextMutations.push({ kind: 'create', contextId: new Uint8Array(32), protocol: 'p', applicationId: new Uint8Array(32), initArgs: new Uint8Array(1), alias: 'a' });
    }
    for (let i = 0; i < NONDET_LIMITS.maxNondetBlocks; i++) e.nondetResults.push(Uint8Array.of(0));
    e.nondetDisagreement = { callNo: 1, reason: 'r' };
    e.artifact = new Uint8Array(1);
    e.rootHash = new Uint8Array(32);
    const bounds = effectDecodeLimits(l);
    const decoded = decodeEffects(encodeEffects(e), bounds);
    assert.deepEqual(decoded, e);
    assert.equal(resultEffectsProblem({ gasLimit: DEFAULT_GAS_LIMIT, limits: l }, decoded), undefined);
    // The bound is what decoding may build, not a count of these effects' values: a few values fewer is refused.
    const exact = countValues(encodeEffects(e));
    assert.ok(exact <= bounds.maxValues, `${exact} values, bound ${bounds.maxValues}`);
    protocolError(() => decodeEffects(encodeEffects(e), { ...bounds, maxValues: exact - 1 }), /^calldata: too many values at byte \d+: more than \d+ values$/);
    // Each item over its own limit is named.
    const over = (change: (x: typeof e) => void): string | undefined => {
      const x = structuredClone(e);
      change(x);
      return resultEffectsProblem({ gasLimit: DEFAULT_GAS_LIMIT, limits: l }, x);
    };
    assert.equal(over((x) => (x.gasUsed += 1n)), `gas_used exceeds the call's gas_limit ${DEFAULT_GAS_LIMIT}`);
    assert.equal(over((x) => x.logs.push('')), '8 log lines exceed max_logs 7');
    assert.equal(over((x) => (x.logs[3] += 'é')), `a log line exceeds max_log_size ${l.maxLogSize}`);
    assert.equal(over((x) => x.events.push(x.events[0]!)), '6 events exceed max_events 5');
    assert.equal(over((x) => (x.events[1]!.kind += 'k')), `an event kind exceeds max_event_kind_size ${l.maxEventKindSize}`);
    assert.equal(over((x) => (x.events[1]!.data = new Uint8Array(l.maxEventDataSize + 1))), `an event's data exceeds max_event_data_size ${l.maxEventDataSize}`);
    assert.equal(over((x) => (x.events[1]!.handler += 'h')), `an event handler name exceeds max_method_name_length ${l.maxMethodNameLength}`);
    assert.equal(over((x) => x.xcalls.push(x.xcalls[0]!)), '4 xcalls exceed max_xcalls 3');
    assert.equal(over((x) => (x.xcalls[2]!.function += 'f')), `an xcall function name exceeds max_xcall_function_size ${l.maxXcallFunctionSize}`);
    assert.equal(over((x) => (x.xcalls[2]!.params = new Uint8Array(l.maxXcallParamsSize + 1))), `an xcall's params exceed max_xcall_params_size ${l.maxXcallParamsSize}`);
    assert.equal(over((x) => x.writes.push([Uint8Array.of(200), null])), '12 storage writes exceed max_storage_writes 11');
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
    inDoc(hex(encodeResult({ code: 'internal_error', message: 'timeout', fingerprint: null })), 'timeout result');
  });
});
