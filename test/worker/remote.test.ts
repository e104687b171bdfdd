/**
 * Remote workers on loopback, through the real parts: a Host with its TLS Runtime endpoint for workers, real
 * `hostlink worker` processes that register over gRPC + TLS and run sandboxed VMs, kv-store calls relayed over
 * TLS, LMDB state. Certificates are made at test time with openssl (skipped with the reason when absent).
 *
 * - two workers serve a burst; one is killed while it runs a call that never ends: that call is a crash
 *   ("the remote VM slot closed"), its write is not applied (state root unchanged), and the other worker
 *   keeps serving;
 * - a worker that restarts on the same address registers again (replacing its old entry) and serves;
 * - a worker announcing another protocol version is refused and exits naming both versions;
 * - a registration announcing no gas schedule and instrumentation (a release before the announcement) or other
 *   ones is refused, naming both; the node's own versions pass; a worker refused by a node of another release
 *   (a gRPC Runtime answering as one would) exits 3 naming the node's versions and its own;
 * - a worker whose certificate another CA signed, or whose token is wrong, is refused; the right token passes;
 * - a worker with another certificate from the CA cannot take a live worker's address (refused, logged, exit 4),
 *   nor can a registration that reuses the holder's instance id; the holder restarted (same certificate) can, and
 *   so can the other certificate once the holder's registration has lapsed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { HostlinkError } from '../../src/errors.js';
import { Host, type Outcome } from '../../src/host/host.js';
import type { HostLogger } from '../../src/host/logger.js';
import { PROTOCOL_VERSION_MAX } from '../../src/protocol/generated.js';
import { VM_SEMANTICS, VM_SEMANTICS_TEXT } from '../../src/protocol/vm-semantics.js';
import { initialize } from '../../src/runtime/grpc.js';
import { runtimeService, type InitializeRequest, type InitializeResponse } from '../../src/runtime/grpc.js';
import { INSTANCE_METADATA, NODE_PROTOCOL_METADATA, SLOTS_METADATA, VM_SEMANTICS_METADATA, workerServerCredentials } from '../../src/worker/endpoint.js';
import { MAX_ADDRESSES_PER_IDENTITY } from '../../src/worker/remote-launcher.js';
import { readTlsFiles } from '../../src/worker/tls.js';
import { startWorker } from '../../src/worker/worker.js';
import { contract, id32, tempDir, text, utf8 } from '../helpers.js';
import { makeCerts, opensslMissing, type TestCerts } from '../../bench/certs.js';
import { alive, ancestors, freePort, HOSTLINK, startWorkerProcess, waitFor, type WorkerProcess } from './helpers.js';

const json = (o: object): Uint8Array => utf8(JSON.stringify(o));

function recordingLogger(lines: string[]): HostLogger {
  const rec = (message: string, fields?: Record<string, unknown>): void => {
    lines.push(`${message} ${fields ? JSON.stringify(fields) : ''}`);
  };
  return { debug: rec, info: rec, warn: rec, error: rec };
}

/** An outcome of kv-store set: applied with the value, or a crash that changed nothing. */
function checkSet(host: Host, ctx: Uint8Array, o: Outcome, emptyRoot: Uint8Array, value: string): 'applied' | 'crash' {
  if (o.applied) {
    assert.equal(o.result.code, 'return', JSON.stringify(o.result));
    const entries = host.state(ctx).entries.map(([k, v]) => [text(k), text(v)]);
    assert.ok(entries.some(([, v]) => v.includes(value)), `the state of the context holds ${value}: ${JSON.stringify(entries)}`);
    return 'applied';
  }
  assert.ok(o.crash !== undefined, `a call that was not applied is a crash here: ${JSON.stringify(o.result)}`);
  assert.deepEqual(host.state(ctx).root, emptyRoot, 'a crashed call changed nothing');
  return 'crash';
}

const skip = opensslMissing();


/** A raw registration, as a worker's Initialize, with `tls`'s certificate: `slots` slots under `instance` at `at`. */
function registerAs(host: Host, tls: TestCerts['worker'], instance: string, slots: number, at: string): ReturnType<typeof initialize> {
  const metadata = new grpc.Metadata();
  metadata.set(SLOTS_METADATA, String(slots));
  metadata.set(INSTANCE_METADATA, instance);
  metadata.set(VM_SEMANTICS_METADATA, VM_SEMANTICS_TEXT);
  const credentials = grpc.credentials.createSsl(readFileSync(tls.ca), readFileSync(tls.key), readFileSync(tls.cert));
  return initialize(host.remote!.address!, { protocol_version: PROTOCOL_VERSION_MAX, server_addr: at }, { credentials, metadata, deadlineMs: 10_000 });
}

