/**
 * Answers the guest cannot pay for, and answers larger than one frame, through real VM processes and LMDB.
 *
 * - The host used to build and send an answer whatever it cost: one storage_read of a 10 MiB value with the gas
 *   for the request alone made the host read, copy and write 10 MiB (about 28 ms of its CPU for 0.1 ms of gas),
 *   and the VM then ran out of gas charging for it. Now the host answers `unaffordable` with the answer's
 *   length, the VM charges it as if read: the same out_of_gas, nothing copied or sent.
 * - A CRDT map whose values together pass the frame limit made every iteration end `internal_error` (the host
 *   answered limit_exceeded to the prefetch), a node failure the contract caused on every retry. Now the host
 *   answers the longest prefix that fits and the VM asks for the rest; the call ends by the contract's limits.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CallFinished } from '../../src/host/events.js';
import { MAX_FRAME_BYTES } from '../../src/protocol/generated.js';
import { MAX_EXECUTION_MEMORY_LIMIT, MAX_REGISTER_SIZE_LIMIT } from '../../src/protocol/limits.generated.js';
import { id32 } from '../helpers.js';
import { wat } from '../instrument/helpers.js';
import { openHost, type TestHost } from '../node/helpers.js';
import { Session } from '../../src/host/session.js';
import type { SessionBackend } from '../../src/host/session-types.js';
import { Job } from '../../src/host/job.js';
import { decodeResponse, encodeRequest, type Response } from '../../src/protocol/messages.js';
import { MAX_EFFECT_BYTES_LIMIT, MAX_STORAGE_VALUE_SIZE_LIMIT } from '../../src/protocol/limits.generated.js';
import { message } from '../helpers.js';
import { Probe, call } from '../node/probe.js';
import { BLOB_FRAME_BYTES, MAX_CONTEXT_MEMBERS_LISTED } from '../../src/protocol/node-limits.js';
import { ROUND_TRIP_GAS } from '../../src/vm/host-functions.generated.js';

const RICH = 10n ** 13n;

describe('an answer the call cannot pay for is not sent', () => {
  const VALUE = 10 * 1024 * 1024;
  let t: TestHost;
  let code: Uint8Array;
  let hostCalls: CallFinished['hostCalls'] = {};
  const ctx = id32('unaffordable');
  before(async () => {
    const p = new Probe(64 * 1024);
    const region = p.out(VALUE);
    const big = p.buf('big');
    const small = p.buf('small');
    p.method('write', `(drop ${call('storage_write', big, p.desc(region.at, VALUE), 0)}) (drop ${call('storage_write', small, p.buf('x'), 0)}) (call $ret_i64 (i64.const 0))`);
    p.method('read_big', `(drop ${call('storage_read', big, 1)}) (call $ret_i64 (call $register_len (i64.const 1)))`);
    p.method('read_small', `(drop ${call('storage_read', small, 1)}) (call $ret_i64 (call $register_len (i64.const 1)))`);
    t = await openHost({ poolSize: 1 });
    t.host.events.on('call.finished', (e: CallFinished) => (hostCalls = e.hostCalls));
    code = await t.host.deploy(await p.build());
    assert.equal((await t.host.call({ codeHash: code, method: 'write', contextId: ctx, gasLimit: RICH })).result.code, 'return');
  });
  after(() => t.close());

  test('storage_read of a value the gas cannot pay to read: out_of_gas with the whole limit, and the value never leaves the host', async () => {
    // The gas that pays for reading the small value pays for the big one's request, not its 10 MiB answer.
    const small = await t.host.call({ codeHash: code, method: 'read_small', contextId: ctx, gasLimit: RICH });
    const gasLimit = small.gasUsed + 1000n;
    const o = await t.host.call({ codeHash: code, method: 'read_big', contextId: ctx, gasLimit });
    assert.equal(o.result.code, 'vm_error');
    assert.match(o.result.code === 'vm_error' ? o.result.message : '', /^out_of_gas/);
    assert.equal(o.gasUsed, gasLimit);
    assert.equal(o.applied, false);
    // What the host sent: the status and the length, not the value (10,485,765 bytes before).
    assert.ok(hostCalls['storage_read']!.responseBytes < 16, JSON.stringify(hostCalls));
    // With the gas for it, the same read returns the value.
    const rich = await t.host.call({ codeHash: code, method: 'read_big', contextId: ctx, gasLimit: RICH });
    assert.equal(rich.result.code, 'return', JSON.stringify(rich.result));
    assert.equal(Buffer.from((rich.result as { value: Uint8Array }).value).readBigUInt64LE(0), BigInt(VALUE));
    assert.ok(hostCalls['storage_read']!.responseBytes > VALUE);
  });
});

describe('a CRDT map whose values pass one frame', () => {
  // `put` inserts one value of the input's size under the input's key; `iter` reads the whole map into register 4
  // (js_crdt_map_iter fetches every value with storage_read_many) and returns its length.
  const module = wat(`(module
    (import "env" "input" (func $input (param i64)))
    (import "env" "register_len" (func $register_len (param i64) (result i64)))
    (import "env" "read_register" (func $read_register (param i64 i64) (result i32)))
    (import "env" "storage_write" (func $sw (param i64 i64 i64) (result i32)))
    (import "env" "storage_read" (func $sr (param i64 i64) (result i32)))
    (import "env" "value_return" (func $vr (param i64)))
    (import "env" "js_crdt_map_new" (func $mnew (param i64) (result i32)))
    (import "env" "js_crdt_map_insert" (func $mins (param i64 i64 i64 i64) (result i32)))
    (import "env" "js_crdt_map_iter" (func $miter (param i64 i64) (result i32)))
    (memory (export "memory") 17)
    (data (i32.const 0x900) "mapid")
    (func $desc (param $at i32) (param $ptr i32) (param $len i32)
      (i64.store (local.get $at) (i64.extend_i32_u (local.get $ptr)))
      (i64.store offset=8 (local.get $at) (i64.extend_i32_u (local.get $len))))
    (func $reg2mem (param $r i64) (param $at i32) (result i32) (local $len i32)
      (local.set $len (i32.wrap_i64 (call $register_len (local.get $r))))
      (call $desc (i32.const 0x200) (local.get $at) (local.get $len))
      (drop (call $read_register (local.get $r) (i64.const 0x200)))
      (local.get $len))
    (func $ret_u64 (param $v i64)
      (i64.store (i32.const 0x300) (local.get $v))
      (i64.store (i32.const 0x400) (i64.const 0))
      (call $desc (i32.const 0x408) (i32.const 0x300) (i32.const 8))
      (call $vr (i64.const 0x400)))
    (func $loadid
      (call $desc (i32.const 0x500) (i32.const 0x900) (i32.const 5))
      (drop (call $sr (i64.const 0x500) (i64.const 2)))
      (call $desc (i32.const 0x600) (i32.const 0x1000) (call $reg2mem (i64.const 2) (i32.const 0x1000))))
    (func (export "mk")
      (drop (call $mnew (i64.const 1)))
      (call $desc (i32.const 0x500) (i32.const 0x900) (i32.const 5))
      (call $desc (i32.const 0x510) (i32.const 0x1000) (call $reg2mem (i64.const 1) (i32.const 0x1000)))
      (drop (call $sw (i64.const 0x500) (i64.const 0x510) (i64.const 9))))
    (func (export "put") (local $size i32) (local $need i32)
      (call $input (i64.const 0))
      (drop (call $reg2mem (i64.const 0) (i32.const 0x8000)))
      (local.set $size (i32.load (i32.const 0x8004)))
      (local.set $need (i32.sub (i32.shr_u (i32.add (i32.add (local.get $size) (i32.const 0x110000)) (i32.const 0xffff)) (i32.const 16)) (memory.size)))
      (if (i32.gt_s (local.get $need) (i32.const 0)) (then (if (i32.lt_s (memory.grow (local.get $need)) (i32.const 0)) (then unreachable))))
      (memory.fill (i32.const 0x110000) (i32.const 0x61) (local.get $size))
      (call $loadid)
      (call $desc (i32.const 0x700) (i32.const 0x8000) (i32.const 4))
      (call $desc (i32.const 0x710) (i32.const 0x110000) (local.get $size))
      (call $ret_u64 (i64.extend_i32_s (call $mins (i64.const 0x600) (i64.const 0x700) (i64.const 0x710) (i64.const 3)))))
    (func (export "iter")
      (call $loadid)
      (drop (call $miter (i64.const 0x600) (i64.const 4)))
      (call $ret_u64 (call $register_len (i64.const 4)))))`);
  const VALUE = 9 << 20;
  const COUNT = Math.ceil(MAX_FRAME_BYTES / VALUE) + 1;
  const ctx = id32('crdt-over-a-frame');
  let t: TestHost;
  let code: Uint8Array;
  before(async () => {
    t = await openHost({ poolSize: 1, deadlineMs: 120_000 });
    code = await t.host.deploy(await module);
    assert.equal((await t.host.call({ codeHash: code, method: 'mk', contextId: ctx })).result.code, 'return');
    for (let i = 0; i < COUNT; i++) {
      const input = Buffer.alloc(8);
      input.writeUInt32LE(i, 0);
      input.writeUInt32LE(VALUE, 4);
      const o = await t.host.call({ codeHash: code, method: 'put', contextId: ctx, input: Uint8Array.from(input), gasLimit: RICH });
      assert.equal(o.result.code, 'return', JSON.stringify(o.result));
    }
  });
  after(() => t.close());

  test('with the gas for it every value is read, in several answers, and the iteration stops at the memory limit: the contract\'s result', async () => {
    // Every value held in the storage overlay and again in the register passes even the largest
    // max_execution_memory a message may ask for: a deterministic vm_error, where it was a node failure.
    let reads = 0;
    const count = (e: CallFinished): void => void (reads = e.hostCalls['storage_read_many']?.count ?? 0);
    t.host.events.on('call.finished', count);
    try {
      const limits = { maxExecutionMemory: MAX_EXECUTION_MEMORY_LIMIT, maxRegisterSize: MAX_REGISTER_SIZE_LIMIT };
      const o = await t.host.call({ codeHash: code, method: 'iter', contextId: ctx, gasLimit: RICH, limits });
      assert.equal(o.result.code, 'vm_error', JSON.stringify(o.result));
      const m = /^MemoryLimitExceeded \(js_crdt_map_iter\): register 4 of (\d+) bytes/.exec((o.result as { message: string }).message);
      assert.ok(m, (o.result as { message: string }).message);
      assert.ok(Number(m[1]) > COUNT * VALUE, 'the register holds every value');
      assert.ok(reads >= 2, `values of ${COUNT * VALUE} bytes came in ${reads} answer(s)`);
    } finally {
      t.host.events.off('call.finished', count);
    }
  });

  test('with the default gas it runs out of gas: the contract\'s result, not a node failure', async () => {
    const o = await t.host.call({ codeHash: code, method: 'iter', contextId: ctx });
    assert.equal(o.result.code, 'vm_error', JSON.stringify(o.result));
    assert.match((o.result as { message: string }).message, /^out_of_gas/);
  });
});

describe('the host reads no value it will not send', () => {
  // On the host's session over a real Host's LMDB store, counting the bytes of values read out of it: a private
  // value the gas cannot pay for, and a value after which a storage_read_many answer would pass the frame.
  const SMALL = 9 << 20;
  const LARGE = MAX_STORAGE_VALUE_SIZE_LIMIT - 1024;
  const ctx = id32('reads-nothing-unsent');
  let t: TestHost;
  let code: Uint8Array;
  let blob: Uint8Array = new Uint8Array(32);
  before(async () => {
    const p = new Probe(64 * 1024);
    const region = p.out(LARGE);
    p.method('write_private', `(drop ${call('private_storage_write', p.buf('private'), p.desc(region.at, SMALL))}) (call $ret_i64 (i64.const 0))`);
    p.method('write_a', `(drop ${call('storage_write', p.buf('a'), p.desc(region.at, SMALL), 0)}) (call $ret_i64 (i64.const 0))`);
    p.method('write_b', `(drop ${call('storage_write', p.buf('b'), p.desc(region.at, LARGE), 0)}) (call $ret_i64 (i64.const 0))`);
    const blobId = p.out(32);
    p.method('write_blob', `(local $fd i64) (local.set $fd ${call('blob_create')})
      (drop ${call('blob_write', '(local.get $fd)', p.desc(region.at, BLOB_FRAME_BYTES))})
      (drop ${call('blob_close', '(local.get $fd)', blobId.desc)}) (call $ret_mem (i64.const ${blobId.at}) (i64.const 32))`);
    t = await openHost({ poolSize: 1 });
    code = await t.host.deploy(await p.build());
    const limits = { maxStorageValueSize: MAX_STORAGE_VALUE_SIZE_LIMIT, maxEffectBytes: MAX_EFFECT_BYTES_LIMIT, maxExecutionMemory: MAX_EXECUTION_MEMORY_LIMIT };
    for (const method of ['write_private', 'write_a', 'write_b', 'write_blob']) {
      const o = await t.host.call({ codeHash: code, method, contextId: ctx, gasLimit: RICH, limits });
      assert.equal(o.result.code, 'return', `${method}: ${JSON.stringify(o.result)}`);
      if (method === 'write_blob') blob = (o.result as { value: Uint8Array }).value;
    }
  });
  after(() => t.close());

  /** Serves one request of a fresh job with `gasLimit`; returns its answer and the value bytes read to build it. */
  function serve<M extends 'private_storage_read' | 'storage_read_many' | 'blob_read'>(method: M, fields: Parameters<typeof encodeRequest<M>>[1], gasLimit: bigint): { answer: Response<M>; read: number } {
    const real = (t.host as unknown as { backend: SessionBackend }).backend;
    let read = 0;
    const counted = <A extends unknown[]>(f: (...a: A) => Uint8Array | undefined) => (...a: A): Uint8Array | undefined => {
      const v = f(...a);
      read += v?.length ?? 0;
      return v;
    };
    const node = real.node!;
    const backend: SessionBackend = {
      getCode: (h) => real.getCode(h),
      readState: counted((c: Uint8Array, k: Uint8Array) => real.readState(c, k)),
      readStateWithin: (c, k, most) => {
        const v = real.readStateWithin!(c, k, most);
        if (v instanceof Uint8Array) read += v.length;
        return v;
      },
      node: new Proxy(node, {
        get: (target, key) =>
          key === 'readPrivate'
            ? counted((j: Job, k: Uint8Array) => target.readPrivate(j, k))
            : key === 'blobRead'
              ? counted((j: Job, id: Uint8Array, offset: bigint, length: number) => target.blobRead(j, id, offset, length))
              : Reflect.get(target, key),
      }),
    };
    const session = new Session(backend, { oneShot: new Job(message({ codeHash: code, method: 'm', contextId: ctx, gasLimit })) });
    session.handle(encodeRequest('hello', { minVersion: 1, maxVersion: 1, vmVersion: 'test', pid: 1, proof: new Uint8Array(32) }));
    const answer = decodeResponse(method, session.handle(encodeRequest(method, fields)) as Uint8Array);
    return { answer, read };
  }

  test('a private value the gas cannot pay to read is not read: unaffordable with its length', () => {
    const { answer, read } = serve('private_storage_read', { key: Buffer.from('private') }, 3_000_000n);
    assert.equal(answer.status, 'unaffordable');
    assert.equal((answer.fields as { bytes: number }).bytes, 1 + 4 + SMALL);
    assert.equal(read, 0);
  });

  test('a blob chunk the gas cannot pay to read is not read: unaffordable with its length', () => {
    const { answer, read } = serve('blob_read', { blobId: blob, offset: 0n, length: BLOB_FRAME_BYTES }, 3_000_000n);
    assert.equal(answer.status, 'unaffordable');
    assert.equal((answer.fields as { bytes: number }).bytes, 1 + 4 + BLOB_FRAME_BYTES);
    assert.equal(read, 0);
    // With the gas for it, the chunk is read and sent.
    const rich = serve('blob_read', { blobId: blob, offset: 0n, length: BLOB_FRAME_BYTES }, RICH);
    assert.equal(rich.answer.status, 'ok');
    assert.equal(rich.read, BLOB_FRAME_BYTES);
  });

  test('a value that will not fit in the answer\'s frame is not read: the prefix before it is answered', () => {
    const { answer, read } = serve('storage_read_many', { keys: [Buffer.from('a'), Buffer.from('b')] }, RICH);
    assert.equal(answer.status, 'ok');
    assert.equal((answer.fields as { values: unknown[] }).values.length, 1);
    assert.equal(read, SMALL, 'only the value sent was read out of the store');
  });
});

