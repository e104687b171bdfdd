/**
 * Non-deterministic blocks through real VM processes, in the three roles: golden cases ported from the
 * reference system (leader_errors, nondet/validator, pitfalls), adapted to the nondet test contract.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isHostlinkError } from '../../src/errors.js';
import { decodeBlockResult } from '../../src/protocol/nondet.js';
import { NONDET_LIMITS } from '../../src/protocol/nondet.generated.js';
import { id32 } from '../helpers.js';
import { wat } from '../instrument/helpers.js';
import { hexes, openNondetHost, ret, returned, userErr, userError, vmErr, vmError, type NondetHost } from './helpers.js';

describe('non-deterministic blocks', () => {
  let t: NondetHost;
  before(async () => {
    t = await openNondetHost();
  });
  after(() => t.close());

  test('leader: the block runs, its result is returned and recorded in the outcome', async () => {
    const o = await t.run('nd', 'l_ret|v_same|hello');
    assert.equal(returned(o), 'hello');
    assert.deepEqual(hexes(o.nondetResults), hexes([ret('hello')]));
    assert.equal(o.disagreement, null);
  });

  test('leader run with an erroring block: the VMError ends the call and is recorded for validators', async () => {
    const o = await t.run('nd', 'l_trap|v_strict|x');
    assert.equal(vmError(o), 'wasm_trap unreachable');
    assert.deepEqual(hexes(o.nondetResults), hexes([vmErr('wasm_trap unreachable')]));
    assert.equal(o.applied, false);
  });

  test('leader block with a UserError: a value the contract handles', async () => {
    const o = await t.run('nd_catch', 'l_user|v_strict|nah');
    assert.equal(returned(o), 'handled nah');
    assert.deepEqual(hexes(o.nondetResults), hexes([userErr('nah')]));
  });

  test('validator with no proposals: VMError absent', async () => {
    assert.equal(vmError(await t.run('nd', 'l_ret|v_agree|x', { leaderResults: [] })), 'absent');
    // The second block has no proposal either.
    assert.equal(vmError(await t.run('nd_twice', 'l_ret|v_agree|x', { leaderResults: [ret('x')] })), 'absent');
  });

  test('validator agrees on an error: the same VMError ends the call, no disagreement', async () => {
    const lead = await t.run('nd', 'l_trap|v_strict|x');
    const o = await t.run('nd', 'l_trap|v_strict|x', { leaderResults: lead.nondetResults });
    assert.equal(vmError(o), 'wasm_trap unreachable');
    assert.equal(o.disagreement, null);
    assert.deepEqual(o.executionHash, lead.executionHash);
  });

  test('validator disagrees on the error kind', async () => {
    // The block traps (VMError) but the leader proposed a UserError with the same text.
    const o = await t.run('nd', 'l_trap|v_strict|x', { leaderResults: [userErr('wasm_trap unreachable')] });
    assert.equal(vmError(o), 'validator_disagrees call 0');
    assert.equal(o.disagreement?.callNo, 0);
    // And the other way round: the leader claims a trap, the block returns.
    const p = await t.run('nd', 'l_ret|v_strict|x', { leaderResults: [vmErr('wasm_trap unreachable')] });
    assert.equal(vmError(p), 'validator_disagrees call 0');
  });

  test('validator agrees on the same value and disagrees on a different one', async () => {
    const agreed = await t.run('nd', 'l_ret|v_same|Hello world!', { leaderResults: [ret('Hello world!')] });
    assert.equal(returned(agreed), 'Hello world!');
    assert.equal(agreed.disagreement, null);
    const o = await t.run('nd', 'l_ret|v_same|Hello world!', { leaderResults: [ret('Hello world~')] });
    assert.equal(vmError(o), 'validator_disagrees call 0');
    assert.match(o.disagreement!.reason, /rejected/);
  });

  test('only calldata true accepts: false, text "true", nothing, a trap and a missing method all disagree', async () => {
    for (const v of ['v_disagree', 'v_text_true', 'v_trap', 'v_storage', 'no_such_method', 'l_mark']) {
      const o = await t.run('nd', `l_ret|${v}|x`, { leaderResults: [ret('x')] });
      assert.equal(vmError(o), 'validator_disagrees call 0', v);
      assert.equal(o.disagreement?.callNo, 0, v);
      assert.equal(o.applied, false);
    }
  });

  test('rollback agree and disagree', async () => {
    const agreed = await t.run('nd', 'l_user|v_strict|rollback', { leaderResults: [userErr('rollback')] });
    assert.equal(userError(agreed), 'rollback');
    assert.equal(agreed.disagreement, null);
    const o = await t.run('nd', 'l_user|v_strict|rollback', { leaderResults: [userErr('other rollback')] });
    assert.equal(vmError(o), 'validator_disagrees call 0');
  });

  test('the first disagreeing block is named', async () => {
    const o = await t.run('nd_twice', 'l_ret|v_same|a', { leaderResults: [ret('a'), ret('b')] });
    assert.equal(vmError(o), 'validator_disagrees call 1');
    assert.equal(o.disagreement?.callNo, 1);
    assert.deepEqual(hexes(o.nondetResults), hexes([ret('a'), ret('b')]));
  });

  test('sync returns the recorded result and never runs either function', async () => {
    const o = await t.run('nd', 'l_mark|v_mark|x', { leaderResults: [ret('123')], sync: true });
    assert.equal(returned(o), '123');
    assert.deepEqual(o.logs, []);
    // A recorded UserError and VMError replay as such.
    assert.equal(userError(await t.run('nd', 'l_mark|v_mark|x', { leaderResults: [userErr('rb')], sync: true })), 'rb');
    assert.equal(vmError(await t.run('nd', 'l_mark|v_mark|x', { leaderResults: [vmErr('exit_code 1')], sync: true })), 'exit_code 1');
    assert.equal(vmError(await t.run('nd', 'l_mark|v_mark|x', { leaderResults: [], sync: true })), 'absent');
  });

  test('leader, validator and sync of the same call have the same execution hash and state', async () => {
    const lead = await t.run('nd_store', 'l_ret|v_same|42', undefined, 'hash-leader');
    const val = await t.run('nd_store', 'l_ret|v_same|42', { leaderResults: lead.nondetResults }, 'hash-validator');
    const sync = await t.run('nd_store', 'l_ret|v_same|42', { leaderResults: lead.nondetResults, sync: true }, 'hash-sync');
    for (const o of [lead, val, sync]) {
      assert.equal(returned(o), '42');
      assert.equal(o.applied, true);
    }
    // Different contexts, same contract state: the roots match too.
    assert.deepEqual(val.stateRoot, lead.stateRoot);
    assert.deepEqual(val.executionHash, lead.executionHash);
    assert.deepEqual(sync.executionHash, lead.executionHash);
    assert.equal(lead.executionHash.length, 32);
    // A different agreed value changes the hash.
    const other = await t.run('nd_store', 'l_ret|v_agree|42', { leaderResults: [ret('43')] }, 'hash-other');
    assert.notDeepEqual(other.executionHash, lead.executionHash);
  });

  test('a block leaves nothing behind: the code after it has the same room in every role', async () => {
    // l_leave and v_leave log as many lines as their payload's count and keep their input in a register; the
    // call then logs and writes up to its own limits. A block's leftovers used to count against those limits
    // in the leader and the validator only, so the same agreed proposal gave LogsOverflow or
    // MemoryLimitExceeded there and Return in the sync replay.
    const pad = 'x'.repeat(400_000);
    const cases = [
      { what: 'log lines', input: 'l_leave|v_leave|6|0|5', limits: { maxLogs: 10 } },
      { what: 'held bytes', input: `l_leave|v_leave|0|1600000|0${pad}`, limits: { maxExecutionMemory: 2_000_000 } },
    ];
    for (const c of cases) {
      const call = (context: string, nondet?: Parameters<NondetHost['run']>[2]) =>
        t.host.call({ codeHash: t.code, method: 'nd_then', input: Buffer.from(c.input), contextId: id32(`${c.what}-${context}`), limits: c.limits, ...(nondet ? { nondet } : {}) });
      const lead = await call('leader');
      const val = await call('validator', { leaderResults: lead.nondetResults });
      const sync = await call('sync', { leaderResults: lead.nondetResults, sync: true });
      for (const o of [lead, val, sync]) assert.equal(returned(o), 'left', c.what);
      assert.deepEqual(val.executionHash, lead.executionHash, c.what);
      assert.deepEqual(sync.executionHash, lead.executionHash, c.what);
      // Only the deterministic code's lines remain, in every role.
      assert.deepEqual(lead.logs, sync.logs, c.what);
      assert.deepEqual(val.logs, sync.logs, c.what);
    }
  });

  test('a validator that runs out of its own gas before its last block says out_of_gas, not leader_fault', async () => {
    // v_burn agrees after more work than l_ret, so the validator's call has less gas left after block 0 than
    // the leader's had. Near the limit, the leader runs both blocks and the validator stops before the second:
    // that is the validator's gas, not proposals the leader made up.
    // The window starts where the leader first runs both blocks (it moves with the gas schedule) and is narrow
    // (about 0.5M gas wide with schedule 7), so it is walked in small steps from there.
    const seen = new Set<string>();
    let both = 0;
    for (let gasLimit = 10_000_000n; gasLimit <= 40_000_000n && both < 24 && !seen.has('out_of_gas'); gasLimit += 250_000n) {
      const call = (nondet?: Parameters<NondetHost['run']>[2]) =>
        t.host.call({ codeHash: t.code, method: 'nd_twice', input: Buffer.from('l_ret|v_burn|200000'), contextId: id32('burn'), gasLimit, ...(nondet ? { nondet } : {}) });
      const lead = await call();
      if (lead.nondetResults.length < 2) {
        gasLimit += 2_250_000n; // far from the window yet: larger steps
        continue;
      }
      both++;
      const val = await call({ leaderResults: lead.nondetResults });
      const message = val.result.code === 'return' ? 'return' : (val.result as { message: string }).message;
      assert.doesNotMatch(message, /^leader_fault/, String(gasLimit));
      seen.add(message.split(' ')[0]!);
    }
    assert.ok(both > 0, 'the leader ran both blocks at some gas limit');
    assert.ok(seen.has('out_of_gas'), [...seen].join(', '));
    // Unused proposals after a run that ended on its own are still the leader's fault.
    const o = await t.run('nd', 'l_ret|v_agree|x', { leaderResults: [ret('x'), ret('y')] });
    assert.equal(vmError(o), 'leader_fault nondet_output extra');
    const afterError = await t.run('nd', 'l_ret|v_agree|x', { leaderResults: [vmErr('out_of_gas'), ret('y')] });
    assert.equal(vmError(afterError), 'leader_fault nondet_output extra');
  });

  test('block results and logs past max_effect_bytes end an honest call with EffectsOverflow, never a protocol violation', async () => {
    // The host counts the blocks' results and the kept logs against max_effect_bytes; the VM used to hand them
    // over regardless, and the host then judged the honest VM compromised (internal_error protocol_violation).
    const big = 'x'.repeat(2048);
    const limits = { maxEffectBytes: 1024 };
    const roles: (Parameters<NondetHost['run']>[2] | undefined)[] = [undefined, { leaderResults: [ret(big)] }, { leaderResults: [ret(big)], sync: true }];
    for (const nondet of roles) {
      const o = await t.host.call({ codeHash: t.code, method: 'nd', input: Buffer.from(`l_ret|v_agree|${big}`), contextId: id32('effect-bytes'), limits, ...(nondet ? { nondet } : {}) });
      assert.match(vmError(o), /^EffectsOverflow \(run_nondet\): the non-deterministic blocks' results reached \d+ bytes, over max_effect_bytes 1024$/, JSON.stringify(nondet));
      assert.equal(o.applied, false);
    }
    const logged = await t.host.call({ codeHash: t.code, method: 'nd_then', input: Buffer.from('l_ret|v_agree|20|0|x'), contextId: id32('effect-bytes'), limits: { maxEffectBytes: 100 } });
    assert.match(vmError(logged), /^EffectsOverflow \(result\): /);
    assert.deepEqual(logged.logs, []);
  });

  test('blocks end the call with EffectsOverflow at the block whose result passes max_effect_bytes, in every role alike', async () => {
    // Checked only when the call ended, a leader's blocks' results piled up in the VM (130 blocks of 25 MB: 3.1 GB,
    // killed by the VM's memory bound, no gas charged). Two blocks of 600 bytes against a limit of 1,000: the
    // second one ends the call, whatever the method would do after it.
    const payload = 'y'.repeat(600);
    const limits = { maxEffectBytes: 1000 };
    const roles: (Parameters<NondetHost['run']>[2] | undefined)[] = [undefined, { leaderResults: [ret(payload), ret(payload)] }, { leaderResults: [ret(payload), ret(payload)], sync: true }];
    const hashes: string[] = [];
    for (const nondet of roles) {
      const o = await t.host.call({ codeHash: t.code, method: 'nd_twice', input: Buffer.from(`l_ret|v_agree|${payload}`), contextId: id32('block-bytes'), limits, ...(nondet ? { nondet } : {}) });
      assert.equal(vmError(o), `EffectsOverflow (run_nondet): the non-deterministic blocks' results reached ${2 * ret(payload).length} bytes, over max_effect_bytes 1000`, JSON.stringify(nondet));
      assert.equal(o.applied, false);
      hashes.push(Buffer.from(o.executionHash).toString('hex'));
    }
    assert.equal(new Set(hashes).size, 1, 'the same execution hash in every role');
  });

  test('a sandbox after a block gets the same gas in every role: the same proposals give the same result', async () => {
    // `run` runs one block (leader method `lead`, validator `val`), then a sandbox of `work` (W loop rounds), and
    // returns the sandbox's code. The block's methods burn different gas in the leader and the validator, and none
    // runs in a sync replay; the sandbox's share used to come from the real gas left, so near its own need the
    // sandbox returned in one role and ran out of gas in another, with the call far from its gas limit.
    const burn = (n: number): string => `(local $i i32) (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const ${n}))))`;
    const module = (lead: number, val: number, work: number): Promise<Uint8Array> =>
      wat(`(module
        (import "env" "run_nondet" (func $run_nondet (param i64 i64 i64 i64) (result i32)))
        (import "env" "sandbox" (func $sandbox (param i64 i64 i32 i64) (result i32)))
        (import "env" "value_return" (func $value_return (param i64)))
        (memory (export "memory") 1)
        (data (i32.const 0) "\\c8\\00\\00\\00\\00\\00\\00\\00\\04\\00\\00\\00\\00\\00\\00\\00\\d2\\00\\00\\00\\00\\00\\00\\00\\03\\00\\00\\00\\00\\00\\00\\00\\dc\\00\\00\\00\\00\\00\\00\\00\\04\\00\\00\\00\\00\\00\\00\\00")
        (data (i32.const 200) "lead") (data (i32.const 210) "val") (data (i32.const 220) "work") (data (i32.const 240) "\\10")
        (func $ret (param $ptr i64) (param $len i64)
          (i64.store (i32.const 96) (i64.const 0)) (i64.store (i32.const 104) (local.get $ptr)) (i64.store (i32.const 112) (local.get $len))
          (call $value_return (i64.const 96)))
        (func (export "lead") ${burn(lead)} (call $ret (i64.const 240) (i64.const 1)))
        (func (export "val") ${burn(val)} (call $ret (i64.const 240) (i64.const 1)))
        (func (export "work") ${burn(work)})
        (func (export "run")
          (drop (call $run_nondet (i64.const 0) (i64.const 16) (i64.const 48) (i64.const 0)))
          (i32.store8 (i32.const 300) (call $sandbox (i64.const 32) (i64.const 48) (i32.const 0) (i64.const 1)))
          (call $ret (i64.const 300) (i64.const 1))))`);
    const codes = new Set<number>();
    for (const [lead, val] of [[3_000_000, 10], [10, 3_000_000]] as const) {
      for (let work = 1_000_000; work <= 8_000_000; work += 1_000_000) {
        const code = await t.host.deploy(await module(lead, val, work));
        const call = (role: string, nondet?: Parameters<NondetHost['run']>[2]) =>
          t.host.call({ codeHash: code, method: 'run', contextId: id32(`sandbox-gas-${role}`), gasLimit: 100_000_000n, ...(nondet ? { nondet } : {}) });
        const lo = await call('leader');
        const va = await call('validator', { leaderResults: lo.nondetResults });
        const sy = await call('sync', { leaderResults: lo.nondetResults, sync: true });
        const what = `lead ${lead}, val ${val}, work ${work}`;
        const code0 = (lo.result as { value: Uint8Array }).value[0]!;
        codes.add(code0);
        for (const o of [va, sy]) {
          assert.equal(o.result.code, 'return', what);
          assert.equal((o.result as { value: Uint8Array }).value[0], code0, what);
          assert.deepEqual(o.executionHash, lo.executionHash, what);
        }
      }
    }
    // The sandbox both returned and ran out of its share across the cases: the boundary was crossed.
    assert.deepEqual([...codes].sort(), [0, 2]);
  });

  test('leader results too large for the frame a VM receives its message in are refused before a VM runs', async () => {
    // Many proposals, or one large one: either way the message cannot reach a VM (it used to kill the VM that
    // asked for it, internal_error vm_crash, which a node may retry forever).
    const many = Array<Uint8Array>(NONDET_LIMITS.maxNondetBlocks).fill(ret('a'.repeat(20_000)));
    const one = [ret('a'.repeat(50 * 1024 * 1024))];
    for (const leaderResults of [many, one]) {
      for (const sync of [false, true]) {
        await assert.rejects(t.run('nd', 'l_ret|v_agree|x', { leaderResults, sync }), (e: unknown) => isHostlinkError(e, 'usage') && /frame/.test((e as Error).message));
      }
    }
    assert.equal(returned(await t.run('nd', 'l_ret|v_same|after')), 'after');
  });

  test('leftover proposals: leader_fault nondet_output extra', async () => {
    const o = await t.run('nd', 'l_ret|v_agree|x', { leaderResults: [ret('x'), ret('y')] });
    assert.equal(vmError(o), 'leader_fault nondet_output extra');
    assert.equal(o.applied, false);
    const s = await t.run('nd', 'l_ret|v_agree|x', { leaderResults: [ret('x'), ret('y')], sync: true });
    assert.equal(vmError(s), 'leader_fault nondet_output extra');
  });

  test('malformed proposals are replaced by leader_fault for the validator, never trapping it', async () => {
    const cases: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['unknown code', Uint8Array.of(9, 1, 2)],
      ['internal_error code', Uint8Array.of(3, 0x41)],
      ['bad calldata', Uint8Array.of(0, 0xff, 0xff)],
      ['trailing bytes', Uint8Array.of(...ret('x'), 0)],
      ['calldata not bytes', Uint8Array.of(0, 0x10)],
      ['message not UTF-8', Uint8Array.of(1, 0xc3, 0x28)],
    ];
    for (const [what, bad] of cases) {
      // A validator that accepts anything sees the derived VMError and accepts it: the call ends with it.
      const o = await t.run('nd', 'l_ret|v_agree|x', { leaderResults: [bad] });
      assert.equal(vmError(o), 'leader_fault nondet_output malformed', what);
      const kept = decodeBlockResult(o.nondetResults[0]!);
      assert.deepEqual(kept, { code: 'vm_error', message: 'leader_fault nondet_output malformed' }, what);
      // A judging validator disagrees instead.
      assert.equal(vmError(await t.run('nd', 'l_ret|v_same|x', { leaderResults: [bad] })), 'validator_disagrees call 0', what);
      // Sync takes the replacement.
      assert.equal(vmError(await t.run('nd', 'l_ret|v_same|x', { leaderResults: [bad], sync: true })), 'leader_fault nondet_output malformed', what);
    }
  });

  test('a proposal using the protocol\'s own verdicts is replaced (uses_this_error)', async () => {
    // ... and verdicts only the host records for a whole call: an accepted "timeout" made the validator's call
    // look as if its deadline had passed.
    const hostVerdicts = ['timeout', 'result_too_large the result and effects take 1 bytes', 'vm_crash the VM process ended (signal SIGKILL)', 'host_error x'];
    for (const m of ['absent', 'validator_disagrees call 0', 'leader_fault nondet_output extra', ...hostVerdicts]) {
      for (const sync of [false, true]) {
        const o = await t.run('nd', 'l_ret|v_agree|x', { leaderResults: [vmErr(m)], sync });
        assert.equal(vmError(o), 'leader_fault nondet_output uses_this_error', m);
      }
    }
    // A sub-instance's own errors are still proposals like any other.
    for (const m of ['out_of_gas', 'wasm_trap unreachable', 'timeouts are not a reason', 'exit_code 1']) {
      assert.equal(vmError(await t.run('nd', 'l_ret|v_agree|x', { leaderResults: [vmErr(m)] })), m);
    }
  });

  test('accepted proposals are kept byte for byte', async () => {
    // "null" Return (nothing returned) and an odd but valid message survive unchanged.
    const proposals = [Uint8Array.of(0, 0), userErr('é ü')];
    const o = await t.run('nd_twice', 'l_ret|v_agree|x', { leaderResults: proposals });
    assert.equal(returned(o), '0:,1:é ü');
    assert.deepEqual(hexes(o.nondetResults), hexes(proposals));
  });

  test('storage access, writes, events, xcalls and nested blocks inside a block are forbidden', async () => {
    for (const [m, fn] of [
      ['l_storage', 'storage_read'],
      ['l_write', 'storage_write'],
      ['l_emit', 'emit'],
      ['l_xcall', 'xcall'],
      ['l_nested', 'run_nondet'],
    ]) {
      const o = await t.run('nd', `${m}|v_agree|x`);
      const msg = vmError(o);
      assert.match(msg, new RegExp(`^Forbidden \\(${fn}\\): .*forbidden`), m);
      assert.deepEqual(o.events, []);
      assert.deepEqual(o.xcalls, []);
      assert.equal(o.applied, false);
    }
    // A validator method is held to the same rules.
    const v = await t.run('nd', 'l_ret|v_storage|x', { leaderResults: [ret('x')] });
    assert.equal(vmError(v), 'validator_disagrees call 0');
    assert.match(v.disagreement!.reason, /forbidden/);
  });

  test('a block sees machine time and randomness; deterministic code sees the message', async () => {
    const a = returned(await t.run('nd', 'l_time|v_agree|x')).split(' ');
    const b = returned(await t.run('nd', 'l_time|v_agree|x')).split(' ');
    const now = BigInt(Date.now()) * 1_000_000n;
    assert.ok(BigInt(a[0]!) > now - 60_000_000_000n && BigInt(a[0]!) <= now, a[0]);
    assert.notEqual(a[1], b[1]);
    const d1 = returned(await t.run('det_time', ''));
    const d2 = returned(await t.run('det_time', ''));
    assert.equal(d1, d2);
    assert.equal(d1.split(' ')[0], '1732603362424242000');
  });

  test(`more than ${NONDET_LIMITS.maxNondetBlocks} blocks end the call`, async () => {
    // Every block is priced as a sub-instance (protocol/gas-costs.json): enough gas that only the cap can stop it.
    const many = (n: number) =>
      t.host.call({ codeHash: t.code, method: 'nd_many', input: Buffer.from(`x|x|${n}`), contextId: t.code, gasLimit: 1_000_000_000_000n });
    const ok = await many(NONDET_LIMITS.maxNondetBlocks);
    assert.equal(returned(ok), String(NONDET_LIMITS.maxNondetBlocks));
    assert.equal(ok.nondetResults.length, NONDET_LIMITS.maxNondetBlocks);
    const o = await many(NONDET_LIMITS.maxNondetBlocks + 1);
    assert.match(vmError(o), /^OOM nondet_blocks/);
  });

  test('a block\'s gas is charged to the call', async () => {
    const plain = await t.run('l_ret', 'x');
    const viaBlock = await t.run('nd', 'l_ret|v_agree|x');
    assert.ok(viaBlock.gasUsed > plain.gasUsed, `${viaBlock.gasUsed} > ${plain.gasUsed}`);
    // A tiny gas limit cannot be escaped by looping inside a block.
    const starved = await t.host.call({ codeHash: t.code, method: 'nd_many', input: Buffer.from('x|x|100'), contextId: t.code, gasLimit: 200_000n });
    assert.equal(vmError(starved), 'out_of_gas');
  });

  test('a bad role in the message is refused with the field named', async () => {
    await assert.rejects(
      t.host.call({ codeHash: t.code, method: 'nd', contextId: t.code, nondet: { sync: true } }),
      /field 'sync' needs leader_results/,
    );
  });
});
