import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostlinkError } from '../../src/errors.js';
import {
  Address,
  MAX_CALLDATA_DEPTH,
  calldataEquals,
  calldataToJson,
  decodeCalldata,
  encodeCalldata,
  encodeCalldataAfter,
  streamCalldata,
  type CalldataInput,
  type CalldataValue,
} from '../../src/protocol/calldata.js';
import { Rng } from '../helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const ascii = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
const addr = (fill: number): Address => new Address(new Uint8Array(20).fill(fill));

// ---------------------------------------------------------------------------------------------------------
// Golden vectors (the format's published examples, plus hand-derived ones checked against an independent Python encoder).

const GOLDEN: Array<[string, CalldataValue, string]> = [
  ['null', null, '00'],
  ['false', false, '08'],
  ['true', true, '10'],
  ['0', 0n, '01'],
  ['10', 10n, '51'],
  ['15', 15n, '79'],
  ['16', 16n, '8101'],
  ['-1', -1n, '02'],
  ['-2', -2n, '0a'],
  ['-16', -16n, '7a'],
  ['-17', -17n, '8201'],
  ['2^46', 2n ** 46n, '8180808080808001'],
  ['2^49', 2n ** 49n, '8180808080808008'],
  ['2^50', 2n ** 50n, '8180808080808010'],
  ['2^53-1', 2n ** 53n - 1n, 'f9ffffffffffff7f'],
  ['2^53', 2n ** 53n, '818080808080808001'],
  ['-2^53', -(2n ** 53n), 'faffffffffffff7f'],
  ['2^64-1', 2n ** 64n - 1n, 'f9ffffffffffffffff0f'],
  ['2^64', 2n ** 64n, '81808080808080808010'],
  ['-2^64', -(2n ** 64n), 'faffffffffffffffff0f'],
  ['2^256-1', 2n ** 256n - 1n, 'f9' + 'ff'.repeat(35) + '7f'],
  ['-2^255', -(2n ** 255n), 'fa' + 'ff'.repeat(35) + '3f'],
  ['[]', [], '05'],
  ['{}', new Map(), '06'],
  ['""', '', '04'],
  ['"é"', 'é', '14c3a9'],
  ['"\\uFEFF" (BOM kept)', '\uFEFF', '1cefbbbf'],
  ['b""', new Uint8Array(0), '03'],
  ['b"\\x01\\x02"', new Uint8Array([1, 2]), '130102'],
  ['address', addr(0xab), '18' + 'ab'.repeat(20)],
  ['{"x":10}', new Map([['x', 10n]]), '0e017851'],
  [
    '{"method":"foo","args":[]}',
    new Map<string, CalldataValue>([
      ['args', []],
      ['method', 'foo'],
    ]),
    '16 04 61726773 05 06 6d6574686f64 1c 666f6f',
  ],
  // Key order is by UTF-8 bytes: U+E000 (ee 80 80) before U+10000 (f0 90 80 80), unlike UTF-16 order.
  [
    'keys in UTF-8 order',
    new Map([
      ['\uE000', 2n],
      ['\u{10000}', 1n],
    ]),
    '16 03 ee8080 11 04 f0908080 09',
  ],
  ['[null,[true],-1]', [null, [true], -1n], '1d 00 0d 10 02'],
];

test('golden vectors encode and decode exactly', () => {
  for (const [name, value, expected] of GOLDEN) {
    const bytes = unhex(expected);
    assert.equal(hex(encodeCalldata(value)), hex(bytes), `encode ${name}`);
    assert.deepStrictEqual(decodeCalldata(bytes), value, `decode ${name}`);
  }
});