describe('context_members pays for each member it lists', () => {
  // Each member listed is a key the host reads: 200,000 members took the host about a second per request for
  // 36 ms of gas (their bytes alone). Now each costs round_trip per_key, and a list the gas cannot pay for is
  // counted, not read.
  const MEMBERS = 2000;
  const many = id32('many-members');
  const one = id32('one-member');
  let t: TestHost;
  let code: Uint8Array;
  let hostCalls: CallFinished['hostCalls'] = {};
  before(async () => {
    const p = new Probe(64 * 1024);
    p.method('members', `${call('context_members', 1)} (call $ret_i64 (call $register_len (i64.const 1)))`);
    t = await openHost({ poolSize: 1 });
    t.host.events.on('call.finished', (e: CallFinished) => (hostCalls = e.hostCalls));
    code = await t.host.deploy(await p.build());
    await t.host.node.addMembers(many, Array.from({ length: MEMBERS }, (_, i) => id32(`member-${i}`)));
    await t.host.node.addMembers(one, [id32('member-0')]);
  });
  after(() => t.close());

  const list = (contextId: Uint8Array, gasLimit: bigint) => t.host.call({ codeHash: code, method: 'members', contextId, executorId: id32('member-0'), gasLimit });

  test('the gas a listing uses grows by round_trip per_key for each member', async () => {
    const small = await list(one, RICH);
    const large = await list(many, RICH);
    assert.equal(small.result.code, 'return', JSON.stringify(small.result));
    assert.equal(large.result.code, 'return', JSON.stringify(large.result));
    assert.equal(Buffer.from((large.result as { value: Uint8Array }).value).readBigUInt64LE(0), BigInt(4 + 32 * MEMBERS));
    assert.ok(large.gasUsed - small.gasUsed >= BigInt(MEMBERS - 1) * BigInt(ROUND_TRIP_GAS.perKey), `${large.gasUsed - small.gasUsed} gas for ${MEMBERS - 1} more members`);
  });

  test('a listing the gas cannot pay for is not read: unaffordable, the same out_of_gas', async () => {
    const small = await list(one, RICH);
    const gasLimit = small.gasUsed + 1000n;
    const o = await list(many, gasLimit);
    assert.equal(o.result.code, 'vm_error');
    assert.match((o.result as { message: string }).message, /^out_of_gas/);
    assert.equal(o.gasUsed, gasLimit);
    assert.ok(hostCalls['context_members']!.responseBytes < 16, JSON.stringify(hostCalls));
    // On the host's session: the members are counted, never listed.
    const real = (t.host as unknown as { backend: SessionBackend }).backend;
    let listed = 0;
    const node = new Proxy(real.node!, {
      get: (target, key) => (key === 'members' ? (j: Job) => ((listed += 1), target.members(j)) : Reflect.get(target, key)),
    });
    const session = new Session({ getCode: (h) => real.getCode(h), readState: (c, k) => real.readState(c, k), node }, { oneShot: new Job(message({ codeHash: code, method: 'm', contextId: many, executorId: id32('member-0'), gasLimit: 3_000_000n })) });
    session.handle(encodeRequest('hello', { minVersion: 1, maxVersion: 1, vmVersion: 'test', pid: 1, proof: new Uint8Array(32) }));
    const answer = decodeResponse('context_members', session.handle(encodeRequest('context_members', {})) as Uint8Array);
    assert.equal(answer.status, 'unaffordable');
    assert.equal(listed, 0);
  });
});

