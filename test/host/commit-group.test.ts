/**
 * Group commit (src/host/commit-group.ts): a finished call's write waits for the calls running beside it, at most
 * HostOptions.commitGroupMs, so that their writes share one durable commit; a call alone is never held. The rule
 * first with writes the test controls, then through the real Host on LMDB with real VM processes, where only the
 * order of outcomes is asserted (never a duration).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CommitGroup } from '../../src/host/commit-group.js';
import { Host, type Outcome } from '../../src/host/host.js';
import { isHostlinkError } from '../../src/errors.js';
import { contract, id32, killBusyVm, tempDir, text, utf8 } from '../helpers.js';

const UNLIMITED_GAS = 1n << 62n;
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A write the test settles by hand; `started` says whether the group issued it. */
function manualWrite(): { run: () => Promise<string>; started: boolean; settle: () => void } {
  const w = {
    started: false,
    settle: () => undefined as void,
    run: (): Promise<string> => {
      w.started = true;
      return new Promise<string>((resolve) => (w.settle = () => resolve('committed')));
    },
  };
  return w;
}

describe('CommitGroup, the rule', () => {
  test('a write with nothing running and nothing committing is issued at once', async () => {
    const group = new CommitGroup(10_000);
    const w = manualWrite();
    const done = group.write(w.run);
    assert.equal(w.started, true, 'issued in the same turn, not held');
    w.settle();
    assert.equal(await done, 'committed');
  });

  test('a write waits for the jobs running when it finished, then goes', async () => {
    const group = new CommitGroup(10_000);
    const mine = {};
    const other = {};
    group.begun(mine);
    group.begun(other); // another VM's job
    group.end(mine); // this call ended: its write comes next
    const w = manualWrite();
    const done = group.write(w.run);
    await tick();
    assert.equal(w.started, false, 'held while the other job runs');
    group.end(other); // the other job ended (without a write: a failed call or a view)
    await tick();
    assert.equal(w.started, true);
    w.settle();
    assert.equal(await done, 'committed');
  });

  test('jobs that begin after the group formed do not hold it', async () => {
    const group = new CommitGroup(10_000);
    const first = {};
    group.begun(first);
    const w = manualWrite();
    void group.write(w.run);
    group.begun({}); // a later job: not waited for
    group.end(first); // the job running when the write was held
    await tick();
    assert.equal(w.started, true);
    w.settle();
  });

  test('writes held while a commit is in progress go together after it, as one group', async () => {
    const group = new CommitGroup(10_000);
    const first = manualWrite();
    void group.write(first.run); // nothing running: issued at once, now committing
    const later = [manualWrite(), manualWrite()];
    const done = later.map((w) => group.write(w.run));
    await tick();
    assert.deepEqual(later.map((w) => w.started), [false, false], 'held behind the commit in progress');
    first.settle();
    await tick();
    assert.deepEqual(later.map((w) => w.started), [true, true], 'issued together once it settled');
    for (const w of later) w.settle();
    assert.deepEqual(await Promise.all(done), ['committed', 'committed']);
    assert.deepEqual(group.stats, { writes: 3, commits: 2, held: 2 }, 'three writes in two commits');
  });

  test('a held write goes at the cap even if the job it waits for is still running', async () => {
    const group = new CommitGroup(20);
    group.begun({}); // runs for as long as the test likes
    const w = manualWrite();
    const done = group.write(w.run);
    await tick();
    assert.equal(w.started, false);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(w.started, true, 'released by the cap');
    w.settle();
    assert.equal(await done, 'committed');
  });

  test('a job that has run longer than the cap is not waited for: a long call does not hold its neighbours', async () => {
    let clock = 0;
    const group = new CommitGroup(10_000, () => clock);
    const long = {};
    group.begun(long);
    clock = 20_000; // it has run twice the cap by the time another call finishes
    const young = {};
    group.begun(young);
    clock = 20_001;
    const w = manualWrite();
    void group.write(w.run);
    await tick();
    assert.equal(w.started, false, 'the young job is waited for');
    group.end(young);
    await tick();
    assert.equal(w.started, true, 'the long one is not');
    w.settle();
    group.end(long);
  });

  test('0 turns grouping off: writes go at once even while others run or commit', async () => {
    const group = new CommitGroup(0);
    group.begun({});
    const a = manualWrite();
    const b = manualWrite();
    void group.write(a.run);
    void group.write(b.run);
    assert.deepEqual([a.started, b.started], [true, true]);
    a.settle();
    b.settle();
  });

  test('a write that fails settles its caller and releases the writes held behind it', async () => {
    const group = new CommitGroup(10_000);
    const failing = group.write(() => Promise.reject(new Error('disk full')));
    const w = manualWrite();
    const done = group.write(w.run);
    await assert.rejects(failing, /disk full/);
    await tick();
    assert.equal(w.started, true);
    w.settle();
    assert.equal(await done, 'committed');
  });
});

