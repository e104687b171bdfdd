/**
 * Sandboxed sub-instances through real VM processes: results come back as values, storage reads and blocks are
 * forbidden, writes need allow_write_ops and a caller that may write, and a fork bomb ends in a handled error.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { NONDET_LIMITS } from '../../src/protocol/nondet.generated.js';
import { INSTANTIATION_GAS } from '../../src/vm/host-functions.generated.js';
import type { CallFinished } from '../../src/host/events.js';
import { id32, text } from '../helpers.js';
import { wat } from '../instrument/helpers.js';
import { openHost } from '../node/helpers.js';
import { openNondetHost, returned, type NondetHost } from './helpers.js';

describe('sandbox', () => {
  let t: NondetHost;
  before(async () => {
    t = await openNondetHost();
  });
  after(() => t.close());

  test('Return, UserError and VMError come back to the caller as values', async () => {
    assert.equal(returned(await t.run('sb', 's_ret|payload')), '0:payload');
    assert.equal(returned(await t.run('sb', 's_user|RB')), '1:RB');
    assert.equal(returned(await t.run('sb', 's_trap|x')), '2:wasm_trap unreachable');
    // The message goes on to list the contract's methods (as any method_not_found does).
    assert.match(returned(await t.run('sb', 'no_such_method|x')), /^2:method_not_found no_such_method \(methods: nd, /);
    assert.equal(returned(await t.run('sb', 'bad-name|x')), '2:invalid_method_name method names are 1-256 ASCII letters, digits or _');
  });

  test('a sandbox cannot read storage, even when allowed to write', async () => {
    await t.run('sb_write', 's_write|seed');
    for (const m of ['sb', 'sb_write']) {
      const r = returned(await t.run(m, 's_read|x'));
      assert.match(r, /^2:Forbidden \(storage_read\): storage is forbidden in a sandbox/, m);
    }
  });

  test('write with permission: the writes and events leave with the caller\'s result, blind', async () => {
    const o = await t.run('sb_write', 's_write|v1', undefined, 'sandbox-write');
    assert.equal(returned(o), '0:wrote');
    assert.equal(o.applied, true);
    assert.deepEqual(o.writes.map(([k, v]) => [text(k), v && text(v)]), [['sandboxed', 'v1']]);
    assert.deepEqual(o.events.map((e) => [e.kind, text(e.data)]), [['sandbox-event', 'v1']]);
    // Writing again over the stored value: still blind (the sandbox learns nothing about the old value).
    const again = await t.run('sb_write', 's_write|v2', undefined, 'sandbox-write');
    assert.equal(returned(again), '0:wrote');
    assert.deepEqual(again.writes.map(([k, v]) => [text(k), v && text(v)]), [['sandboxed', 'v2']]);
  });

  test('write without permission, or from a caller that may not write, is forbidden', async () => {
    const o = await t.run('sb', 's_write|v', undefined, 'sandbox-nowrite');
    assert.match(returned(o), /^2:Forbidden \(storage_write\): writes are forbidden in this sandbox/);
    assert.deepEqual(o.writes, []);
    assert.deepEqual(o.events, []);
    // A sandbox without write permission starts one that asks for it: no escalation.
    const nested = await t.run('sb', 's_sandbox_write|x', undefined, 'sandbox-nowrite');
    assert.match(returned(nested), /^0:2:Forbidden \(storage_write\)/);
    assert.deepEqual(nested.writes, []);
    // Inside a non-deterministic block nothing may write either.
    const inBlock = await t.run('nd', 'l_sandbox|v_agree|x');
    assert.equal(returned(inBlock), '0:sandboxed');
  });

  test('a block inside a sandbox is forbidden, and the caller handles it', async () => {
    const o = await t.run('sb', 's_nested|x');
    assert.equal(returned(o), '2:Forbidden (run_nondet): a non-deterministic block is forbidden inside a sandbox');
    assert.deepEqual(o.nondetResults, []);
  });

  test('a deterministic sandbox sees the message\'s time and randomness, identically on every run', async () => {
    const a = returned(await t.run('sb', 'det_time|'));
    const b = returned(await t.run('sb', 'det_time|'));
    assert.equal(a, b);
    assert.match(a, /^0:1732603362424242000 [0-9a-f]{16}$/);
  });

  test('fork bomb: nesting stops at a named error the contract catches', async () => {
    const o = await t.run('bomb', '');
    assert.equal(returned(o), `caught OOM sandbox_depth: sub-instances may nest at most ${NONDET_LIMITS.maxSubInstanceDepth} deep`);
    // The same under the largest stack limit and the smallest memory: still the depth limit, never a crash.
    for (const limits of [{ maxStackSize: 262_144 }, { maxMemoryPages: 8 }]) {
      const p = await t.host.call({ codeHash: t.code, method: 'bomb', contextId: t.code, limits });
      assert.equal(p.result.code, 'return', JSON.stringify(p.result));
      assert.match(returned(p), /^caught OOM/);
    }
  });

  test('a sandbox trap uses only its share of the gas: the caller goes on', async () => {
    // The limit covers the sandbox's own price (protocol/gas-costs.json) and leaves the trap half of the rest.
    const gasLimit = 50_000_000n;
    const o = await t.host.call({ codeHash: t.code, method: 'sb', input: Buffer.from('s_trap|x'), contextId: t.code, gasLimit });
    assert.equal(returned(o), '2:wasm_trap unreachable');
    assert.ok(o.gasUsed >= gasLimit / 2n && o.gasUsed < gasLimit, String(o.gasUsed));
  });

  test('sandbox results are deterministic: a validator replaying the call gets the same hash', async () => {
    const lead = await t.run('sb_write', 's_write|same', undefined, 'sandbox-hash-a');
    const val = await t.run('sb_write', 's_write|same', { leaderResults: [] }, 'sandbox-hash-b');
    assert.deepEqual(val.executionHash, lead.executionHash);
  });
});

describe('sandbox stack', () => {
  let t: NondetHost;
  before(async () => {
    t = await openNondetHost({ poolSize: 1 });
  });
  after(() => t.close());

  test('nested instances, each recursing to its own stack limit, fit one native stack at the largest limit', async () => {
    // The deepest recursion each level allows while still starting the next level: found by bisection, level
    // by level. Any native RangeError would surface as an internal_error (vm_bug), never as stack_overflow.
    const limits = { maxStackSize: 262_144 };
    const deep = async (list: number[]): Promise<string> => {
      const o = await t.host.call({ codeHash: t.code, method: 'deep', input: Buffer.from('\n' + list.join(' ')), contextId: t.code, limits });
      assert.notEqual(o.result.code, 'internal_error', JSON.stringify(o.result));
      return o.result.code === 'return' ? text(o.result.value as Uint8Array) : (o.result as { message: string }).message;
    };
    const found: number[] = [];
    for (let level = 0; level <= NONDET_LIMITS.maxSubInstanceDepth; level++) {
      const last = level === NONDET_LIMITS.maxSubInstanceDepth;
      let lo = level === 0 ? 0 : Math.max(0, (found[level - 1]! >> 1) - 64);
      let hi = level === 0 ? 8192 : (found[level - 1]! >> 1) + 64;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if ((await deep(last ? [...found, mid] : [...found, mid, 0])).includes('stack_overflow')) hi = mid - 1;
        else lo = mid;
      }
      found.push(lo);
    }
    // Each level gets about half of its caller's stack, and all of them at once still end normally.
    assert.ok(found[0]! > 1000, String(found));
    assert.equal(await deep(found), '0:0:0:0:bottom');
    assert.match(await deep([...found.slice(0, -1), found.at(-1)! + 1]), /stack_overflow/);
  });
});

describe('sandbox memory', () => {
  // `run` grows its memory through 1, 513, 769, ... 1023 of the call's 1024 pages and, at each size, starts a
  // chain of sandboxes nested as deep as allowed; it returns each chain's code. A sub-instance's memory limit is
  // compiled into the module: when it followed the pages the caller held, every size was a new compiled
  // variant of the whole module (get_code again, then instrumentation and compilation, none of it charged).
  const module = wat(`(module
    (import "env" "sandbox" (func $sandbox (param i64 i64 i32 i64) (result i32)))
    (import "env" "value_return" (func $value_return (param i64)))
    (memory (export "memory") 1)
    (data (i32.const 0) "\\48\\00\\00\\00\\00\\00\\00\\00\\05\\00\\00\\00\\00\\00\\00\\00")
    (data (i32.const 72) "chain")
    (func (export "chain") (drop (call $sandbox (i64.const 0) (i64.const 16) (i32.const 0) (i64.const 0))))
    (func (export "run") (local $i i32) (local $t i32)
      (local.set $t (i32.const 512))
      (loop $next
        (drop (memory.grow (i32.sub (i32.sub (i32.const 1025) (i32.shl (local.get $t) (i32.const 1))) (memory.size))))
        (i32.store8 offset=128 (local.get $i) (call $sandbox (i64.const 0) (i64.const 16) (i32.const 0) (i64.const 0)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $t (i32.shr_u (local.get $t) (i32.const 1)))
        (br_if $next (local.get $t)))
      (i64.store (i32.const 96) (i64.const 0))
      (i64.store (i32.const 104) (i64.const 128))
      (i64.store (i32.const 112) (i64.extend_i32_u (local.get $i)))
      (call $value_return (i64.const 96))))`);

  test('a sub-instance gets half of its caller\'s pages whatever the caller holds: one compiled variant per depth', async () => {
    const t = await openHost({ poolSize: 1 });
    try {
      const code = await t.host.deploy(await module);
      const finished: CallFinished[] = [];
      t.host.events.on('call.finished', (e) => finished.push(e));
      const o = await t.host.call({ codeHash: code, method: 'run', contextId: id32('sandbox-memory'), limits: { maxMemoryPages: 1024 } });
      assert.equal(o.result.code, 'return', JSON.stringify(o.result));
      // Every chain runs (shares 512, 256, 128, 64 pages), whatever the caller holds.
      assert.deepEqual([...((o.result as { value: Uint8Array }).value)], Array<number>(10).fill(0));
      // A fresh VM: the main instance and one variant per depth, nothing more.
      assert.equal(finished.length, 1);
      assert.equal(finished[0]!.hostCalls['get_code']?.count, 1 + NONDET_LIMITS.maxSubInstanceDepth, JSON.stringify(finished[0]!.hostCalls));
    } finally {
      await t.close();
    }
  });
});

describe('sandbox instantiation', () => {
  // The same contract twice, but for what creating an instance copies and allocates: `run` starts K sandboxes
  // of `noop` (stopping at the first that fails) and returns their codes. Each fresh instance copies the data,
  // fills the table and allocates the memory again; that used to cost nothing beyond the sandbox's base gas
  // (about 8 ms a sandbox of a module at the module budgets, 25 times below WebAssembly's time per gas), so gas
  // did not bound the call's time.
  const K = 5;
  /** `extra` more of each part an instance builds whatever its size: empty segments, imports, exports, globals. */
  const module = (pages: number, slots: number, dataBytes: number, extra = 0): Promise<Uint8Array> =>
    wat(`(module
      (import "env" "sandbox" (func $sandbox (param i64 i64 i32 i64) (result i32)))
      (import "env" "value_return" (func $value_return (param i64)))
      ${Array.from({ length: extra }, (_, i) => `(import "env" "value_return" (func $more${i} (param i64)))`).join('\n')}
      ${Array.from({ length: extra }, (_, i) => `(global $g${i} i32 (i32.const ${i}))`).join('\n')}
      ${Array.from({ length: extra }, (_, i) => `(export "noop${i}" (func $noop)) (elem func) (data "")`).join('\n')}
      (memory (export "memory") ${pages})
      (table ${slots} funcref)
      (elem (i32.const 0) ${Array<string>(slots).fill('$noop').join(' ')})
      (data (i32.const 0) "\\28\\00\\00\\00\\00\\00\\00\\00\\04\\00\\00\\00\\00\\00\\00\\00")
      (data (i32.const 40) "noop")
      (data (i32.const 1024) "${'\\01'.repeat(dataBytes)}")
      (func $noop (export "noop"))
      (func (export "run") (local $i i32) (local $c i32)
        (block $done (loop $next
          (local.set $c (call $sandbox (i64.const 0) (i64.const 16) (i32.const 0) (i64.const 0)))
          (i32.store8 offset=512 (local.get $i) (local.get $c))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $done (local.get $c))
          (br_if $next (i32.lt_u (local.get $i) (i32.const ${K})))))
        (i64.store (i32.const 96) (i64.const 0))
        (i64.store (i32.const 104) (i64.const 512))
        (i64.store (i32.const 112) (i64.extend_i32_u (local.get $i)))
        (call $value_return (i64.const 96))))`);

  test('creating a sub-instance is charged by the data, table, elements and pages it creates again', async () => {
    const t = await openHost({ poolSize: 1 });
    try {
      const light = await t.host.deploy(await module(1, 1, 0));
      const heavy = await t.host.deploy(await module(32, 10_000, 1 << 20));
      const run = async (code: Uint8Array, gasLimit?: bigint) => {
        const o = await t.host.call({ codeHash: code, method: 'run', contextId: id32('instantiation'), ...(gasLimit ? { gasLimit } : {}) });
        assert.equal(o.result.code, 'return', JSON.stringify(o.result));
        return { codes: [...(o.result as { value: Uint8Array }).value], gas: o.gasUsed };
      };
      const a = await run(light);
      const b = await run(heavy);
      assert.deepEqual([a.codes, b.codes], [Array<number>(K).fill(0), Array<number>(K).fill(0)]);
      const g = INSTANTIATION_GAS;
      const more = BigInt(1 << 20) * BigInt(g.perDataByte) + 9_999n * BigInt(g.perTableSlot + g.perElement) + 31n * BigInt(g.perInitialPage);
      assert.equal(b.gas - a.gas, BigInt(K) * more);
      // A sandbox whose share cannot pay for its instance: its out_of_gas, a value the caller handles.
      const poor = await run(heavy, 40_000_000n);
      assert.deepEqual(poor.codes, [2]);
    } finally {
      await t.close();
    }
  });

  test('and by the segments, imports, exports and globals it walks, links and builds again, empty or not', async () => {
    // 65,530 empty segments, 9,000 imports and 1,020 exports made each sandbox cost ~11 ms for the same gas as a
    // module of none: gas no longer bounded the call's time.
    const t = await openHost({ poolSize: 1 });
    try {
      const plain = await t.host.deploy(await module(1, 1, 0));
      const parts = await t.host.deploy(await module(1, 1, 0, 200));
      const gasOf = async (code: Uint8Array): Promise<bigint> => {
        const o = await t.host.call({ codeHash: code, method: 'run', contextId: id32('instantiation-parts') });
        assert.equal(o.result.code, 'return', JSON.stringify(o.result));
        assert.deepEqual([...(o.result as { value: Uint8Array }).value], Array<number>(K).fill(0));
        return o.gasUsed;
      };
      const g = INSTANTIATION_GAS;
      // Each extra: an import, a global, an export, an element segment and a data segment.
      const more = 200n * BigInt(g.perImport + g.perGlobal + g.perExport + g.perElementSegment + g.perDataSegment);
      assert.equal((await gasOf(parts)) - (await gasOf(plain)), BigInt(K) * more);
    } finally {
      await t.close();
    }
  });
});