describe('a context with more members than one answer lists', () => {
  // (64 MiB - 5) / 36 = 1,864,134 members fill one answer frame. With the gas for them all, the host read every
  // member of a larger context (~4 s of its CPU), then answered limit_exceeded: the call ended internal_error
  // with no gas charged, on every retry. Now the host counts one past the frame's bound, reads none, and the
  // guest gets ValueLengthOverflow, paying round_trip per_key for the members counted.
  const MEMBERS = MAX_CONTEXT_MEMBERS_LISTED + 2;
  const ctx = id32('huge-context');
  const member = (i: number): Uint8Array => {
    const b = new Uint8Array(32);
    new DataView(b.buffer).setUint32(0, i, false);
    b[31] = 1;
    return b;
  };
  let t: TestHost;
  let code: Uint8Array;
  before(async () => {
    const p = new Probe(64 * 1024);
    p.method('members', `${call('context_members', 1)} (call $ret_i64 (call $register_len (i64.const 1)))`);
    t = await openHost({ poolSize: 1 });
    code = await t.host.deploy(await p.build());
    for (let at = 0; at < MEMBERS; at += 100_000) {
      await t.host.node.addMembers(ctx, Array.from({ length: Math.min(100_000, MEMBERS - at) }, (_, i) => member(at + i)));
    }
  });
  after(() => t.close());

  test('the guest gets ValueLengthOverflow and pays for the members counted, the same on every run', async () => {
    const gasLimit = 10n ** 15n;
    const runs = [];
    for (let i = 0; i < 2; i++) {
      runs.push(await t.host.call({ codeHash: code, method: 'members', contextId: ctx, executorId: member(0), gasLimit }));
    }
    for (const o of runs) {
      assert.equal(o.result.code, 'vm_error', JSON.stringify(o.result));
      assert.match((o.result as { message: string }).message, /^ValueLengthOverflow \(context_members\): the context has more than 1864134 members/);
      assert.ok(o.gasUsed >= BigInt(MAX_CONTEXT_MEMBERS_LISTED + 1) * BigInt(ROUND_TRIP_GAS.perKey), `${o.gasUsed} gas used`);
    }
    assert.equal(runs[0]!.gasUsed, runs[1]!.gasUsed);
  });

  test('on the host\'s session: counted one past the frame, never read, the keys counted booked', () => {
    const real = (t.host as unknown as { backend: SessionBackend }).backend;
    let listed = 0;
    let countedUpTo = 0;
    const node = new Proxy(real.node!, {
      get: (target, key) =>
        key === 'members'
          ? (j: Job) => ((listed += 1), target.members(j))
          : key === 'memberCount'
            ? (j: Job, most: number) => ((countedUpTo = Math.max(countedUpTo, most)), target.memberCount(j, most))
            : Reflect.get(target, key),
    });
    const job = new Job(message({ codeHash: code, method: 'm', contextId: ctx, executorId: member(0), gasLimit: 10n ** 15n }));
    const session = new Session({ getCode: (h) => real.getCode(h), readState: (c, k) => real.readState(c, k), node }, { oneShot: job });
    session.handle(encodeRequest('hello', { minVersion: 1, maxVersion: 1, vmVersion: 'test', pid: 1, proof: new Uint8Array(32) }));
    const answer = decodeResponse('context_members', session.handle(encodeRequest('context_members', {})) as Uint8Array);
    assert.equal(answer.status, 'limit_exceeded');
    assert.equal(listed, 0, 'no member was read');
    assert.equal(countedUpTo, MAX_CONTEXT_MEMBERS_LISTED + 1);
    assert.equal(job.guest.keys, MAX_CONTEXT_MEMBERS_LISTED + 1);
  });
});
