/** Byte-level golden tests of every request and response, in the v1 and legacy formats. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeLegacyResponse,
  decodeRequest,
  decodeResponse,
  encodeLegacyRequest,
  encodeLegacyResponse,
  encodeRequest,
  encodeResponse,
  isCompleteJson,
  LEGACY_ACCEPTED,
  WireError,
  type Command,
} from '../../src/control/wire.js';
import { HASH, REQUEST_GOLDENS, RESPONSE_GOLDENS } from './goldens.js';

test('every v1 request encodes to the reference bytes and decodes back', () => {
  for (const [command, golden] of REQUEST_GOLDENS) {
    assert.equal(encodeRequest({ senderCid: 3, command }).toString('utf8'), golden, command.type);
    assert.deepEqual(decodeRequest(Buffer.from(golden)), { format: 'v1', request: { senderCid: 3, command } });
  }
});

test('every response encodes to the reference bytes and decodes back', () => {
  for (const [response, golden] of RESPONSE_GOLDENS) {
    assert.equal(encodeResponse(response).toString('utf8'), golden);
    assert.deepEqual(decodeResponse(Buffer.from(golden)), response);
  }
});

test('legacy requests: encode and parse, including the reference spellings with a space before [', () => {
  const cases: [Command, string][] = [
    [{ type: 'attach-hsm' }, '{"sender_cid":"3","message":"attach-hsm"}'],
    [{ type: 'detach-hsm' }, '{"sender_cid":"3","message":"detach-hsm"}'],
    [{ type: 'set-node-id', nodeId: 'node-id-1' }, '{"sender_cid":"3","message":"set-node-id[node-id-1]"}'],
    [{ type: 'notify', count: 2, message: 'Hello World' }, '{"sender_cid":"3","message":"notify[2, Hello World]"}'],
    [{ type: 'upgrade', url: 'https://example.com', targetHash: HASH }, `{"sender_cid":"3","message":"upgrade[https://example.com ${HASH}]"}`],
  ];
  for (const [command, golden] of cases) {
    assert.equal(encodeLegacyRequest({ senderCid: 3, command }).toString('utf8'), golden);
    assert.deepEqual(decodeRequest(Buffer.from(golden)), { format: 'legacy', request: { senderCid: 3, command } });
  }
  assert.deepEqual(decodeRequest(Buffer.from('{"sender_cid":"1","message":"set-node-id [node-id-1]"}')).request.command, {
    type: 'set-node-id',
    nodeId: 'node-id-1',
  });
  assert.deepEqual(decodeRequest(Buffer.from('{"sender_cid":"1","message":"notify [2, Hello World]"}')).request.command, {
    type: 'notify',
    count: 2,
    message: 'Hello World',
  });
  assert.throws(() => encodeLegacyRequest({ senderCid: 3, command: { type: 'get-hostos-version' } }), WireError);
});

test('legacy responses: the accepted literal byte for byte, errors in the same style', () => {
  assert.equal(encodeLegacyResponse({ ok: true, payload: { kind: 'NoPayload' } }).toString(), '{"message": "accepted request", "status": "ok"}');
  assert.equal(encodeLegacyResponse({ ok: false, error: 'no "HSM"' }).toString(), '{"message": "no \\"HSM\\"", "status": "error"}');
  assert.deepEqual(decodeLegacyResponse(Buffer.from(LEGACY_ACCEPTED)), { ok: true, payload: { kind: 'NoPayload' } });
  assert.deepEqual(decodeLegacyResponse(Buffer.from('Error response')), { ok: false, error: 'Error response' });
  // The literal must match exactly: the compact spelling is an error text to a v0 guest.
  assert.equal(decodeLegacyResponse(Buffer.from('{"message":"accepted request","status":"ok"}')).ok, false);
});

test('bad requests are WireErrors that say what is wrong, in the format they were recognised as', () => {
  const bad: [string, RegExp, string | undefined][] = [
    ['{ not json', /unable to parse client request/, undefined],
    ['[1,2]', /expected an object/, undefined],
    ['{"sender_cid":3,"message":"reboot-now"}', /unknown command 'reboot-now'/, 'v1'],
    ['{"sender_cid":3,"message":{"format-disk":{}}}', /unknown command 'format-disk'/, 'v1'],
    ['{"sender_cid":3,"message":{"notify":{"count":-1,"message":"x"}}}', /count/, 'v1'],
    ['{"sender_cid":3,"message":{"upgrade":{"url":"u"}}}', /target-hash/, 'v1'],
    ['{"sender_cid":-3,"message":"attach-hsm"}', /sender_cid/, undefined],
    ['{"sender_cid":"x","message":"attach-hsm"}', /sender_cid 'x'/, 'legacy'],
    ['{"sender_cid":"3","message":"format-disk"}', /unknown command 'format-disk'/, 'legacy'],
    [Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1'), /UTF-8/, undefined],
  ];
  for (const [text, re, format] of bad) {
    const bytes = text.includes('\u00ff') ? Buffer.from([0x7b, 0xff, 0x7d]) : Buffer.from(text);
    assert.throws(() => decodeRequest(bytes), (e: unknown) => e instanceof WireError && re.test(e.message) && e.format === format, text);
  }
});

test('unknown fields are ignored and unknown payloads kept, so either side can grow', () => {
  assert.deepEqual(decodeRequest(Buffer.from('{"sender_cid":3,"message":"attach-hsm","trace":"x"}')).request.command, { type: 'attach-hsm' });
  assert.deepEqual(decodeResponse(Buffer.from('{"Ok":{"HostOSUptime":5}}')), { ok: true, payload: { kind: 'Unknown', raw: { HostOSUptime: 5 } } });
  assert.throws(() => decodeResponse(Buffer.from('{"Ok":1,"Err":"x"}')), WireError);
  assert.throws(() => decodeResponse(Buffer.from('Error response')), WireError);
});

test('isCompleteJson tells a whole request from a prefix', () => {
  const whole = encodeRequest({ senderCid: 3, command: { type: 'notify', count: 1, message: '}' } });
  assert.equal(isCompleteJson(whole), true);
  for (let i = 1; i < whole.length; i++) assert.equal(isCompleteJson(whole.subarray(0, i)), false, `prefix ${i}`);
  assert.equal(isCompleteJson(Buffer.from('{"a":1}\n')), true);
});
