/** Golden bytes shared by the wire tests and the over-the-socket tests. */
import type { Command, Response } from '../../src/control/wire.js';

export const HASH = 'a'.repeat(63) + 'f';

/** Every command, with the exact bytes the reference (serde_json) puts on the wire for sender CID 3. */
export const REQUEST_GOLDENS: [Command, string][] = [
  [{ type: 'attach-hsm' }, '{"sender_cid":3,"message":"attach-hsm"}'],
  [{ type: 'detach-hsm' }, '{"sender_cid":3,"message":"detach-hsm"}'],
  [{ type: 'get-hostos-version' }, '{"sender_cid":3,"message":"GetHostOSVersion"}'],
  [{ type: 'get-vsock-protocol' }, '{"sender_cid":3,"message":"GetVsockProtocol"}'],
  [{ type: 'start-upgrade-guest-vm' }, '{"sender_cid":3,"message":"start-upgrade-guest-vm"}'],
  [
    { type: 'upgrade', url: 'https://example.com/hostos.tar.zst', targetHash: HASH },
    `{"sender_cid":3,"message":{"upgrade":{"url":"https://example.com/hostos.tar.zst","target-hash":"${HASH}"}}}`,
  ],
  [{ type: 'set-node-id', nodeId: 'abcde-fghij' }, '{"sender_cid":3,"message":{"set-node-id":{"node-id":"abcde-fghij"}}}'],
  [
    { type: 'notify', count: 2, message: 'replica "up"\n\tnow é/☃' },
    '{"sender_cid":3,"message":{"notify":{"count":2,"message":"replica \\"up\\"\\n\\tnow é/☃"}}}',
  ],
];

export const RESPONSE_GOLDENS: [Response, string][] = [
  [{ ok: true, payload: { kind: 'NoPayload' } }, '{"Ok":"NoPayload"}'],
  [{ ok: true, payload: { kind: 'HostOSVersion', version: '2024.05.1' } }, '{"Ok":{"HostOSVersion":"2024.05.1"}}'],
  [
    { ok: true, payload: { kind: 'HostOSVsockVersion', version: { major: 1, minor: 0, patch: 0 } } },
    '{"Ok":{"HostOSVsockVersion":{"major":1,"minor":0,"patch":0}}}',
  ],
  [{ ok: false, error: 'no HSM device found\u0001' }, '{"Err":"no HSM device found\\u0001"}'],
];