test('encode accepts safe-integer numbers and plain objects, in any key order', () => {
  assert.equal(hex(encodeCalldata(10)), '51');
  assert.equal(hex(encodeCalldata(-17)), '8201');
  assert.equal(hex(encodeCalldata(Number.MAX_SAFE_INTEGER)), 'f9ffffffffffff7f');
  assert.equal(hex(encodeCalldata(-Number.MAX_SAFE_INTEGER)), 'f2ffffffffffff7f');
  assert.equal(hex(encodeCalldata(2 ** 50)), '8180808080808010');
  assert.equal(hex(encodeCalldata({ method: 'foo', args: [] })), '16046172677305066d6574686f641c666f6f');
  assert.equal(hex(encodeCalldata({ x: 10 })), '0e017851');
  const reversed = new Map<string, CalldataInput>([
    ['method', 'foo'],
    ['args', []],
  ]);
  assert.equal(hex(encodeCalldata(reversed)), '16046172677305066d6574686f641c666f6f');
  // Shared prefixes: "a" < "ab" < "b"; integer-like object keys are sorted as strings ("10" < "9").
  assert.equal(hex(encodeCalldata({ b: 0, ab: 0, a: 0 })), `1e 01${ascii('a')}01 02${ascii('ab')}01 01${ascii('b')}01`.replace(/ /g, ''));
  assert.equal(hex(encodeCalldata({ 9: 0, 10: 0 })), `16 02${ascii('10')}01 01${ascii('9')}01`.replace(/ /g, ''));
  const bare = Object.create(null) as Record<string, CalldataInput>;
  bare['__proto__'] = 1;
  assert.equal(hex(encodeCalldata(bare)), `0e 09${ascii('__proto__')} 09`.replace(/ /g, ''));
});

test('encode rejects what calldata cannot represent with HostlinkError(usage)', () => {
  const cyclic: CalldataInput[] = [];
  cyclic.push(cyclic);
  const bad: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['fraction', 1.5],
    ['NaN', NaN],
    ['unsafe number', 2 ** 53],
    ['function', () => 1],
    ['symbol', Symbol('x')],
    ['Date', new Date(0)],
    ['Set', new Set([1])],
    ['Uint16Array', new Uint16Array(2)],
    ['undefined in array', [1, undefined]],
    ['undefined in object', { a: undefined }],
    ['non-string map key', new Map([[1, 2]])],
    ['lone high surrogate', 'a\uD800'],
    ['lone low surrogate', '\uDC00b'],
    ['lone surrogate in a long string', 'x'.repeat(100) + '\uD800'],
    ['lone surrogate in a key', { ['\uD800']: 1 }],
    ['cycle', cyclic],
  ];
  for (const [name, value] of bad) {
    assert.throws(
      () => encodeCalldata(value as CalldataInput),
      (e: unknown) => e instanceof HostlinkError && e.code === 'usage',
      name,
    );
  }
  assert.throws(() => new Address(new Uint8Array(19)), (e: unknown) => e instanceof HostlinkError && e.code === 'usage');
  // The scratch buffer must not be left in a bad state by a failed encode.
  assert.equal(hex(encodeCalldata([1, 2])), '150911');
});

test('nesting is limited to MAX_CALLDATA_DEPTH containers on both sides', () => {
  const nested = (n: number): CalldataValue => {
    let v: CalldataValue = [];
    for (let i = 1; i < n; i++) v = [v];
    return v;
  };
  const ok = nested(MAX_CALLDATA_DEPTH);
  const bytes = encodeCalldata(ok);
  assert.equal(hex(bytes), '0d'.repeat(MAX_CALLDATA_DEPTH - 1) + '05');
  assert.deepStrictEqual(decodeCalldata(bytes), ok);
  assert.throws(() => encodeCalldata(nested(MAX_CALLDATA_DEPTH + 1)), (e: unknown) => e instanceof HostlinkError && e.code === 'usage');
  rejects('0d'.repeat(MAX_CALLDATA_DEPTH) + '05', 'nesting too deep');
  rejects('0e0161'.repeat(MAX_CALLDATA_DEPTH) + '06', 'nesting too deep');
  // Far deeper than the JS stack allows: still a protocol error, never a RangeError.
  rejects('0d'.repeat(200_000) + '05', 'nesting too deep');
});

// ---------------------------------------------------------------------------------------------------------
// Every rejection rule, with a crafted input.

function rejects(input: string, rule: string, offset?: number): void {
  assert.throws(
    () => decodeCalldata(unhex(input)),
    (e: unknown) => {
      assert.ok(e instanceof HostlinkError, `${input}: expected HostlinkError, got ${String(e)}`);
      assert.equal(e.code, 'protocol');
      assert.ok(e.message.includes(rule), `${input}: '${e.message}' does not name '${rule}'`);
      if (offset !== undefined) assert.ok(e.message.includes(`at byte ${offset}:`), `${input}: '${e.message}' lacks offset ${offset}`);
      return true;
    },
  );
}

