/**
 * The core host functions (system, registers, context, input/output, logging and events, storage), each with
 * exact descriptors built by a WAT probe, through real VM processes on LMDB: the success path, absent items,
 * every limit that applies, out-of-bounds descriptors and invalid UTF-8 where a string is read.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Host, Outcome } from '../../src/host/host.js';
import { id32, text } from '../helpers.js';
import { openHost, type TestHost } from '../node/helpers.js';
import { assertVmError, call, Probe, returned, returnedU64 } from '../node/probe.js';

const OOB = 0xfffffff0;
const BAD_UTF8 = Uint8Array.of(0x61, 0xff, 0x62);

describe('core host functions through real VM processes', () => {
  let t: TestHost;
  let host: Host;
  let code: Uint8Array;
  const ctx = id32('core-fns');
  const run = (method: string, limits?: Record<string, number>, input?: Uint8Array): Promise<Outcome> =>
    host.call({ codeHash: code, method, contextId: ctx, executorId: id32('executor'), ...(limits ? { limits } : {}), ...(input ? { input } : {}) });

  before(async () => {
    t = await openHost();
    host = t.host;
    const p = new Probe();
    const key = p.buf('key');
    const val = p.buf('value');
    const bad = p.buf(BAD_UTF8);
    const hello = p.buf('hello');
    const oobDesc = p.desc(OOB, 8); // a valid descriptor whose data lies outside memory
    const wrapDesc = p.desc(0xffffffffffffffffn, 2); // ptr + len overflows u64
    const file = p.buf('f.ts');
    // Location {file Buffer, u32 line, u32 column}: 24 bytes, built by hand after the file's descriptor.
    const loc = p.out(24);
    const badFile = p.buf(BAD_UTF8);
    const badLoc = p.out(24);
    const noFile = p.buf('');
    const bareLoc = p.out(24); // a location whose file is empty: no source position to show
    const out5 = p.out(5);
    const out9 = p.out(9);
    const okTag = p.out(24);
    const errTag = p.out(24);
    const badTag = p.out(24);
    const errBad = p.out(24);
    const event = p.out(32);
    const eventBadKind = p.out(32);
    const xc = p.out(48);
    const xcShortCtx = p.out(48);
    const ctxBytes = p.buf(new Uint8Array(32).fill(7));
    const short = p.buf(new Uint8Array(31));
    const copy = (dst: number, src: number, n = 16): string => `(memory.copy (i32.const ${dst}) (i32.const ${src}) (i32.const ${n}))`;
    const setLoc = (at: number, f: number): string => `${copy(at, f)} (i32.store (i32.const ${at + 16}) (i32.const 7)) (i32.store (i32.const ${at + 20}) (i32.const 9))`;
    const vr = (at: number, tag: number, b: number): string => `(i64.store (i32.const ${at}) (i64.const ${tag})) ${copy(at + 8, b)}`;

    // system
    p.method('panic_plain', `${setLoc(loc.at, file)} ${call('panic', loc.at)}`);
    p.method('panic_msg', `${setLoc(loc.at, file)} ${call('panic_utf8', hello, loc.at)}`);
    p.method('panic_bad_utf8', `${setLoc(loc.at, file)} ${call('panic_utf8', bad, loc.at)}`);
    p.method('panic_bad_file', `${setLoc(badLoc.at, badFile)} ${call('panic', badLoc.at)}`);
    p.method('panic_oob', call('panic', OOB));
    p.method('panic_bare', `${copy(bareLoc.at, noFile)} ${call('panic', bareLoc.at)}`);
    p.method('panic_msg_bare', `${copy(bareLoc.at, noFile)} ${call('panic_utf8', hello, bareLoc.at)}`);
    // registers
    p.method('register_len_absent', `(call $ret_i64 ${call('register_len', 42)})`);
    p.method('read_register_absent', `(drop ${call('read_register', 42, out5.desc)})`);
    p.method('read_register_mismatch', `${call('input', 1)} (call $ret_i64 (i64.extend_i32_u ${call('read_register', 1, out9.desc)}))`);
    p.method('read_register_ok', `${call('input', 1)} (drop ${call('read_register', 1, out5.desc)}) (call $ret_mem (i64.const ${out5.at}) (i64.const 5))`);
    p.method('read_register_oob', `${call('input', 1)} (drop ${call('read_register', 1, oobDesc)})`);
    p.method('registers_many', `${[0, 1, 2, 3].map((r) => call('input', r)).join(' ')} (call $ret_i64 ${call('register_len', 3)})`);
    p.method('register_big_id', `${call('input', -2)} (call $ret_reg (i64.const -2))`);
    // context and io
    p.method('ids', `${call('context_id', 1)} ${call('executor_id', 2)} (call $ret_i64 (i64.add ${call('register_len', 1)} ${call('register_len', 2)}))`);
    p.method('context_id', `${call('context_id', 1)} (call $ret_reg (i64.const 1))`);
    p.method('input_reg', `${call('input', 3)} (call $ret_reg (i64.const 3))`);
    p.method('return_ok', `${vr(okTag.at, 0, hello)} ${call('value_return', okTag.at)}`);
    p.method('return_err', `${vr(errTag.at, 1, hello)} ${call('value_return', errTag.at)}`);
    p.method('return_bad_tag', `${vr(badTag.at, 2, hello)} ${call('value_return', badTag.at)}`);
    p.method('return_err_bad_utf8', `${vr(errBad.at, 1, bad)} ${call('value_return', errBad.at)}`);
    p.method('return_oob', call('value_return', OOB));
    p.method('return_twice', `${vr(okTag.at, 0, key)} ${call('value_return', okTag.at)} ${vr(errTag.at, 0, hello)} ${call('value_return', errTag.at)}`);
    p.method('no_return', '');
    // logging and events
    p.method('log', `${call('log_utf8', hello)} ${call('log_utf8', key)}`);
    p.method('log_bad_utf8', call('log_utf8', bad));
    p.method('log_oob', call('log_utf8', oobDesc));
    p.method('log_wrap', call('log_utf8', wrapDesc));
    p.method('log_long', call('log_utf8', hello));
    p.method('log_many', `${call('log_utf8', key)} ${call('log_utf8', key)} ${call('log_utf8', key)}`);
    // js_std_d_print takes a raw pointer and length: the data pointer is the first field of hello's descriptor.
    p.method('print', `(call $ret_i64 (i64.extend_i32_u ${call('js_std_d_print', 0, `(i64.load (i32.const ${hello}))`, 5)}))`);
    p.method('print_oob', `(drop ${call('js_std_d_print', 0, OOB, 4)})`);
    p.method('print_bad_utf8', `(drop ${call('js_std_d_print', 0, `(i64.load (i32.const ${bad}))`, 3)})`);
    p.method('print_long', `(drop ${call('js_std_d_print', 0, `(i64.load (i32.const ${hello}))`, 5)})`);
    p.method('emit', `${copy(event.at, key)} ${copy(event.at + 16, val)} ${call('emit', event.at)}`);
    p.method('emit_handler', `${copy(event.at, key)} ${copy(event.at + 16, val)} ${call('emit_with_handler', event.at, hello)}`);
    p.method('emit_handler_bad_utf8', `${copy(event.at, key)} ${copy(event.at + 16, val)} ${call('emit_with_handler', event.at, bad)}`);
    p.method('emit_bad_kind', `${copy(eventBadKind.at, bad)} ${copy(eventBadKind.at + 16, val)} ${call('emit', eventBadKind.at)}`);
    p.method('emit_oob', call('emit', OOB));
    p.method('emit_many', `${copy(event.at, key)} ${copy(event.at + 16, val)} ${call('emit', event.at)} ${call('emit', event.at)}`);
    p.method('xcall', `${copy(xc.at, ctxBytes)} ${copy(xc.at + 16, hello)} ${copy(xc.at + 32, val)} ${call('xcall', xc.at)}`);
    p.method('xcall_many', `${copy(xc.at, ctxBytes)} ${copy(xc.at + 16, hello)} ${copy(xc.at + 32, val)} ${call('xcall', xc.at)} ${call('xcall', xc.at)}`);
    p.method('xcall_short_ctx', `${copy(xcShortCtx.at, short)} ${copy(xcShortCtx.at + 16, hello)} ${copy(xcShortCtx.at + 32, val)} ${call('xcall', xcShortCtx.at)}`);
    p.method('xcall_bad_fn', `${copy(xc.at, ctxBytes)} ${copy(xc.at + 16, bad)} ${copy(xc.at + 32, val)} ${call('xcall', xc.at)}`);
    p.method('xcall_oob', call('xcall', OOB));
    // storage
    p.method('write_read', `(drop ${call('storage_write', key, val, 1)}) (drop ${call('storage_read', key, 2)}) (call $ret_reg (i64.const 2))`);
    p.method('read_absent', `(call $ret_i64 (i64.extend_i32_u ${call('storage_read', hello, 1)}))`);
    p.method('overwrite', `(drop ${call('storage_write', key, val, 1)}) (drop ${call('storage_write', key, hello, 3)}) (call $ret_reg (i64.const 3))`);
    p.method('remove', `(drop ${call('storage_write', key, val, 1)}) (drop ${call('storage_remove', key, 4)}) (call $ret_reg (i64.const 4))`);
    p.method('remove_absent', `(call $ret_i64 (i64.extend_i32_u ${call('storage_remove', hello, 1)}))`);
    p.method('key_long', `(drop ${call('storage_write', hello, val, 1)})`);
    p.method('value_long', `(drop ${call('storage_write', key, hello, 1)})`);
    p.method('read_key_long', `(drop ${call('storage_read', hello, 1)})`);
    p.method('remove_key_long', `(drop ${call('storage_remove', hello, 1)})`);
    p.method('read_oob', `(drop ${call('storage_read', oobDesc, 1)})`);
    p.method('write_oob_value', `(drop ${call('storage_write', key, oobDesc, 1)})`);
    p.method('remove_oob', `(drop ${call('storage_remove', OOB, 1)})`);
    // Descriptors are only read, never trusted: the key descriptor itself is out of bounds here.
    p.method('write_oob_key_desc', `(drop ${call('storage_write', OOB, val, 1)})`);
    code = await host.deploy(await p.build(), { check: false });
  });
  after(() => t.close());

  const userError = (o: Outcome): string => {
    assert.equal(o.result.code, 'user_error', JSON.stringify(o.result));
    return (o.result as { message: string }).message;
  };

  test('system: panics are user errors with message and location (none when its file is empty); bad UTF-8 and bad pointers are VM errors', async () => {
    assert.equal(userError(await run('panic_plain')), 'Panic: explicit panic at f.ts:7:9');
    assert.equal(userError(await run('panic_msg')), 'Panic: hello at f.ts:7:9');
    // No file (the SDK's panic(message) without a location): no " at :0:0" after the message.
    assert.equal(userError(await run('panic_bare')), 'Panic: explicit panic');
    assert.equal(userError(await run('panic_msg_bare')), 'Panic: hello');
    assertVmError(await run('panic_bad_utf8'), 'BadUTF8', 'panic_utf8');
    assertVmError(await run('panic_bad_file'), 'BadUTF8', 'panic');
    assertVmError(await run('panic_oob'), 'InvalidMemoryAccess', 'panic');
  });

  test('registers: absent, length mismatch, copy, out of bounds, limits, any u64 id', async () => {
    assert.equal(returnedU64(await run('register_len_absent')), 2n ** 64n - 1n);
    assertVmError(await run('read_register_absent'), 'InvalidRegisterId', 'read_register');
    const five = Uint8Array.of(1, 2, 3, 4, 5);
    assert.equal(returnedU64(await run('read_register_mismatch', undefined, five)), 0n);
    assert.deepEqual(returned(await run('read_register_ok', undefined, five)), five);
    assertVmError(await run('read_register_oob', undefined, five), 'InvalidMemoryAccess', 'read_register');
    assert.match(assertVmError(await run('registers_many', { maxRegisters: 3 }), 'InvalidMemoryAccess', 'input'), /max_registers 3/);
    assert.match(assertVmError(await run('input_reg', { maxRegisterSize: 4 }, five), 'InvalidMemoryAccess', 'input'), /max_register_size 4/);
    assert.match(assertVmError(await run('registers_many', { maxRegistersCapacity: 30 }, five), 'InvalidMemoryAccess', 'input'), /max_registers_capacity 30/);
    assert.deepEqual(returned(await run('register_big_id', undefined, five)), five);
  });

  test('context and io: ids, input, value_return variants', async () => {
    assert.equal(returnedU64(await run('ids')), 64n);
    assert.deepEqual(returned(await run('context_id')), ctx);
    assert.equal(text(returned(await run('return_ok'))), 'hello');
    assert.equal(userError(await run('return_err')), 'hello');
    assertVmError(await run('return_bad_tag'), 'DeserializationError', 'value_return');
    assertVmError(await run('return_err_bad_utf8'), 'BadUTF8', 'value_return');
    assertVmError(await run('return_oob'), 'InvalidMemoryAccess', 'value_return');
    assert.equal(text(returned(await run('return_twice'))), 'hello', 'the last value_return wins');
    assert.deepEqual((await run('no_return')).result, { code: 'return', value: null });
  });

  test('logs: text, limits checked before reading, bad UTF-8, out of bounds, overflowing descriptors', async () => {
    assert.deepEqual((await run('log')).logs, ['hello', 'key']);
    assertVmError(await run('log_bad_utf8'), 'BadUTF8', 'log_utf8');
    assertVmError(await run('log_oob'), 'InvalidMemoryAccess', 'log_utf8');
    assertVmError(await run('log_wrap'), 'InvalidMemoryAccess', 'log_utf8');
    assertVmError(await run('log_long', { maxLogSize: 4 }), 'LogLengthOverflow', 'log_utf8');
    const many = await run('log_many', { maxLogs: 2 });
    assertVmError(many, 'LogsOverflow', 'log_utf8');
    assert.deepEqual(many.logs, ['key', 'key'], 'logs before the failure are still reported');
    const printed = await run('print');
    assert.deepEqual([returnedU64(printed), printed.logs], [0n, ['hello']]);
    assertVmError(await run('print_oob'), 'InvalidMemoryAccess', 'js_std_d_print');
    assertVmError(await run('print_bad_utf8'), 'BadUTF8', 'js_std_d_print');
    assertVmError(await run('print_long', { maxLogSize: 4 }), 'LogLengthOverflow', 'js_std_d_print');
  });

  test('events: kind and data limits, count, handler names, bad UTF-8, out of bounds', async () => {
    assert.deepEqual((await run('emit')).events.map((e) => [e.kind, text(e.data), e.handler]), [['key', 'value', null]]);
    assert.deepEqual((await run('emit_handler')).events.map((e) => e.handler), ['hello']);
    assertVmError(await run('emit_handler_bad_utf8'), 'BadUTF8', 'emit_with_handler');
    assertVmError(await run('emit_bad_kind'), 'BadUTF8', 'emit');
    assertVmError(await run('emit_oob'), 'InvalidMemoryAccess', 'emit');
    assertVmError(await run('emit', { maxEventKindSize: 2 }), 'EventKindSizeOverflow', 'emit');
    assertVmError(await run('emit', { maxEventDataSize: 4 }), 'EventDataSizeOverflow', 'emit');
    assertVmError(await run('emit_many', { maxEvents: 1 }), 'EventsOverflow', 'emit');
  });

  test('xcall: queued in the outcome, context id must be 32 bytes, limits, bad UTF-8, out of bounds', async () => {
    const o = await run('xcall');
    assert.deepEqual(o.xcalls.map((x) => [x.contextId, x.function, text(x.params)]), [[new Uint8Array(32).fill(7), 'hello', 'value']]);
    assertVmError(await run('xcall_short_ctx'), 'InvalidMemoryAccess', 'xcall');
    assertVmError(await run('xcall_bad_fn'), 'BadUTF8', 'xcall');
    assertVmError(await run('xcall_oob'), 'InvalidMemoryAccess', 'xcall');
    assertVmError(await run('xcall', { maxXcallFunctionSize: 4 }), 'XCallFunctionSizeOverflow', 'xcall');
    assertVmError(await run('xcall', { maxXcallParamsSize: 4 }), 'XCallParamsSizeOverflow', 'xcall');
    assertVmError(await run('xcall_many', { maxXcalls: 1 }), 'XCallsOverflow', 'xcall');
  });

  test('storage: write/read/overwrite/remove, absent keys, key and value limits, out of bounds', async () => {
    assert.equal(text(returned(await run('write_read'))), 'value');
    assert.equal(returnedU64(await run('read_absent')), 0n);
    assert.equal(text(returned(await run('overwrite'))), 'value', 'the old value is in the register');
    assert.equal(text(returned(await run('remove'))), 'value');
    assert.equal(returnedU64(await run('remove_absent')), 0n);
    assertVmError(await run('key_long', { maxStorageKeySize: 4 }), 'KeyLengthOverflow', 'storage_write');
    assertVmError(await run('read_key_long', { maxStorageKeySize: 4 }), 'KeyLengthOverflow', 'storage_read');
    assertVmError(await run('remove_key_long', { maxStorageKeySize: 4 }), 'KeyLengthOverflow', 'storage_remove');
    assertVmError(await run('value_long', { maxStorageValueSize: 4 }), 'ValueLengthOverflow', 'storage_write');
    assertVmError(await run('read_oob'), 'InvalidMemoryAccess', 'storage_read');
    assertVmError(await run('write_oob_value'), 'InvalidMemoryAccess', 'storage_write');
    assertVmError(await run('remove_oob'), 'InvalidMemoryAccess', 'storage_remove');
    assertVmError(await run('write_oob_key_desc'), 'InvalidMemoryAccess', 'storage_write');
  });
});
