import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostlinkError } from '../../src/errors.js';
import { encodeCalldata, type CalldataValue } from '../../src/protocol/calldata.js';
import { ResultCode } from '../../src/protocol/generated.js';
import { decodeResult, encodeResult, type ExecutionResult } from '../../src/protocol/result.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const ascii = (s: string): string => Buffer.from(s, 'utf8').toString('hex');

// {fingerprint: null, message: <m>}: map of 2 (0x16), "fingerprint" (11 bytes), null, "message" (7 bytes), string.
const errorData = (messageHeader: string, message: string): string =>
  `16 0b${ascii('fingerprint')} 00 07${ascii('message')} ${messageHeader}${ascii(message)}`;

const GOLDEN: Array<[string, ExecutionResult, string]> = [
  ['return null (clean exit)', { code: 'return', value: null }, '00 00'],
  ['return {"x":10}', { code: 'return', value: new Map([['x', 10n]]) }, '00 0e017851'],
  ['user_error', { code: 'user_error', message: 'boom', fingerprint: null }, '01 ' + errorData('24', 'boom')],
  ['vm_error', { code: 'vm_error', message: 'out_of_gas', fingerprint: null }, '02 ' + errorData('54', 'out_of_gas')],
  ['internal_error', { code: 'internal_error', message: '', fingerprint: null }, '03 ' + errorData('04', '')],
];

test('golden results encode and decode exactly', () => {
  assert.deepEqual([ResultCode.Return, ResultCode.UserError, ResultCode.VmError, ResultCode.InternalError], [0, 1, 2, 3]);
  for (const [name, result, expected] of GOLDEN) {
    assert.equal(hex(encodeResult(result)), hex(unhex(expected)), `encode ${name}`);
    assert.deepStrictEqual(decodeResult(unhex(expected)), result, `decode ${name}`);
  }
});

test('a non-null fingerprint round-trips', () => {
  const fingerprint: CalldataValue = new Map<string, CalldataValue>([
    ['frames', [new Map<string, CalldataValue>([['func', 7n], ['module_name', 'main']])]],
    ['module_instances', new Map<string, CalldataValue>([['main', new Map([['memories', [new Uint8Array(32).fill(5)]]])]])],
  ]);
  const r: ExecutionResult = { code: 'vm_error', message: 'wasm_trap UnreachableCodeReached', fingerprint };
  const bytes = encodeResult(r);
  assert.equal(bytes[0], ResultCode.VmError);
  assert.deepStrictEqual(decodeResult(bytes), r);
});

test('GenVM quirk: a raw UTF-8 string after an error code is accepted as the message', () => {
  const raw = new Uint8Array([ResultCode.VmError, ...Buffer.from('Error { context: "oops", source: … }', 'utf8')]);
  assert.deepStrictEqual(decodeResult(raw), { code: 'vm_error', message: 'Error { context: "oops", source: … }', fingerprint: null });
  // Text that happens to be valid calldata but not a map ("Q" is the integer 10) is still text.
  assert.deepStrictEqual(decodeResult(unhex('01 51')), { code: 'user_error', message: 'Q', fingerprint: null });
  assert.deepStrictEqual(decodeResult(unhex('02')), { code: 'vm_error', message: '', fingerprint: null });
});

function rejects(input: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => decodeResult(input),
    (e: unknown) => e instanceof HostlinkError && e.code === 'protocol' && pattern.test(e.message),
    hex(input),
  );
}

test('decode rejects malformed results', () => {
  rejects(unhex(''), /empty/);
  rejects(unhex('04 00'), /unknown result code 4/);
  rejects(unhex('ff'), /unknown result code 255/);
  rejects(unhex('00'), /result data .*truncated input/);
  rejects(unhex('00 0000'), /result data .*trailing bytes at byte 1/);
  rejects(unhex('00 8000'), /non-minimal ULEB128/);
  // Error data that is a map must be exactly {fingerprint, message: string}.
  rejects(encodeWith(ResultCode.UserError, { message: 'x' }), /\{fingerprint, message: string\}/);
  rejects(encodeWith(ResultCode.UserError, { fingerprint: null, message: 5 }), /\{fingerprint, message: string\}/);
  rejects(encodeWith(ResultCode.VmError, { fingerprint: null, message: 'x', extra: 1 }), /\{fingerprint, message: string\}/);
  // Neither calldata nor UTF-8.
  rejects(unhex('02 ff'), /result data/);
});

function encodeWith(code: number, data: Parameters<typeof encodeCalldata>[0]): Uint8Array {
  return new Uint8Array([code, ...encodeCalldata(data)]);
}

test('encode rejects unknown codes and non-string messages', () => {
  const bad = [
    { code: 'oops', value: null },
    { code: 'vm_error', message: 5, fingerprint: null },
    { code: 'return', value: undefined },
  ];
  for (const r of bad) {
    assert.throws(() => encodeResult(r as unknown as ExecutionResult), (e: unknown) => e instanceof HostlinkError && e.code === 'usage', JSON.stringify(r));
  }
});

test('round trip over every code and a variety of values', () => {
  const values: CalldataValue[] = [null, true, -5n, 2n ** 70n, 'text', new Uint8Array([0, 1]), [1n, [2n]], new Map([['k', 'v']])];
  for (const value of values) {
    const r: ExecutionResult = { code: 'return', value };
    assert.deepStrictEqual(decodeResult(encodeResult(r)), r);
  }
  for (const code of ['user_error', 'vm_error', 'internal_error'] as const) {
    for (const message of ['', 'exit_code 3', 'é😀', 'x'.repeat(300)]) {
      const r: ExecutionResult = { code, message, fingerprint: null };
      const bytes = encodeResult(r);
      assert.deepStrictEqual(decodeResult(bytes), r);
      assert.equal(hex(encodeResult(decodeResult(bytes))), hex(bytes));
    }
  }
});