test('decode rejects non-minimal ULEB128', () => {
  rejects('8000', 'non-minimal ULEB128', 0); // null padded to two bytes
  rejects('d100', 'non-minimal ULEB128', 0); // 10 padded
  rejects('818000', 'non-minimal ULEB128', 0); // 16 padded
  rejects('81808080808080808000', 'non-minimal ULEB128', 0); // long (bigint) path
  rejects('0e 8100 78 51', 'non-minimal ULEB128', 1); // map key length padded
  rejects('15 00 8000', 'non-minimal ULEB128', 2); // inside an array
});

test('decode rejects lengths over 32 bits', () => {
  rejects('838080808001', 'length over 32 bits', 0); // bytes of 2^32
  rejects('848080808001', 'length over 32 bits', 0); // string
  rejects('858080808001', 'length over 32 bits', 0); // array
  rejects('868080808001', 'length over 32 bits', 0); // map
  rejects('0e 8080808010', 'length over 32 bits', 1); // map key of 2^32
  rejects('83808080808080808001', 'length over 32 bits', 0); // header past 2^49 (bigint path)
  // 2^32-1 is a legal length: this input is merely short.
  rejects('fbffffff7f', 'truncated input', 0);
});

test('decode limits: values counted as they are read, integers bounded, long lengths refused without a bigint', () => {
  const value = [1n, new Map<string, CalldataValue>([['a', null], ['b', [true]]])]; // 7 values: 2 arrays, map, 2 keys, ...
  const bytes = encodeCalldata(value);
  const limits = (maxValues: number, maxIntegerBytes = 10) => ({ maxValues, maxIntegerBytes });
  assert.deepEqual(decodeCalldata(bytes, limits(8)), value);
  assert.throws(() => decodeCalldata(bytes, limits(7)), /^HostlinkError: calldata: too many values at byte \d+: more than 7 values$/);
  const big = encodeCalldata(1n << 70n); // 11 bytes of ULEB128
  assert.equal(decodeCalldata(big, limits(1, 11)), 1n << 70n);
  assert.throws(() => decodeCalldata(big, limits(1, 10)), /^HostlinkError: calldata: integer too large at byte 0: 11-byte ULEB128; at most 10 here$/);
  // A header of 100,000 bytes for a string, or for a map key's length: refused by its first bytes' meaning.
  const longHeader = (first: number): Uint8Array => Uint8Array.from([first, ...new Array<number>(99_998).fill(0x80), 0x01]);
  assert.throws(() => decodeCalldata(longHeader(0x84)), /^HostlinkError: calldata: length over 32 bits at byte 0: a 100000-byte header for a length exceeds 2\^32-1$/);
  const mapWithLongKey = Uint8Array.from([0x0e, ...longHeader(0x81)]); // a map of one entry whose key length is huge
  assert.throws(() => decodeCalldata(mapWithLongKey), /^HostlinkError: calldata: length over 32 bits at byte 1: a 100000-byte header for a length exceeds 2\^32-1$/);
});

test('decode rejects unknown atoms and the reserved type', () => {
  rejects('20', 'unknown atom', 0); // atom 4
  rejects('f801', 'unknown atom', 0); // atom 31
  rejects('8080808080808001', 'unknown atom', 0); // atom 2^46 (bigint path)
  rejects('07', 'reserved type 7', 0);
  rejects('0f', 'reserved type 7', 0);
  rejects('ff01', 'reserved type 7', 0);
});

test('decode rejects invalid UTF-8 in strings and keys', () => {
  rejects('14 c328', 'invalid UTF-8', 1); // bad continuation
  rejects('14 c080', 'invalid UTF-8'); // overlong NUL
  rejects('1c eda080', 'invalid UTF-8'); // UTF-16 surrogate
  rejects('24 f4908080', 'invalid UTF-8'); // above U+10FFFF
  rejects('0c ff', 'invalid UTF-8');
  rejects('0e 01 ff 00', 'invalid UTF-8', 2); // key
  rejects('8405' + '61'.repeat(79) + 'ff', 'invalid UTF-8', 2); // 80-byte string: the TextDecoder path
});

test('decode rejects unsorted and duplicate map keys', () => {
  rejects('16 0162 00 0161 00', 'map keys not strictly ascending', 4); // "b" then "a"
  rejects('16 0161 00 0161 00', 'map keys not strictly ascending', 4); // duplicate
  rejects('16 026162 00 0161 00', 'map keys not strictly ascending', 5); // "ab" then "a"
  rejects('16 04f0908080 09 03ee8080 11', 'map keys not strictly ascending'); // UTF-16 order, not UTF-8
  rejects('16 00 00 00 00', 'duplicate key'); // two empty keys
});

