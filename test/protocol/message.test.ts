import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isHostlinkError } from '../../src/errors.js';
import { buildMessage, datetimeToNanos, DEFAULT_LIMITS, LIMIT_CEILINGS, LIMIT_JSON_NAMES, parseMessage, type VmLimits } from '../../src/protocol/message.js';
import { GAS_SCHEDULE_VERSION } from '../../src/vm/host-functions.generated.js';
import { INSTRUMENTATION_VERSION } from '../../src/vm/instrument/index.js';
import { id32 } from '../helpers.js';

const base = { code_hash: 'ab'.repeat(32), method: 'get', context_id: 'cd'.repeat(32), executor_id: Buffer.alloc(32, 7).toString('base64') };
const parse = (o: object) => parseMessage(JSON.stringify(o));
const invalid = (o: object | string, pattern: RegExp): void => {
  assert.throws(
    () => (typeof o === 'string' ? parseMessage(o) : parse(o)),
    (e: unknown) => isHostlinkError(e, 'invalid_message') && pattern.test((e as Error).message),
  );
};

describe('execution message', () => {
  test('ids as hex or base64, defaults filled in, unknown fields ignored', () => {
    const m = parse({ ...base, unknown_field: 1, gas: 5 });
    assert.equal(Buffer.from(m.codeHash).toString('hex'), 'ab'.repeat(32));
    assert.deepEqual(m.executorId, new Uint8Array(32).fill(7));
    assert.equal(m.input.length, 0);
    assert.equal(m.gasLimit, 1_000_000_000n);
    assert.deepEqual(m.limits, DEFAULT_LIMITS);
    assert.equal(m.datetime, '2024-11-26T06:42:42.424242Z');
    assert.equal(m.isInit, false);
  });

  test('the host writes its gas schedule and instrumentation versions; a message asking for others is refused by name', () => {
    const built = JSON.parse(buildMessage({ codeHash: id32('c'), method: 'get', contextId: id32('x') })) as Record<string, unknown>;
    assert.equal(built.gas_schedule_version, GAS_SCHEDULE_VERSION);
    assert.equal(built.instrumentation_version, INSTRUMENTATION_VERSION);
    // Absent (a message written by hand, or by an older host): run by this VM's rules.
    assert.equal(parse(base).method, 'get');
    assert.equal(parse({ ...base, gas_schedule_version: GAS_SCHEDULE_VERSION, instrumentation_version: INSTRUMENTATION_VERSION }).method, 'get');
    for (const other of [GAS_SCHEDULE_VERSION - 1, GAS_SCHEDULE_VERSION + 1, 0, String(GAS_SCHEDULE_VERSION), 1.5, true]) {
      invalid({ ...base, gas_schedule_version: other }, new RegExp(`'gas_schedule_version' asks for gas schedule version .*, but this VM \\(gas schedule version ${GAS_SCHEDULE_VERSION}\\) is of another Hostlink release`));
    }
    invalid({ ...base, instrumentation_version: INSTRUMENTATION_VERSION + 1 }, /'instrumentation_version' asks for instrumentation version \d+, but this VM .* run the same release on the host and on every VM and worker/);
  });

  test('GenVM fields are accepted and validated', () => {
    const addr = Buffer.alloc(20, 1).toString('base64');
    const m = parse({ ...base, contract_address: addr, sender_address: addr, origin_address: addr, chain_id: '61999', value: null, is_init: true });
    assert.equal(m.chainId, 61999n);
    assert.equal(m.value, 0n);
    assert.equal(m.isInit, true);
    invalid({ ...base, contract_address: Buffer.alloc(19).toString('base64') }, /'contract_address' must be 20 bytes/);
    invalid({ ...base, chain_id: '-1' }, /'chain_id' must be a non-negative integer/);
    invalid({ ...base, is_init: 'yes' }, /'is_init' must be true or false/);
  });

  test('missing and malformed fields name the field', () => {
    invalid('not json', /not JSON/);
    invalid('[]', /expected a JSON object/);
    for (const f of ['code_hash', 'method', 'context_id', 'executor_id']) {
      const o: Record<string, unknown> = { ...base };
      delete o[f];
      invalid(o, new RegExp(`'${f}' is required`));
    }
    invalid({ ...base, context_id: 'abc' }, /'context_id' must be 32 bytes/);
    invalid({ ...base, input: 'not base64!' }, /'input' must be a base64 string/);
    invalid({ ...base, limits: { max_logz: 1 } }, /'limits.max_logz' is not a known limit/);
    invalid({ ...base, limits: { max_stack_size: 1 << 20 } }, /'limits.max_stack_size' must be at most 262144/);
    invalid({ ...base, limits: { max_memory_pages: 65536 } }, /'limits.max_memory_pages' must be at most 8192 \(max_memory_pages_limit/);
    invalid({ ...base, limits: { max_execution_memory: 8 * 1024 ** 3 } }, /'limits.max_execution_memory' must be at most 134217728 \(max_execution_memory_limit/);
    invalid({ ...base, datetime: '2024-02-30T00:00:00Z' }, /'datetime' is not a valid calendar date/);
    invalid({ ...base, floats: 'maybe' }, /'floats' must be/);
  });

  test('every limit past its most (protocol/limits.json) is refused by name, at its most accepted', () => {
    // Only max_stack_size and max_memory_pages had a most: the others were accepted up to 2^53, so a message could
    // make a VM hold more than some nodes' VMs can (its result then depended on the node).
    const keys = Object.keys(DEFAULT_LIMITS) as (keyof VmLimits)[];
    assert.deepEqual(Object.keys(LIMIT_CEILINGS), keys, 'every limit has a most');
    for (const key of keys) {
      const name = LIMIT_JSON_NAMES[key];
      const most = LIMIT_CEILINGS[key];
      assert.ok(DEFAULT_LIMITS[key] <= most, `${name}: its default is within its most`);
      invalid({ ...base, limits: { [name]: most + 1 } }, new RegExp(`'limits\\.${name}' must be at most ${most} \\(${name}_limit: `));
      invalid({ ...base, limits: { [name]: String(most + 1) } }, new RegExp(`'limits\\.${name}' must be at most ${most} `));
      assert.equal(parseMessage(JSON.stringify({ ...base, limits: { [name]: most } })).limits[key], most, name);
    }
    const all = parseMessage(JSON.stringify({ ...base, limits: Object.fromEntries(keys.map((k) => [LIMIT_JSON_NAMES[k], LIMIT_CEILINGS[k]])) }));
    assert.deepEqual(all.limits, { ...LIMIT_CEILINGS });
  });

  test('datetime converts to exact Unix nanoseconds', () => {
    assert.equal(datetimeToNanos('1970-01-01T00:00:00Z'), 0n);
    assert.equal(datetimeToNanos('2024-11-26T06:42:42.424242Z'), 1732603362424242000n);
    assert.equal(datetimeToNanos('2024-11-26T08:42:42.424242+02:00'), 1732603362424242000n);
    assert.equal(datetimeToNanos('2024-11-26T06:42:42.123456789Z') % 1_000_000_000n, 123456789n);
  });

  test('buildMessage round-trips through parseMessage', () => {
    const init = {
      codeHash: id32('code'), method: 'set', input: Uint8Array.of(1, 2, 3), contextId: id32('ctx'), executorId: id32('ex'),
      gasLimit: 12345n, limits: { maxLogs: 3 }, floats: 'reject' as const, datetime: '2026-01-01T00:00:00Z', seed: id32('seed'), chainId: 5n, value: 9n, isInit: true,
    };
    const m = parseMessage(buildMessage(init));
    assert.deepEqual(
      [m.codeHash, m.method, m.input, m.contextId, m.executorId, m.gasLimit, m.limits.maxLogs, m.floats, m.datetime, m.seed, m.chainId, m.value, m.isInit],
      [init.codeHash, 'set', init.input, init.contextId, init.executorId, 12345n, 3, 'reject', init.datetime, init.seed, 5n, 9n, true],
    );
  });

  test("buildMessage takes the node's defaults for what the call leaves out, limit by limit", () => {
    const call = { codeHash: id32('code'), method: 'set', contextId: id32('ctx') };
    const defaults = { gasLimit: 77n, floats: 'reject' as const, limits: { maxLogs: 4, maxEvents: 5 } };
    const filled = parseMessage(buildMessage(call, defaults));
    assert.deepEqual([filled.gasLimit, filled.floats, filled.limits.maxLogs, filled.limits.maxEvents], [77n, 'reject', 4, 5]);
    // The call's own values win; a limit it names as undefined keeps the default instead of erasing it.
    const own = parseMessage(buildMessage({ ...call, gasLimit: 9n, floats: 'canonicalize', limits: { maxLogs: 1, maxEvents: undefined } }, defaults));
    assert.deepEqual([own.gasLimit, own.floats, own.limits.maxLogs, own.limits.maxEvents], [9n, 'canonicalize', 1, 5]);
    // Without defaults or limits the message names none, as before.
    assert.equal(JSON.parse(buildMessage(call)).limits, undefined);
    assert.equal(parseMessage(buildMessage(call)).limits.maxLogs, DEFAULT_LIMITS.maxLogs);
  });
});
