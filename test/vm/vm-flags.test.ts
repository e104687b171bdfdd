/**
 * What the VMs' node flags (VM_NODE_FLAGS) and the pool VM's tier-up do, checked in real processes started with
 * those flags: wasm memories without guard-region reservations, the tier-up budget a pool VM returns to, and
 * when the VM loop decides it serves a pool. (That traps and results are the same with inline bounds checks as
 * with the trap handler is checked through real VM processes in test/host/determinism.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { VM_NODE_FLAGS } from '../../src/host/supervisor.js';
import { decodeRequest, encodeOk, encodeStatus } from '../../src/protocol/messages.js';
import { InProcessChannel } from '../../src/transport/in-process.js';
import { HostClient } from '../../src/vm/host-client.js';
import { serveHost, VM_EXIT } from '../../src/vm/process.js';

const PROCESS_MODULE = fileURLToPath(new URL('../../src/vm/process.js', import.meta.url));

/** Runs an ES module script in a node started with `flags`; its stdout, trimmed. */
function runWith(flags: readonly string[], script: string): string {
  return execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8' }).trim();
}

/** Address space (KiB, VmSize) a process with `flags` gains by creating 8 wasm memories of 1 page, at most 1024. */
function reservedKiBFor8Memories(flags: readonly string[]): number {
  const script = `
    import { readFileSync } from 'node:fs';
    const vmSize = () => Number(/VmSize:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
    const before = vmSize();
    const kept = Array.from({ length: 8 }, () => new WebAssembly.Memory({ initial: 1, maximum: 1024 }));
    console.log(vmSize() - before, kept.length);`;
  return Number(runWith(flags, script).split(' ')[0]);
}

const TRAP_HANDLER_FLAG = '--disable-wasm-trap-handler';

describe("the VMs' node flags", () => {
  test('a wasm memory reserves its maximum, not 10 GiB of guard regions, in a VM', { skip: process.platform !== 'linux' }, () => {
    assert.ok(VM_NODE_FLAGS.includes(TRAP_HANDLER_FLAG));
    const vm = reservedKiBFor8Memories(VM_NODE_FLAGS);
    const withTrapHandler = reservedKiBFor8Memories(VM_NODE_FLAGS.filter((f) => f !== TRAP_HANDLER_FLAG));
    // 8 x 64 MiB (the declared maximum) against 8 x ~10 GiB with the trap handler's guard regions.
    assert.ok(vm < 8 * 1024 * 1024, `VM flags: ${vm} KiB reserved for 8 memories`);
    assert.ok(withTrapHandler >= 8 * 8 * 1024 * 1024, `trap handler: ${withTrapHandler} KiB reserved for 8 memories`);
  });

  test('a pool VM tiers up at V8\'s default budget, a one-shot VM at the larger one', () => {
    // Calls of a small hot function until TurboFan has optimized it (status bit 16), compiled synchronously so
    // that the count depends only on the budget.
    const count = (pooled: boolean): number => {
      const script = `
        import { tierUpForPool } from ${JSON.stringify(PROCESS_MODULE)};
        function hot(x) { let s = 0; for (let i = 0; i < 8; i++) s += x * i; return s; }
        if (${pooled}) tierUpForPool();
        let n = 0;
        for (; n < 1000000; n++) { hot(n); if (n % 50 === 0 && (%GetOptimizationStatus(hot) & 16)) break; }
        console.log(n);`;
      return Number(runWith([...VM_NODE_FLAGS, '--allow-natives-syntax', '--no-concurrent-recompilation'], script));
    };
    const oneShot = count(false);
    const pooled = count(true);
    assert.ok(oneShot < 1000000, 'the hot function is optimized in the end with the larger budget too');
    assert.ok(pooled * 4 < oneShot, `optimized after ${pooled} calls in a pool VM, ${oneShot} in a one-shot VM`);
  });
});

describe('serveHost: when a VM knows it serves a pool', () => {
  /** A host giving `messages` (unparseable ones: each is answered as invalid_message) then absent; the log of requests and hook calls. */
  const serve = (messages: number): string[] => {
    const log: string[] = [];
    let given = 0;
    const channel = new InProcessChannel((body) => {
      const method = decodeRequest(body).method;
      log.push(method);
      if (method === 'hello') return encodeOk('hello', { version: 1, hostVersion: 'test' });
      if (method === 'next_message') return given++ < messages ? encodeOk('next_message', { message: '{}' }) : encodeStatus('absent', {});
      return encodeOk('consume_result', {});
    });
    const code = serveHost(new HostClient(channel), undefined, undefined, undefined, () => log.push('pooled'));
    assert.equal(code, VM_EXIT.ok);
    return log;
  };

  test('a VM given one message never calls the hook; a pool VM calls it once, on its second message', () => {
    assert.deepEqual(serve(1), ['hello', 'next_message', 'consume_result', 'next_message']);
    assert.deepEqual(serve(3), [
      'hello',
      'next_message', 'consume_result',
      'next_message', 'pooled', 'consume_result',
      'next_message', 'consume_result',
      'next_message',
    ]);
  });
});