test('decode rejects trailing bytes and truncated input', () => {
  rejects('0000', 'trailing bytes', 1);
  rejects('51ff', 'trailing bytes', 1);
  rejects('0500', 'trailing bytes', 1);
  rejects('', 'truncated input', 0);
  rejects('81', 'truncated input', 0);
  rejects('8180808080808080', 'truncated input', 0);
  rejects('1301', 'truncated input', 0);
  rejects('18' + 'ab'.repeat(19), 'truncated input', 0);
  rejects('1500', 'truncated input', 0);
  rejects('0e0178', 'truncated input');
  rejects('0e02', 'truncated input', 0); // one entry needs at least two bytes
  rejects('0e 02 61', 'truncated input', 1); // key of 2 bytes, 1 left
  rejects('85808080 08', 'truncated input', 0); // array of 2^24 items in 0 bytes: refused before allocating
});

test('decode copies bytes out of its input and returns plain Uint8Arrays', () => {
  const input = Buffer.from('15 130102 18'.replace(/ /g, '') + '11'.repeat(20), 'hex');
  const v = decodeCalldata(input) as CalldataValue[];
  input.fill(0);
  assert.deepStrictEqual(v, [new Uint8Array([1, 2]), addr(0x11)]);
  assert.equal(Object.getPrototypeOf(v[0]), Uint8Array.prototype);
  const shared = new Uint8Array(new SharedArrayBuffer(3));
  shared.set([0x14, 0xc3, 0xa9]);
  assert.equal(decodeCalldata(shared), 'é');
});

test('streamed and prefixed encodings are the encoding itself, large byte strings included', () => {
  const rng = new Rng(7);
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => rng.u32() & 0xff);
  const big = bytes(200_000);
  const values: CalldataInput[] = [
    null,
    'text',
    bytes(65_535),
    bytes(65_536),
    big,
    [big, 'between', bytes(10), big, new Map<string, CalldataInput>([['z', big], ['a', 1n], ['m', [bytes(70_000), -5]]])],
    new Map<string, CalldataInput>([['result', big], ['writes', [[bytes(32), bytes(100_000)]]], ['version', 1n]]),
  ];
  for (const v of values) {
    const whole = encodeCalldata(v);
    const pieces: Uint8Array[] = [];
    // Each piece is copied as it arrives: a piece is valid only during the call.
    streamCalldata(v, (chunk) => pieces.push(Uint8Array.from(chunk)));
    assert.deepEqual(Buffer.concat(pieces), Buffer.from(whole));
    assert.deepEqual(encodeCalldataAfter(9, v), Uint8Array.from([9, ...whole]));
  }
  // A large byte string reaches the sink as itself, not copied through the buffer.
  const seen: Uint8Array[] = [];
  streamCalldata([big], (chunk) => seen.push(chunk));
  assert.ok(seen.includes(big));
});

test('calldataToJson renders for humans', () => {
  const v = decodeCalldata(
    encodeCalldata({ n: 5, big: 2n ** 64n, neg: -3, b: new Uint8Array([0xde, 0xad]), a: addr(1), l: [null, true, 's'] }),
  );
  assert.equal(
    JSON.stringify(calldataToJson(v)),
    JSON.stringify({
      a: { $address: '0x' + '01'.repeat(20) },
      b: { $bytes: 'dead' },
      big: '18446744073709551616',
      l: [null, true, 's'],
      n: 5,
      neg: -3,
    }),
  );
  const proto = calldataToJson(new Map([['__proto__', 1n]])) as Record<string, unknown>;
  assert.equal(Object.keys(proto).join(), '__proto__');
});

test('calldataEquals compares canonical meaning', () => {
  assert.ok(calldataEquals(10, 10n));
  assert.ok(calldataEquals({ a: 1, b: [2] }, new Map<string, CalldataInput>([['b', [2n]], ['a', 1n]])));
  assert.ok(calldataEquals(new Uint8Array([1]), new Uint8Array([1])));
  assert.ok(calldataEquals(addr(3), addr(3)));
  assert.ok(!calldataEquals(addr(3), addr(4)));
  assert.ok(!calldataEquals(new Uint8Array(20).fill(3), addr(3)));
  assert.ok(!calldataEquals({ a: 1 }, { a: 1, b: 2 }));
  assert.ok(!calldataEquals({ a: 1 }, { b: 1 }));
  assert.ok(!calldataEquals([], {}));
  assert.ok(!calldataEquals(null, false));
  assert.ok(!calldataEquals('1', 1n));
});

