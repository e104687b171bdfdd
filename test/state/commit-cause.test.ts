/**
 * The cause of a failed LMDB commit is read from lmdb's `commitError` promise only if lmdb has settled it: when
 * lmdb notices a failed batch late, it hands that batch's writes a `commitError` it never settles, and waiting
 * for it left the call pending forever (disk-full-many.test.ts shows it on a real full disk).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commitCause } from '../../src/host/state/lmdb-store.js';

const failed = (commitError: Promise<unknown>): Error => Object.assign(new Error('Commit failed (see commitError for details)'), { commitError });

test('the cause of a failed commit: the reason lmdb gave, or none when lmdb never settles it', async () => {
  const given = Promise.reject(new Error('No space left on device'));
  given.catch(() => undefined);
  assert.equal(await commitCause(failed(given)), 'No space left on device');
  assert.equal(await commitCause(failed(new Promise(() => undefined))), undefined, 'a commitError never settled is not waited for');
  assert.equal(await commitCause(new Error('other')), undefined);
});