describe('remote workers on loopback', { skip }, () => {
  let dir: { path: string; remove: () => void };
  let certs: TestCerts;
  const workers: WorkerProcess[] = [];
  const hosts: Host[] = [];

  before(() => {
    dir = tempDir('hostlink-worker-test-');
    certs = makeCerts(dir.path);
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await Promise.all(hosts.map((h) => h.close()));
    dir.remove();
  });

  async function openHost(extra: { tokenFile?: string; poolSize?: number; deadlineMs?: number } = {}, log: string[] = []): Promise<Host> {
    const data = join(dir.path, `data-${hosts.length}`);
    const host = await Host.open({
      dataDir: data,
      poolSize: extra.poolSize ?? 4,
      deadlineMs: extra.deadlineMs ?? 30_000,
      logger: recordingLogger(log),
      workers: { listen: '127.0.0.1:0', tls: certs.node, ...(extra.tokenFile !== undefined ? { tokenFile: extra.tokenFile } : {}) },
    });
    hosts.push(host);
    return host;
  }

  function worker(host: Host, slots: number, listen = '127.0.0.1:0', extra: { tls?: TestCerts['worker']; token?: string; args?: string[] } = {}): WorkerProcess {
    const w = startWorkerProcess({
      runtime: host.remote!.address!,
      slots,
      listen,
      tls: extra.tls ?? certs.worker,
      ...(extra.token !== undefined ? { token: extra.token } : {}),
      ...(extra.args !== undefined ? { extra: extra.args } : {}),
    });
    workers.push(w);
    return w;
  }

  test('two workers serve a burst; one killed mid-call: that call is a crash, state unchanged, the other keeps serving', { timeout: 120_000 }, async () => {
    const host = await openHost({ poolSize: 4 });
    const kv = await host.deploy(contract('kv-store'));
    const hold = await host.deploy(contract('hold'));
    const a = worker(host, 2);
    const b = worker(host, 2);
    await waitFor('two registered workers', () => host.remote!.launcher.workers().length === 2);
    assert.equal(host.remote!.launcher.capacity(), 4);

    // A call that never ends, on one of the workers.
    const holdCtx = id32('remote-hold');
    const emptyRoot = host.state(holdCtx).root;
    const held = host.call({ codeHash: hold, method: 'write_then_loop', contextId: holdCtx });
    await waitFor('the held call to run', () => host.busyVmPids().length === 1);
    const vmPid = host.busyVmPids()[0]!;
    const chain = ancestors(vmPid);
    const victim = [a, b].find((w) => chain.includes(w.child.pid!));
    assert.ok(victim !== undefined, `the held VM (pid ${vmPid}) runs under one of the workers (${chain.join(' <- ')})`);
    const survivor = victim === a ? b : a;

    // The burst runs while the worker is killed.
    const burst = Array.from({ length: 12 }, (_, i) => {
      const ctx = id32(`remote-burst-${i}`);
      return host.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: `v${i}` }), contextId: ctx }).then((o) => ({ o, ctx, i }));
    });
    await victim.kill('SIGKILL');

    const heldOutcome = await held;
    assert.equal(heldOutcome.applied, false);
    assert.ok(heldOutcome.crash !== undefined, `the held call is a crash: ${JSON.stringify(heldOutcome.result)}`);
    assert.match(heldOutcome.crash.stderr, /the remote VM slot closed/);
    assert.equal((heldOutcome.result as { code: string }).code, 'internal_error');
    assert.deepEqual(host.state(holdCtx).root, emptyRoot, 'the killed call wrote nothing');
    for (const { o, ctx, i } of await Promise.all(burst)) checkSet(host, ctx, o, emptyRoot, `v${i}`);

    // The surviving worker serves everything that follows; the dead one left the slot table.
    for (let i = 0; i < 8; i++) {
      const ctx = id32(`remote-after-${i}`);
      const o = await host.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: `after${i}` }), contextId: ctx });
      assert.equal(checkSet(host, ctx, o, emptyRoot, `after${i}`), 'applied');
    }
    await waitFor('the killed worker to leave the slot table', () => host.remote!.launcher.workers().length === 1);
    assert.equal(survivor.child.exitCode, null, 'the other worker is still running');
    await waitFor('the held VM to be gone', () => !alive(vmPid));
  });

  test('a remote VM killed mid-call is reported with its signal and last stderr line, like a local one; remote VMs emit vm.launched and vm.exited naming their worker', { timeout: 120_000 }, async () => {
    const host = await openHost({ poolSize: 1 });
    const launched: { pid: number; worker?: string }[] = [];
    const exited: { pid: number; worker?: string; signal: string | null; exitCode: number | null }[] = [];
    host.events.on('vm.launched', (e) => launched.push(e));
    host.events.on('vm.exited', (e) => exited.push(e));
    const crashed: { pid: number; worker?: string; signal: string | null }[] = [];
    host.events.on('vm.crashed', (e) => crashed.push(e));
    const hold = await host.deploy(contract('hold'));
    const w = worker(host, 1);
    await waitFor('the worker to register', () => host.remote!.launcher.workers().length === 1);
    const addr = host.remote!.launcher.workers()[0]!.addr;

    const ctx = id32('remote-signal');
    const emptyRoot = host.state(ctx).root;
    const held = host.call({ codeHash: hold, method: 'write_then_loop', contextId: ctx });
    await waitFor('the held call to run', () => host.busyVmPids().length === 1);
    const vmPid = host.busyVmPids()[0]!;
    assert.ok(ancestors(vmPid).includes(w.child.pid!), 'on loopback, the pid the worker reported is its VM process');
    assert.deepEqual(launched.map((e) => [e.pid, e.worker]), [[vmPid, addr]], 'vm.launched names the remote pid and its worker');
    process.kill(vmPid, 'SIGKILL');

    const o = await held;
    assert.equal(o.applied, false);
    assert.equal(o.crash?.signal, 'SIGKILL', JSON.stringify(o.crash));
    assert.match((o.result as { message: string }).message, /^vm_crash the VM process ended \(signal SIGKILL\) without a result/);
    assert.match(o.crash.stderr, new RegExp(`worker ${addr.replace(/\./g, '\\.')}, VM pid ${vmPid} there`));
    assert.deepEqual(host.state(ctx).root, emptyRoot, 'the killed call wrote nothing');
    await waitFor('vm.exited', () => exited.length === 1);
    assert.deepEqual(exited.map((e) => [e.pid, e.worker, e.signal]), [[vmPid, addr, 'SIGKILL']]);
    assert.deepEqual(crashed.map((e) => [e.pid, e.worker, e.signal]), [[vmPid, addr, 'SIGKILL']], 'vm.crashed names the worker too');
    assert.equal(w.child.exitCode, null, 'the worker lives on');
  });

  test('a worker that restarts registers again and serves', { timeout: 120_000 }, async () => {
    const host = await openHost({ poolSize: 2 });
    const kv = await host.deploy(contract('kv-store'));
    const port = await freePort();
    const first = worker(host, 2, `127.0.0.1:${port}`);
    await waitFor('the worker to register', () => host.remote!.launcher.workers().length === 1);
    const ctx = id32('remote-restart');
    const one = await host.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: 'one' }), contextId: ctx });
    assert.equal(one.applied, true, JSON.stringify(one.result));
    await first.kill('SIGKILL');
    // Three slots: the pool may hold two of them (a call queued while the first VM finishes its previous one starts
    // a second), and the one-shot call below needs its own.
    const second = worker(host, 3, `127.0.0.1:${port}`);
    await waitFor('the restarted worker to register', () => second.output().includes('registered with the node'));
    // The new registration replaced the old one and closed its slots: the idle pool VM of the killed worker is gone.
    await waitFor("the pool to drop the killed worker's VM", () => host.poolStats?.workers === 0);
    const two = await host.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: 'two' }), contextId: ctx });
    assert.equal(two.applied, true, JSON.stringify(two.result));
    const get = await host.call({ codeHash: kv, method: 'get', input: json({ key: 'k' }), contextId: ctx });
    assert.equal(text((get.result as { value: Uint8Array }).value), '"two"');
    assert.deepEqual(host.remote!.launcher.workers().map((w) => w.addr), [`127.0.0.1:${port}`]);
    // One-shot calls run on the workers too: the call takes a slot for itself and gives it back; no local VM starts.
    let localLaunches = 0;
    let remoteLaunches = 0;
    host.events.on('vm.launched', (e) => (e.worker === undefined ? localLaunches++ : remoteLaunches++));
    const inUse = host.remote!.launcher.workers()[0]!.inUse;
    const three = await host.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: 'three' }), contextId: ctx, mode: 'oneshot' });
    assert.equal(three.applied, true, JSON.stringify(three.result));
    await waitFor('the one-shot slot to be given back', () => host.remote!.launcher.workers()[0]!.inUse === inUse);
    assert.equal(localLaunches, 0, 'no local VM process was started');
    assert.equal(remoteLaunches, 1, 'the one-shot VM was launched on the worker');
  });

  test('a node that restarts is registered with again (retries printed with their backoff) and served', { timeout: 120_000 }, async () => {
    const port = await freePort();
    const open = (n: number): Promise<Host> =>
      Host.open({ dataDir: join(dir.path, `restart-node-${n}`), poolSize: 2, deadlineMs: 30_000, workers: { listen: `127.0.0.1:${port}`, tls: certs.node } });
    const first = await open(1);
    const w = startWorkerProcess({ runtime: `127.0.0.1:${port}`, slots: 2, listen: '127.0.0.1:0', tls: certs.worker });
    workers.push(w);
    // Registered on both sides: the node lists the worker as soon as it handles the registration, before its answer
    // reaches the worker; a node closed in between cut that answer, and the worker never knew it had registered.
    await waitFor('the worker to register with the first node', () => first.remote!.launcher.workers().length === 1 && /registered with the node/.test(w.output()));
    const retries = (): number => (w.output().match(/could not register .* retrying in/g) ?? []).length;
    const before = retries();
    await first.close();
    await waitFor('the worker to notice the node is gone', () => retries() > before);
    const second = await open(2);
    hosts.push(second);
    await waitFor('the worker to register with the restarted node', () => second.remote!.launcher.workers().length === 1);
    await waitFor('the worker to log the lost node', () => /lost the node at 127\.0\.0\.1:\d+ .*registering again/.test(w.output()));
    const kv = await second.deploy(contract('kv-store'));
    const ctx = id32('remote-node-restart');
    const o = await second.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: 'again' }), contextId: ctx });
    assert.equal(o.applied, true, JSON.stringify(o.result));
  });

  test('a worker with another protocol version is refused, naming both versions', { timeout: 60_000 }, async () => {
    const log: string[] = [];
    const host = await openHost({}, log);
    const other = PROTOCOL_VERSION_MAX + 7;
    const w = worker(host, 1, '127.0.0.1:0', { args: ['--protocol-version', String(other)] });
    assert.equal(await w.exit, 3, w.output());
    assert.match(w.output(), new RegExp(`protocol version mismatch: the node speaks ${PROTOCOL_VERSION_MAX}, this worker ${other}`));
    assert.deepEqual(host.remote!.launcher.workers(), []);
    assert.ok(log.some((l) => l.includes('refused worker registration') && l.includes('protocol version mismatch')), log.join('\n'));
  });

  test('a registration whose VMs run by another gas schedule or instrumentation, or that does not say, is refused', { timeout: 60_000 }, async () => {
    const log: string[] = [];
    const host = await openHost({}, log);
    const credentials = grpc.credentials.createSsl(readFileSync(certs.worker.ca), readFileSync(certs.worker.key), readFileSync(certs.worker.cert));
    const register = (rules: string | undefined, port: number): ReturnType<typeof initialize> => {
      const metadata = new grpc.Metadata();
      metadata.set(SLOTS_METADATA, '1');
      metadata.set(INSTANCE_METADATA, `rules-${port}`);
      if (rules !== undefined) metadata.set(VM_SEMANTICS_METADATA, rules);
      return initialize(host.remote!.address!, { protocol_version: PROTOCOL_VERSION_MAX, server_addr: `127.0.0.1:${port}` }, { credentials, metadata, deadlineMs: 10_000 });
    };
    const [gas, instrumentation] = VM_SEMANTICS;
    const otherGas = `${gas!.field}=${gas!.version - 1} ${instrumentation!.field}=${instrumentation!.version}`;
    const otherInstrumentation = `${gas!.field}=${gas!.version} ${instrumentation!.field}=${instrumentation!.version + 1}`;
    // What a worker of a release before the announcement sends: the same registration without it.
    for (const [rules, named] of [
      [undefined, 'not announced'],
      [otherGas, `gas schedule ${gas!.version - 1}, instrumentation ${instrumentation!.version}`],
      [otherInstrumentation, `gas schedule ${gas!.version}, instrumentation ${instrumentation!.version + 1}`],
      ['', 'gas schedule unknown, instrumentation unknown'],
    ] as const) {
      const outcome = await register(rules, 40_001);
      assert.equal(outcome.ok, false, `${String(rules)}: ${JSON.stringify(outcome)}`);
      assert.deepEqual(host.remote!.launcher.workers(), [], 'nothing registered');
      const line = log.filter((l) => l.includes('refused worker registration')).at(-1) ?? '';
      assert.ok(line.includes('VM rules mismatch') && line.includes(named) && line.includes(`gas schedule ${gas!.version}, instrumentation ${instrumentation!.version}`), `${String(rules)}: ${line}`);
    }
    assert.deepEqual(await register(VM_SEMANTICS_TEXT, 40_002), { ok: true });
    assert.deepEqual(host.remote!.launcher.workers().map((w) => w.addr), ['127.0.0.1:40002']);
  });

  test('a worker refused by a node whose VMs run another gas schedule exits 3, naming both', { timeout: 60_000 }, async () => {
    // What a node of another release answers: the protocol it speaks is this worker's, its VM rules are not.
    const [gas, instrumentation] = VM_SEMANTICS;
    const nodeRules = `${gas!.field}=${gas!.version + 1} ${instrumentation!.field}=${instrumentation!.version}`;
    const seen: string[] = [];
    const server = new grpc.Server();
    server.addService(runtimeService(), {
      Initialize: (call: grpc.ServerUnaryCall<InitializeRequest, InitializeResponse>, callback: grpc.sendUnaryData<InitializeResponse>) => {
        seen.push(String(call.metadata.get(VM_SEMANTICS_METADATA)[0]));
        const trailer = new grpc.Metadata();
        trailer.set(NODE_PROTOCOL_METADATA, String(PROTOCOL_VERSION_MAX));
        trailer.set(VM_SEMANTICS_METADATA, nodeRules);
        callback(null, { error: 'ERROR_INCOMPATIBLE_PROTOCOL_VERSION' }, trailer);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', workerServerCredentials(readTlsFiles(certs.node)), (e, p) => (e ? reject(e) : resolve(p))),
    );
    try {
      const w = startWorkerProcess({ runtime: `127.0.0.1:${port}`, slots: 1, listen: '127.0.0.1:0', tls: certs.worker });
      workers.push(w);
      assert.equal(await w.exit, 3, w.output());
      assert.deepEqual(seen, [VM_SEMANTICS_TEXT], 'the worker announced its own VM rules');
      assert.match(
        w.output(),
        new RegExp(`VM rules mismatch: the node's VMs run gas schedule ${gas!.version + 1}, instrumentation ${instrumentation!.version}, this worker's gas schedule ${gas!.version}, instrumentation ${instrumentation!.version}: install the same Hostlink release`),
      );
      assert.doesNotMatch(w.output(), /protocol version mismatch/, 'the protocol matched');
    } finally {
      server.forceShutdown();
    }
  });

  test('TLS files that are not what they should be are refused at start, naming the file: worker exit 2, node open', { timeout: 60_000 }, async () => {
    const cases: [TestCerts['worker'], RegExp][] = [
      [{ ...certs.worker, cert: '/dev/null' }, /the TLS cert file \/dev\/null is not a PEM certificate \(PEM routines::no start line\)/],
      [{ ...certs.worker, key: certs.worker.cert }, /the TLS key file .* is not a PEM private key/],
      [{ ...certs.worker, ca: certs.worker.key }, /the TLS ca file .* is not a PEM certificate/],
      [{ ...certs.worker, key: certs.node.key }, /the TLS key file .* is not the key of the certificate/],
    ];
    for (const [tls, why] of cases) {
      const w = startWorkerProcess({ runtime: '127.0.0.1:1', slots: 1, listen: '127.0.0.1:0', tls });
      workers.push(w);
      assert.equal(await w.exit, 2, w.output());
      assert.match(w.output(), why);
      assert.doesNotMatch(w.output(), /\n.*\n/, 'one line');
    }
    await assert.rejects(
      Host.open({ dataDir: join(dir.path, 'bad-tls'), workers: { listen: '127.0.0.1:0', tls: { ...certs.node, ca: '/dev/null' } } }),
      /the TLS ca file \/dev\/null is not a PEM certificate/,
    );
    // A token no peer could match (a space, a control character) or an empty first line: refused the same way.
    for (const [name, text] of [['space', 'two words-0123456789\n'], ['control', 'bell\x07-0123456789\n'], ['empty', '\nsecond-line-0123456789\n']]) {
      const file = join(dir.path, `token-${name}`);
      writeFileSync(file, text!);
      const w = startWorkerProcess({ runtime: '127.0.0.1:1', slots: 1, listen: '127.0.0.1:0', tls: certs.worker, token: file });
      workers.push(w);
      assert.equal(await w.exit, 2, w.output());
      assert.match(w.output(), /the token file .* (is empty|holds a space, a control character or non-ASCII text)/, name);
    }
    await assert.rejects(
      Host.open({ dataDir: join(dir.path, 'bad-token'), workers: { listen: '127.0.0.1:0', tls: certs.node, tokenFile: join(dir.path, 'token-space') } }),
      /the token file .* holds a space/,
    );
  });

  test('a worker without valid credentials is refused: certificate from another CA, wrong token; the right token passes', { timeout: 60_000 }, async () => {
    const log: string[] = [];
    const tokenFile = join(dir.path, 'token');
    const wrongFile = join(dir.path, 'wrong-token');
    writeFileSync(tokenFile, 'correct-horse-battery-staple\n');
    writeFileSync(wrongFile, 'not-the-token\n');
    const host = await openHost({ tokenFile }, log);
    // The stranger trusts the node's CA (so it reaches the endpoint) but its own certificate is from another CA.
    const stranger = { cert: certs.stranger.cert, key: certs.stranger.key, ca: certs.node.ca };

    const noToken = worker(host, 1, '127.0.0.1:0', { tls: stranger });
    assert.equal(await noToken.exit, 4, noToken.output());
    assert.match(noToken.output(), /refused this worker: no client certificate signed by the node's CA/);

    const wrongToken = worker(host, 1, '127.0.0.1:0', { tls: stranger, token: wrongFile });
    assert.equal(await wrongToken.exit, 4, wrongToken.output());
    assert.match(wrongToken.output(), /no valid token/);
    assert.deepEqual(host.remote!.launcher.workers(), []);
    assert.equal(log.filter((l) => l.includes('refused worker registration')).length, 2, log.join('\n'));

    const rightToken = worker(host, 1, '127.0.0.1:0', { tls: stranger, token: tokenFile });
    await waitFor('the worker with the token to register', () => host.remote!.launcher.workers().length === 1);
    await rightToken.kill('SIGTERM');
  });

  test('a registration from anyone quotes its address in the log cut and escaped', { timeout: 60_000 }, async () => {
    // Before any credential was checked, the address went into the node's log whole and raw: 10 registrations of
    // a 3 MB address holding a CSI and a right-to-left override wrote 30 MB of warn lines, controls and all.
    const log: string[] = [];
    const host = await openHost({}, log);
    // No client certificate, no token: refused, and logged.
    const credentials = grpc.credentials.createSsl(readFileSync(certs.worker.ca));
    const metadata = new grpc.Metadata();
    metadata.set(SLOTS_METADATA, '1');
    const refusals = (): string[] => log.filter((l) => l.includes('refused worker registration'));
    // A 3 MB address is not even read now: the message is over the endpoint's bound, refused before the handler.
    const huge = await initialize(host.remote!.address!, { protocol_version: PROTOCOL_VERSION_MAX, server_addr: 'x'.repeat(3_000_000) }, { credentials, metadata, deadlineMs: 10_000 }).catch((e: Error) => e);
    assert.ok(huge instanceof Error && /larger than max/.test(huge.message), String(huge));
    assert.deepEqual(refusals(), [], 'nothing of it reaches the log');
    // One that fits the bound (longer than what a refusal quotes) reaches the credential check.
    const hostile = '\u009b2J\u202e\u001b]0;owned\u0007' + 'x'.repeat(900);
    const outcome = await initialize(host.remote!.address!, { protocol_version: PROTOCOL_VERSION_MAX, server_addr: hostile }, { credentials, metadata, deadlineMs: 10_000 }).catch((e: Error) => e);
    assert.ok(outcome instanceof Error || outcome.ok === false, 'refused');
    const line = refusals().at(-1) ?? '';
    assert.ok(line.length > 0 && line.length < 4096, `a refusal line of ${line.length} characters`);
    assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/, 'no control character in the line');
    assert.match(line, /\\u009b2J\\u202e\\u001b\]0;owned\\u0007x+… \(914 characters\)/);
  });

  test("a registration for a live worker's address made with another certificate is refused; the same certificate may replace it", { timeout: 60_000 }, async () => {
    const log: string[] = [];
    const host = await openHost({}, log);
    const addr = '127.0.0.1:40003';
    const register = (tls: TestCerts['worker'], instance: string, slots: number, at = addr): ReturnType<typeof initialize> => registerAs(host, tls, instance, slots, at);
    const table = (): [string, number][] => host.remote!.launcher.workers().map((w) => [w.addr, w.slots]);
    assert.deepEqual(await register(certs.worker, 'holder', 1), { ok: true });
    const held = /refused Initialize: worker address 127\.0\.0\.1:40003 is held by a live registration made with another identity/;
    await assert.rejects(register(certs.otherWorker, 'impostor', 7), held, 'a new instance id with another certificate');
    await assert.rejects(register(certs.otherWorker, 'holder', 7), held, "the holder's instance id with another certificate");
    // The same listener written another way is the same address: each of these dials 127.0.0.1:40003.
    for (const alias of ['127.1:40003', '127.0.0.01:40003', '2130706433:40003', '[::ffff:127.0.0.1]:40003', '[::FFFF:7f00:1]:40003', 'localhost:40003', 'LOCALHOST:40003']) {
      await assert.rejects(register(certs.otherWorker, `alias ${alias}`, 7, alias), /is held by a live registration made with another identity/, alias);
    }
    assert.deepEqual(table(), [[addr, 1]], 'the holder keeps its entry');
    assert.equal(log.filter((l) => l.includes('refused worker registration') && l.includes('held by a live registration')).length, 9, log.join('\n'));
    assert.deepEqual(await register(certs.worker, 'holder-restarted', 3), { ok: true }, 'the same certificate, restarted');
    assert.deepEqual(table(), [[addr, 3]]);
  });

  test('one certificate holds at most MAX_ADDRESSES_PER_IDENTITY live addresses; it renews those, and another certificate is unaffected', { timeout: 120_000 }, async () => {
    const log: string[] = [];
    const host = await openHost({}, log);
    const at = (i: number): string => `127.0.0.1:${41_000 + i}`;
    // Before the bound, one certificate registered 5,000 addresses that the node dialled and waited on.
    for (let i = 0; i < MAX_ADDRESSES_PER_IDENTITY; i++) assert.deepEqual(await registerAs(host, certs.worker, `w${i}`, 1024, at(i)), { ok: true }, at(i));
    const full = new RegExp(`certificate sha256 [0-9A-F:]+ already holds ${MAX_ADDRESSES_PER_IDENTITY} live worker addresses, the most one identity may hold \\(${MAX_ADDRESSES_PER_IDENTITY}\\)`);
    await assert.rejects(registerAs(host, certs.worker, 'one-more', 1024, at(MAX_ADDRESSES_PER_IDENTITY)), full);
    await assert.rejects(registerAs(host, certs.worker, 'one-more', 1024, '[::1]:41999'), full, 'written another way, a new address all the same');
    assert.equal(host.remote!.launcher.workers().length, MAX_ADDRESSES_PER_IDENTITY);
    // What it holds it may still renew, or replace (a restarted worker at the same address).
    assert.deepEqual(await registerAs(host, certs.worker, 'w0', 2, at(0)), { ok: true }, 'renewed');
    assert.deepEqual(await registerAs(host, certs.worker, 'w1-restarted', 3, at(1)), { ok: true }, 'replaced');
    // Another identity has its own count.
    assert.deepEqual(await registerAs(host, certs.otherWorker, 'other', 1, '127.0.0.1:42000'), { ok: true });
    assert.equal(host.remote!.launcher.workers().length, MAX_ADDRESSES_PER_IDENTITY + 1);
    assert.ok(log.some((l) => l.includes('refused worker registration') && /already holds \d+ live worker addresses/.test(l)), log.join('\n'));
  });

  test("a registration naming the unspecified address is refused however it is written: dialled, it reaches the node's own loopback", { timeout: 60_000 }, async () => {
    const log: string[] = [];
    const host = await openHost({}, log);
    // A live listener on the node's loopback, as a worker on the node's machine would have.
    const listener = createServer((s) => s.end('held\n'));
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as AddressInfo).port;
    const dial = (h: string): Promise<string> =>
      new Promise((resolve) => {
        const c = connect(port, h);
        c.setTimeout(2000, () => {
          c.destroy();
          resolve('timeout');
        });
        c.on('data', (d: Buffer) => {
          resolve(d.toString().trim());
          c.destroy();
        });
        c.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? ''}`));
      });
    const register = (tls: TestCerts['worker'], instance: string, slots: number, at: string): ReturnType<typeof initialize> => registerAs(host, tls, instance, slots, at);
    const table = (): [string, number][] => host.remote!.launcher.workers().map((w) => [w.addr, w.slots]);
    try {
      // Why it is refused: each of these, dialled, is the 127.0.0.1 listener.
      for (const h of ['0.0.0.0', '0', '0x0', '::ffff:0.0.0.0']) assert.equal(await dial(h), 'held', h);
      const addr = `127.0.0.1:${port}`;
      assert.deepEqual(await register(certs.worker, 'holder', 1, addr), { ok: true });
      const spellings = ['0.0.0.0', '0', '00', '0x0', '0.0', '0.0.0', '0X00000000', '[::ffff:0.0.0.0]', '[::ffff:0:0]', '[::]', '[::0]', '[0:0:0:0:0:0:0:0]', '[::0.0.0.0]'];
      const unspecified = /refused Initialize: worker address \S+ is the unspecified address \(0\.0\.0\.0 or ::\).*start the worker with --advertise HOST:PORT/;
      for (const h of spellings) {
        // Neither another identity nor the holder's own may name it: it is no worker's address.
        await assert.rejects(register(certs.otherWorker, `other ${h}`, 7, `${h}:${port}`), unspecified, `${h} by another certificate`);
        await assert.rejects(register(certs.worker, `own ${h}`, 7, `${h}:${port}`), unspecified, `${h} by the holder's certificate`);
      }
      assert.deepEqual(table(), [[addr, 1]], 'one listener, one entry');
      assert.equal(log.filter((l) => l.includes('refused worker registration') && l.includes('is the unspecified address')).length, 2 * spellings.length, log.join('\n'));
      assert.throws(
        () => host.remote!.launcher.register({ addr: '0:7000', slots: 1, instance: 'direct', identity: 'direct' }),
        (e: unknown) => e instanceof HostlinkError && e.code === 'usage' && /unspecified address/.test(e.message),
        'the launcher itself refuses it, with no entry at that address',
      );
      // Other loopback addresses are other sockets: 127.0.0.2 and ::1 do not reach the 127.0.0.1 listener, so they stay addresses of their own.
      for (const [h, at] of [['127.0.0.2', `127.0.0.2:${port}`], ['::1', `[::1]:${port}`]] as const) {
        assert.notEqual(await dial(h), 'held', h);
        assert.deepEqual(await register(certs.otherWorker, `distinct ${h}`, 2, at), { ok: true }, at);
      }
      assert.deepEqual(table().sort(), [[addr, 1], [`127.0.0.2:${port}`, 2], [`[::1]:${port}`, 2]].sort());
    } finally {
      listener.close();
    }
  });

  test('a worker must advertise an address to dial: a wildcard --listen needs --advertise, and the unspecified address is never advertised', { timeout: 60_000 }, async () => {
    const cli = (args: string[]): { status: number | null; stderr: string } =>
      spawnSync(process.execPath, [HOSTLINK, 'worker', '--runtime', '127.0.0.1:1', '--slots', '1', ...args], { encoding: 'utf8' });
    // Refused before the TLS files are read: exit 2, one line that says what to give.
    for (const listen of ['0.0.0.0:0', '0:0', '0x0:0', '[::]:0', '[::0]:0', '[::ffff:0.0.0.0]:0']) {
      const r = cli(['--listen', listen]);
      assert.equal(r.status, 2, `${listen}: ${r.stderr}`);
      assert.match(r.stderr, /is a wildcard \(every address\), which is no address to dial: say with --advertise HOST:PORT/, listen);
    }
    for (const advertise of ['0.0.0.0:7420', '0:7420', '[::]:7420', '[::ffff:0.0.0.0]:7420']) {
      const r = cli(['--listen', '0.0.0.0:0', '--advertise', advertise]);
      assert.equal(r.status, 2, `${advertise}: ${r.stderr}`);
      assert.match(r.stderr, /--advertise \S+ is the unspecified address \(0\.0\.0\.0 or ::\), which names no machine to dial/, advertise);
    }
    const help = spawnSync(process.execPath, [HOSTLINK, 'worker', '--help'], { encoding: 'utf8' });
    assert.match(help.stdout, /required when --listen is a wildcard such as\s+0\.0\.0\.0 or \[::\]; never the wildcard itself/);

    // From a program: refused before anything listens.
    const tls = readTlsFiles(certs.worker);
    const started = (options: { listen: { host: string; port: number }; advertise?: string }): Promise<unknown> =>
      startWorker({ runtime: '127.0.0.1:1', slots: 1, tls, launch: { transport: 'unix' }, log: () => undefined, ...options }).then(
        async (w) => {
          await w.stop();
          return `started, announcing ${w.advertised}`;
        },
        (e: unknown) => e,
      );
    for (const options of [{ listen: { host: '0', port: 0 } }, { listen: { host: '::', port: 0 } }, { listen: { host: '127.0.0.1', port: 0 }, advertise: '[::ffff:0:0]:7420' }]) {
      const r = await started(options);
      assert.ok(r instanceof HostlinkError && r.code === 'usage' && /--advertise HOST:PORT/.test(r.message), `${JSON.stringify(options)}: ${String(r)}`);
    }

    // A wildcard written another way, with an address to dial, serves: the node dials the advertised address.
    const host = await openHost({ poolSize: 1 });
    const port = await freePort();
    const w = worker(host, 1, `0:${port}`, { args: ['--advertise', `127.0.0.1:${port}`] });
    await waitFor('the worker to register', () => host.remote!.launcher.workers().length === 1);
    assert.deepEqual(host.remote!.launcher.workers(), [{ addr: `127.0.0.1:${port}`, slots: 1, inUse: 0 }]);
    const kv = await host.deploy(contract('kv-store'));
    const o = await host.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: 'wildcard' }), contextId: id32('advertise-wildcard') });
    assert.equal(o.applied, true, JSON.stringify(o.result));
    await w.kill('SIGTERM');
  });

  test("a worker started with another certificate and a live worker's address is refused and exits 4; the holder keeps serving", { timeout: 120_000 }, async () => {
    const log: string[] = [];
    const host = await openHost({ poolSize: 1 }, log);
    const kv = await host.deploy(contract('kv-store'));
    const port = await freePort();
    const addr = `127.0.0.1:${port}`;
    const holder = worker(host, 1, addr);
    await waitFor('the holder to register', () => host.remote!.launcher.workers().length === 1 && /registered with the node/.test(holder.output()));
    const impostor = worker(host, 7, '127.0.0.1:0', { tls: certs.otherWorker, args: ['--advertise', addr] });
    // On a node that does not tie registrations to certificates, the impostor's 7 slots replace the holder's 1.
    await waitFor('the impostor to be refused or to take the address', () => impostor.child.exitCode !== null || host.remote!.launcher.workers()[0]?.slots === 7);
    assert.equal(await Promise.race([impostor.exit, Promise.resolve('still running')]), 4, impostor.output());
    const refusals = impostor.output().split('\n').filter((l) => l.includes('refused this worker'));
    assert.equal(refusals.length, 1, impostor.output());
    assert.match(refusals[0]!, new RegExp(`refused this worker: worker address ${addr.replace(/\./g, '\\.')} is held by a live registration made with another identity`));
    assert.ok(log.some((l) => l.includes('refused worker registration') && l.includes('held by a live registration')), log.join('\n'));
    assert.deepEqual(host.remote!.launcher.workers().map((w) => [w.addr, w.slots]), [[addr, 1]]);
    const ctx = id32('remote-held-address');
    const o = await host.call({ codeHash: kv, method: 'set', input: json({ key: 'k', value: 'holder' }), contextId: ctx });
    assert.equal(o.applied, true, JSON.stringify(o.result));
    assert.equal(holder.child.exitCode, null, 'the holder lives on');

    // Once the holder is gone and its registration has lapsed, the address is free for another certificate.
    await holder.kill('SIGKILL');
    await waitFor("the holder's registration to lapse", () => host.remote!.launcher.workers().length === 0);
    const successor = worker(host, 2, addr, { tls: certs.otherWorker });
    await waitFor('the successor to register', () => /registered with the node/.test(successor.output()));
    assert.deepEqual(host.remote!.launcher.workers().map((w) => [w.addr, w.slots]), [[addr, 2]]);
  });
});