test('Address parses and prints hex', () => {
  const a = Address.fromHex('0x' + 'Ab'.repeat(20));
  assert.equal(a.toHex(), '0x' + 'ab'.repeat(20));
  assert.ok(a.equals(Address.fromHex('ab'.repeat(20))));
  assert.throws(() => Address.fromHex('0x1234'), (e: unknown) => e instanceof HostlinkError && e.code === 'usage');
  const src = new Uint8Array(20);
  const b = new Address(src);
  src[0] = 9;
  assert.equal(b.bytes[0], 0, 'the constructor copies');
});

// ---------------------------------------------------------------------------------------------------------
// Property tests with the seeded PRNG of test/helpers.ts: deterministic, so a failure reproduces.

const CHARS = ['a', 'b', 'z', '0', ' ', '\0', '\x7f', 'é', 'ß', '中', '\uE000', '\uFEFF', '\uFFFD', '\uFFFF', '😀', '\u{10000}', '\u{10FFFF}'];
const KEYS = ['', 'a', 'ab', 'b', 'args', 'method', '\uE000', '\u{10000}', 'é', '__proto__', '10', '9'];
const EDGES = [7, 14, 21, 28, 31, 32, 46, 49, 50, 53, 63, 64, 128];

function randomString(rng: Rng): string {
  const n = rng.int(8) === 0 ? 60 + rng.int(80) : rng.int(10);
  let s = '';
  for (let i = 0; i < n; i++) s += rng.int(3) === 0 ? rng.pick(CHARS) : String.fromCharCode(97 + rng.int(26));
  return s;
}

function randomInt(rng: Rng): bigint {
  switch (rng.int(3)) {
    case 0:
      return BigInt(rng.int(600) - 300);
    case 1: {
      const e = 2n ** BigInt(rng.pick(EDGES)) + BigInt(rng.int(3) - 1);
      return rng.int(2) === 0 ? e : -e;
    }
    default: {
      let v = 0n;
      const words = 1 + rng.int(12);
      for (let i = 0; i < words; i++) v = (v << 32n) | BigInt(rng.u32());
      return rng.int(2) === 0 ? v : -v;
    }
  }
}

function randomBytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

function randomValue(rng: Rng, depth: number): CalldataValue {
  const k = rng.int(depth > 0 ? 10 : 8);
  switch (k) {
    case 0:
      return null;
    case 1:
      return rng.int(2) === 0;
    case 2:
    case 3:
      return randomInt(rng);
    case 4:
      return randomString(rng);
    case 5:
      return randomBytes(rng, rng.int(6) === 0 ? 100 + rng.int(200) : rng.int(24));
    case 6:
      return new Address(randomBytes(rng, 20));
    case 7:
      return rng.int(2) === 0 ? [] : new Map();
    case 8: {
      const n = rng.int(5);
      const out: CalldataValue[] = [];
      for (let i = 0; i < n; i++) out.push(randomValue(rng, depth - 1));
      return out;
    }
    default: {
      const n = rng.int(6);
      const entries: Array<[string, CalldataValue]> = [];
      for (let i = 0; i < n; i++) entries.push([rng.int(2) === 0 ? rng.pick(KEYS) : randomString(rng), randomValue(rng, depth - 1)]);
      // Decoded maps hold their keys in UTF-8 byte order; build the expected value the same way.
      entries.sort((x, y) => Buffer.compare(Buffer.from(x[0]), Buffer.from(y[0])));
      return new Map(entries);
    }
  }
}

/** The same value in the encoder's convenience forms: numbers for safe ints, objects in shuffled order. */
function asInput(v: CalldataValue, rng: Rng): CalldataInput {
  if (typeof v === 'bigint') return rng.int(2) === 0 && v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n ? Number(v) : v;
  if (Array.isArray(v)) return v.map((x) => asInput(x, rng));
  if (v instanceof Map) {
    const entries = [...v].map(([k, x]): [string, CalldataInput] => [k, asInput(x, rng)]);
    for (let i = entries.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [entries[i], entries[j]] = [entries[j]!, entries[i]!];
    }
    if (rng.int(2) === 0) return new Map(entries);
    const obj = Object.create(null) as Record<string, CalldataInput>;
    for (const [k, x] of entries) obj[k] = x;
    return obj;
  }
  return v;
}

