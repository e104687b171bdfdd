/** Code stored by sha-256, on both stores. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { isHostlinkError } from '../../src/errors.js';
import { getCode, putCode, requireCode } from '../../src/host/state/code-store.js';
import { enc, hex, storeTest } from './stores.js';

storeTest('putCode stores by sha-256, idempotently; getCode and requireCode read it back', async (store) => {
  const wasm = enc('\0asm pretend module');
  const hash = await putCode(store, wasm);
  assert.equal(hex(hash), createHash('sha256').update(wasm).digest('hex'));
  assert.deepEqual(getCode(store, hash), wasm);
  assert.deepEqual(requireCode(store, hash), wasm);
  assert.deepEqual(await putCode(store, wasm), hash);
  assert.equal([...store.range('code', new Uint8Array(0))].length, 1);

  const other = new Uint8Array(32).fill(1);
  assert.equal(getCode(store, other), undefined);
  assert.throws(() => requireCode(store, other), (e) => isHostlinkError(e, 'not_found'));
  assert.throws(() => getCode(store, new Uint8Array(31)), (e) => isHostlinkError(e, 'usage'));
});
