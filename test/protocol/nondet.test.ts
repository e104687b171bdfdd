/** The nondet parts of the protocol: block result encoding, the message's role fields, effects, execution hash. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeEffects, emptyEffects, encodeEffects } from '../../src/protocol/effects.js';
import { executionHash } from '../../src/protocol/execution-hash.js';
import { buildMessage, parseMessage } from '../../src/protocol/message.js';
import { decodeBlockResult, encodeBlockResult } from '../../src/protocol/nondet.js';
import { NONDET_LIMITS } from '../../src/protocol/nondet.generated.js';
import { encodeResult } from '../../src/protocol/result.js';
import { id32, utf8 } from '../helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('block result encoding', () => {
  test('code byte, then calldata for Return and raw UTF-8 for errors (not the parent map)', () => {
    assert.equal(hex(encodeBlockResult({ code: 'return', data: utf8('hi') })), '00' + '13' + '6869');
    assert.equal(hex(encodeBlockResult({ code: 'return', data: new Uint8Array(0), returnedNothing: true })), '0000');
    assert.equal(hex(encodeBlockResult({ code: 'user_error', message: 'rb' })), '01' + '7262');
    assert.equal(hex(encodeBlockResult({ code: 'vm_error', message: 'exit_code 1' })), '02' + hex(utf8('exit_code 1')));
    // The parent's encoding of the same error is a calldata map, so the two differ.
    assert.notEqual(hex(encodeResult({ code: 'user_error', message: 'rb', fingerprint: null })), '017262');
  });

  test('round trip, and every malformed shape is named without throwing', () => {
    for (const r of [
      { code: 'return' as const, data: utf8('x') },
      { code: 'user_error' as const, message: '' },
      { code: 'vm_error' as const, message: 'é' },
    ]) {
      assert.deepEqual(decodeBlockResult(encodeBlockResult(r)), r);
    }
    assert.equal(decodeBlockResult(new Uint8Array(0)), 'empty');
    assert.equal(decodeBlockResult(Uint8Array.of(3)), 'unknown result code 3');
    assert.match(decodeBlockResult(Uint8Array.of(0, 0x13, 0x68, 0x69, 0)) as string, /trailing bytes/);
    assert.match(decodeBlockResult(Uint8Array.of(0)) as string, /bad calldata/);
    assert.equal(decodeBlockResult(Uint8Array.of(0, 0x10)), 'Return calldata is not bytes or null');
    assert.equal(decodeBlockResult(Uint8Array.of(2, 0xff)), 'message is not UTF-8');
  });
});

describe('message role fields', () => {
  const base = { codeHash: id32('c'), method: 'm', contextId: id32('x') };

  test('absent = leader, a list = validator, the list with sync = sync; round trip', () => {
    assert.equal(parseMessage(buildMessage(base)).leaderResults, null);
    const v = parseMessage(buildMessage({ ...base, nondet: { leaderResults: [Uint8Array.of(0, 0x12), new Uint8Array(0)] } }));
    assert.deepEqual(v.leaderResults, [Uint8Array.of(0, 0x12), new Uint8Array(0)]);
    assert.equal(v.sync, false);
    const s = parseMessage(buildMessage({ ...base, nondet: { leaderResults: [], sync: true } }));
    assert.deepEqual([s.leaderResults, s.sync], [[], true]);
  });

  test('bad role fields are refused with the field named', () => {
    const json = (extra: object): string => JSON.stringify({ ...JSON.parse(buildMessage(base)), ...extra });
    assert.throws(() => parseMessage(json({ sync: true })), /field 'sync' needs leader_results/);
    assert.throws(() => parseMessage(json({ sync: 'yes', leader_results: [] })), /field 'sync' must be true or false/);
    assert.throws(() => parseMessage(json({ leader_results: 'AA==' })), /field 'leader_results' must be an array/);
    assert.throws(() => parseMessage(json({ leader_results: ['!'] })), /field 'leader_results\[0\]' must be a base64 string/);
    const tooMany = Array.from({ length: NONDET_LIMITS.maxNondetBlocks + 1 }, () => 'AA==');
    assert.throws(() => parseMessage(json({ leader_results: tooMany })), /more than the 4096 blocks/);
  });
});

describe('effects and execution hash', () => {
  test('nondet results and the disagreement travel in the effects; absent when unused', () => {
    const plain = emptyEffects();
    assert.deepEqual(decodeEffects(encodeEffects(plain)), plain);
    const e = { ...emptyEffects(), nondetResults: [Uint8Array.of(0, 0x12), Uint8Array.of(1)], nondetDisagreement: { callNo: 1, reason: 'no' } };
    assert.deepEqual(decodeEffects(encodeEffects(e)), e);
  });

  test('the hash covers result, delta, events, xcalls, node effects and nondet results; not logs, gas or private writes', () => {
    const result = encodeResult({ code: 'return', value: utf8('v') });
    const base = emptyEffects();
    const h = hex(executionHash(result, base));
    // A fixed vector: changing the definition must be deliberate (and documented in docs/nondet.md).
    assert.equal(h, 'f92fca44f97b6159198b23202acafa49cdaf134832256a6749eb1c0c43e6fea0');
    assert.equal(h.length, 64);
    const same = [
      { ...base, logs: ['x'] },
      { ...base, gasUsed: 5n },
      { ...base, privateWrites: [[utf8('p'), utf8('q')]] as [Uint8Array, Uint8Array | null][] },
    ];
    for (const e of same) assert.equal(hex(executionHash(result, e)), h);
    const different = [
      { ...base, writes: [[utf8('k'), utf8('v')]] as [Uint8Array, Uint8Array | null][] },
      { ...base, events: [{ kind: 'k', data: utf8('d'), handler: null }] },
      { ...base, xcalls: [{ contextId: id32('c'), function: 'f', params: new Uint8Array(0) }] },
      { ...base, approvals: [id32('p')] },
      { ...base, nondetResults: [Uint8Array.of(0, 0)] },
      { ...base, artifact: Uint8Array.of(1) },
    ];
    for (const e of different) assert.notEqual(hex(executionHash(result, e)), h);
    assert.notEqual(hex(executionHash(encodeResult({ code: 'return', value: utf8('w') }), base)), h);
  });
});