/** A deliberately naive second encoder (bigint arithmetic, byte arrays): the oracle for the real one. */
function referenceEncode(v: CalldataValue): number[] {
  const uleb = (x: bigint): number[] => {
    const out: number[] = [];
    for (;;) {
      const b = Number(x & 0x7fn);
      x >>= 7n;
      if (x === 0n) return [...out, b];
      out.push(b | 0x80);
    }
  };
  const head = (payload: number | bigint, type: number): number[] => uleb(BigInt(payload) * 8n + BigInt(type));
  if (v === null) return [0];
  if (v === false) return [8];
  if (v === true) return [16];
  if (typeof v === 'bigint') return v >= 0n ? head(v, 1) : head(-v - 1n, 2);
  if (typeof v === 'string') {
    const b = [...Buffer.from(v, 'utf8')];
    return [...head(b.length, 4), ...b];
  }
  if (v instanceof Uint8Array) return [...head(v.length, 3), ...v];
  if (v instanceof Address) return [24, ...v.bytes];
  if (Array.isArray(v)) return [...head(v.length, 5), ...v.flatMap(referenceEncode)];
  const keys = [...v.keys()].map((k) => Buffer.from(k, 'utf8')).sort(Buffer.compare);
  return [...head(keys.length, 6), ...keys.flatMap((k) => [...uleb(BigInt(k.length)), ...k, ...referenceEncode(v.get(k.toString('utf8'))!)])];
}

test('property: random values round-trip and match the reference encoder', () => {
  const rng = new Rng(0x9e3779b9);
  for (let i = 0; i < 3000; i++) {
    const v = randomValue(rng, 4);
    const bytes = encodeCalldata(v);
    assert.equal(hex(bytes), hex(new Uint8Array(referenceEncode(v))), `value #${i}`);
    const back = decodeCalldata(bytes);
    assert.deepStrictEqual(back, v, `value #${i}`);
    assert.ok(calldataEquals(back, v));
    assert.equal(hex(encodeCalldata(back)), hex(bytes), `value #${i} re-encode`);
    const input = asInput(v, rng);
    assert.equal(hex(encodeCalldata(input)), hex(bytes), `value #${i} as convenience input`);
    assert.ok(calldataEquals(input, v));
  }
});

test('property: every accepted input is canonical (random and mutated bytes)', () => {
  const rng = new Rng(0x2545f491);
  let accepted = 0;
  let refused = 0;
  const check = (input: Uint8Array): void => {
    let v: CalldataValue;
    try {
      v = decodeCalldata(input);
    } catch (e) {
      assert.ok(e instanceof HostlinkError && e.code === 'protocol', `${hex(input)}: ${String(e)}`);
      refused++;
      return;
    }
    assert.equal(hex(encodeCalldata(v)), hex(input), `accepted non-canonical input ${hex(input)}`);
    accepted++;
  };
  // Short random strings over an alphabet rich in headers, continuation bytes and zeroes.
  const alphabet = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0c, 0x0d, 0x0e, 0x10, 0x11, 0x14, 0x16, 0x18, 0x61, 0x62, 0x80, 0x81, 0xc3, 0xa9, 0xff];
  for (let i = 0; i < 20_000; i++) {
    const n = rng.int(12);
    const b = new Uint8Array(n);
    for (let j = 0; j < n; j++) b[j] = rng.int(4) === 0 ? rng.int(256) : rng.pick(alphabet);
    check(b);
  }
  // Mutations of valid encodings: flip, insert, delete, truncate, swap.
  for (let i = 0; i < 6000; i++) {
    const base = [...encodeCalldata(randomValue(rng, 3))];
    const at = rng.int(base.length);
    switch (rng.int(5)) {
      case 0:
        base[at] = rng.int(256);
        break;
      case 1:
        base.splice(at, 0, rng.int(256));
        break;
      case 2:
        base.splice(at, 1);
        break;
      case 3:
        base.length = at;
        break;
      default: {
        const other = rng.int(base.length);
        [base[at], base[other]] = [base[other]!, base[at]!];
      }
    }
    check(new Uint8Array(base));
  }
  // Both outcomes must actually occur, or the property says nothing.
  assert.ok(accepted > 1000, `only ${accepted} accepted`);
  assert.ok(refused > 1000, `only ${refused} refused`);
});
