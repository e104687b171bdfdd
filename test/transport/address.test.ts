import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddress, parseAddress } from '../../src/transport/address.js';
import { isHostlinkError } from '../../src/errors.js';

test('parseAddress accepts unix paths, tcp:// and bare HOST:PORT, IPv6 in brackets', () => {
  assert.deepEqual(parseAddress('unix:///run/hostlink.sock'), { kind: 'unix', path: '/run/hostlink.sock' });
  assert.deepEqual(parseAddress('tcp://127.0.0.1:9000'), { kind: 'tcp', host: '127.0.0.1', port: 9000 });
  assert.deepEqual(parseAddress('localhost:1'), { kind: 'tcp', host: 'localhost', port: 1 });
  assert.deepEqual(parseAddress('host.example:65535'), { kind: 'tcp', host: 'host.example', port: 65535 });
  assert.deepEqual(parseAddress('[::1]:9000'), { kind: 'tcp', host: '::1', port: 9000 });
  assert.deepEqual(parseAddress('tcp://[fe80::1]:80'), { kind: 'tcp', host: 'fe80::1', port: 80 });
});

test('parseAddress rejects malformed addresses with a usage error that shows the accepted forms', () => {
  for (const bad of ['', 'unix://', 'unix://relative.sock', 'localhost', 'localhost:0', 'localhost:65536', ':9000', 'tcp://h:p', '::1:9000', 'http://h:80', 'h:80/x', 'a b:80']) {
    assert.throws(() => parseAddress(bad), (e: unknown) => isHostlinkError(e, 'usage') && /expected unix:\/\//.test(e.message), bad);
  }
});

test('formatAddress round-trips through parseAddress', () => {
  for (const text of ['unix:///tmp/a b.sock', '127.0.0.1:80', 'localhost:9000', '[::1]:9000']) {
    assert.equal(formatAddress(parseAddress(text)), text);
  }
  assert.equal(formatAddress(parseAddress('tcp://10.0.0.1:5')), '10.0.0.1:5');
});