describe('group commit through the Host, LMDB and VM processes', () => {
  const dir = tempDir();
  let host: Host;
  let hold: Uint8Array;
  let kv: Uint8Array;

  before(async () => {
    host = await Host.open({ dataDir: dir.path, poolSize: 2, killGraceMs: 200, commitGroupMs: 1000 });
    hold = await host.deploy(contract('hold'));
    kv = await host.deploy(contract('kv-store'));
    // Both pool VMs started and both contracts compiled, so a call below takes milliseconds, not a VM start.
    for (let i = 0; i < 2; i++) {
      await Promise.all([
        host.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key: 'w', value: 'w' })), contextId: id32('group-warm-a') }),
        host.call({ codeHash: hold, method: 'write', contextId: id32('group-warm-b') }),
      ]);
    }
  });
  after(async () => {
    await host.close();
    dir.remove();
  });

  /** Starts a call that spins until its deadline in another context, and resolves once a VM has taken it. */
  async function spinning(deadlineMs: number, name: string): Promise<{ call: Promise<Outcome> }> {
    const started = new Promise<void>((resolve) => {
      const off = host.events.on('call.started', (e) => {
        if (Buffer.from(e.contextId).equals(id32(name))) (off(), resolve());
      });
    });
    const call = host.call({ codeHash: hold, method: 'write_then_loop', contextId: id32(name), deadlineMs, gasLimit: UNLIMITED_GAS });
    await started;
    return { call }; // wrapped: an async function would wait for the call itself
  }

  test('a call that finishes while another runs commits once that one has ended, and its write is kept', async () => {
    const order: string[] = [];
    const spin = (await spinning(600, 'group-spin')).call.then((o) => (order.push('spin ended'), o));
    const set = host.call({ codeHash: kv, method: 'set', input: utf8(JSON.stringify({ key: 'g', value: 'grouped' })), contextId: id32('group-set') });
    const outcome = await set.then((o) => (order.push('set committed'), o));
    const spun = await spin;
    assert.deepEqual(spun.result, { code: 'internal_error', message: 'timeout', fingerprint: null });
    assert.deepEqual(order, ['spin ended', 'set committed'], 'the set waited for the call running beside it');
    assert.equal(outcome.result.code, 'return');
    assert.equal(outcome.applied, true);
    const read = await host.call({ codeHash: kv, method: 'get', input: utf8(JSON.stringify({ key: 'g' })), contextId: id32('group-set') });
    assert.equal(read.result.code, 'return', JSON.stringify(read.result));
    const v = (read.result as { value: unknown }).value;
    assert.equal(v instanceof Uint8Array ? text(v) : String(v), '"grouped"');
  });

  test('the wait ends at commitGroupMs when the call beside it runs longer', async () => {
    const shortDir = tempDir();
    const short = await Host.open({ dataDir: shortDir.path, poolSize: 2, killGraceMs: 200, commitGroupMs: 1 });
    try {
      const holdCode = await short.deploy(contract('hold'));
      const kvCode = await short.deploy(contract('kv-store'));
      const order: string[] = [];
      const started = new Promise<void>((resolve) => short.events.on('call.started', () => resolve()));
      const spin = short.call({ codeHash: holdCode, method: 'write_then_loop', contextId: id32('cap-spin'), deadlineMs: 20_000, gasLimit: UNLIMITED_GAS }).then((o) => (order.push('spin ended'), o));
      await started;
      await short.call({ codeHash: kvCode, method: 'set', input: utf8(JSON.stringify({ key: 'c', value: 'capped' })), contextId: id32('cap-set') });
      order.push('set committed');
      assert.deepEqual(order, ['set committed'], 'committed while the other call still ran');
      await killBusyVm(short); // end the spinning call now rather than at its deadline
      assert.equal((await spin).result.code, 'internal_error');
    } finally {
      await short.close();
      shortDir.remove();
    }
  });

  test('commitGroupMs is checked when the host opens', async () => {
    for (const bad of [-1, 1.5, 1001]) {
      await assert.rejects(
        Host.open({ commitGroupMs: bad }),
        (e: unknown) => isHostlinkError(e, 'usage') && /commitGroupMs/.test((e as Error).message),
      );
    }
  });
});
