/**
 * The VM process (`hostlink vm`) as a black box: real processes, real sockets, a scripted host.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encodeFrame, FrameReader } from '../../src/protocol/frame.js';
import { decodeRequest, encodeOk, encodeStatus } from '../../src/protocol/messages.js';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { checkHelloProof, newVmSecret } from '../../src/protocol/hello-proof.js';
import { channelInfo } from '../../src/transport/connect.js';
import { decodeResult, type ExecutionResult } from '../../src/protocol/result.js';
import { GAS_SCHEDULE_VERSION } from '../../src/vm/host-functions.generated.js';
import { INSTRUMENTATION_VERSION } from '../../src/vm/instrument/index.js';
import { exitAfterOutput, message, sha256, tempDir, utf8 } from '../helpers.js';

interface VmRun {
  code: number | null;
  stderr: string;
}

function runVm(args: string[], stdin?: string): Promise<VmRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [HOSTLINK_BIN, 'vm', ...args], { stdio: [stdin === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
    if (stdin !== undefined) child.stdin?.end(stdin);
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    void exitAfterOutput(child).then((s) => resolve({ code: s.code, stderr }));
  });
}

/** A host that answers each request with `answer(method)`; undefined closes the connection. */
function scriptedHost(path: string, answer: (method: string, socket: Socket) => Uint8Array | undefined): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      const reader = new FrameReader();
      socket.on('data', (chunk) => {
        for (const body of reader.push(chunk)) {
          const reply = answer(decodeRequest(body).method, socket);
          if (reply === undefined) socket.destroy();
          else socket.write(encodeFrame(reply));
        }
      });
      socket.on('error', () => undefined);
    });
    server.listen(path, () => resolve(server));
  });
}

const validMessage = message({ codeHash: sha256(utf8('x')), method: 'get' });

describe('hostlink vm', () => {
  test('a malformed message is exit 2 with the field named, before any connection', async () => {
    const r = await runVm(['--host', 'unix:///nonexistent/hostlink.sock', '--message', '{"method":"get"}']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /invalid message: field 'code_hash' is required/);
  });

  test('a message of another release\'s gas schedule is exit 2 with the field named, before any connection', async () => {
    const other = { ...(JSON.parse(validMessage) as object), gas_schedule_version: GAS_SCHEDULE_VERSION + 1 };
    const r = await runVm(['--host', 'unix:///nonexistent/hostlink.sock', '--message', JSON.stringify(other)]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`field 'gas_schedule_version' asks for gas schedule version ${GAS_SCHEDULE_VERSION + 1}, but this VM \\(gas schedule version ${GAS_SCHEDULE_VERSION}\\) is of another Hostlink release`));
  });

  test('a pool VM refuses a message of another release\'s instrumentation, says why in its result, and goes on serving', async () => {
    const dir = tempDir();
    const sock = join(dir.path, 'h.sock');
    const ours = JSON.parse(validMessage) as Record<string, unknown>;
    assert.equal(ours.instrumentation_version, INSTRUMENTATION_VERSION, 'the host writes its own version into the message');
    const queue = [JSON.stringify({ ...ours, instrumentation_version: INSTRUMENTATION_VERSION + 1 })];
    const requests: string[] = [];
    let result: ExecutionResult | undefined;
    const server = createServer((socket) => {
      const reader = new FrameReader();
      socket.on('data', (chunk) => {
        for (const body of reader.push(chunk)) {
          const req = decodeRequest(body);
          requests.push(req.method);
          let reply: Uint8Array;
          if (req.method === 'hello') reply = encodeOk('hello', { version: 1, hostVersion: 'test' });
          else if (req.method === 'next_message') {
            const m = queue.shift();
            reply = m === undefined ? encodeStatus('absent', {}) : encodeOk('next_message', { message: m });
          } else if (req.method === 'consume_result') {
            result = decodeResult((req.fields as { result: Uint8Array }).result);
            reply = encodeOk('consume_result', {});
          } else reply = encodeStatus('absent', {});
          socket.write(encodeFrame(reply));
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      const r = await runVm(['--host', `unix://${sock}`]);
      assert.deepEqual(r, { code: 0, stderr: '' });
      // Refused before anything ran: no get_code, no storage read; then it asked for more work.
      assert.deepEqual(requests, ['hello', 'next_message', 'consume_result', 'next_message']);
      assert.equal(result?.code, 'internal_error');
      assert.match((result as { message: string }).message, new RegExp(`^invalid_message invalid message: field 'instrumentation_version' asks for instrumentation version ${INSTRUMENTATION_VERSION + 1}, but this VM`));
    } finally {
      server.close();
      dir.remove();
    }
  });

  test('bad arguments are exit 2', async () => {
    assert.equal((await runVm(['--message', validMessage])).code, 2);
    const bad = await runVm(['--host', 'nowhere', '--message', validMessage]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid host address 'nowhere'/);
  });

  test('an unreachable host is exit 4 with the address named', async () => {
    const r = await runVm(['--host', 'unix:///nonexistent/hostlink.sock', '--message', validMessage]);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /unix:\/\/\/nonexistent\/hostlink\.sock/);
  });

  test('no common protocol version is exit 3 naming both ranges and what to upgrade', async () => {
    const dir = tempDir();
    const sock = join(dir.path, 'h.sock');
    const server = await scriptedHost(sock, () => encodeStatus('incompatible_version', { hostMin: 2, hostMax: 3 }));
    try {
      const r = await runVm(['--host', `unix://${sock}`, '--message', validMessage]);
      assert.equal(r.code, 3);
      assert.match(r.stderr, /this VM \(hostlink [^)]+\) speaks 1\.\.1, the host speaks 2\.\.3; upgrade the VM/);
    } finally {
      server.close();
      dir.remove();
    }
  });

  for (const channel of ['native', 'js'] as const) {
    const skip = channel === 'native' && !channelInfo().native.available && 'the native channel is not built (no C compiler)';
    test(`${channel} channel: the VM exits (code 4), not hangs, when the host closes the connection mid-execution`, { skip }, async () => {
      const dir = tempDir();
      const sock = join(dir.path, 'h.sock');
      const server = await scriptedHost(sock, (method) => (method === 'hello' ? encodeOk('hello', { version: 1, hostVersion: 'test' }) : undefined));
      try {
        const r = await runVm(['--host', `unix://${sock}`, '--message', validMessage, '--channel', channel]);
        assert.equal(r.code, 4);
        assert.match(r.stderr, /the host closed the connection/);
      } finally {
        server.close();
        dir.remove();
      }
    });
  }

  test('a malformed secret on stdin is exit 2, before any connection', async () => {
    const r = await runVm(['--host', 'unix:///nonexistent/hostlink.sock'], 'not-a-secret\n');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /the VM secret on stdin must be 64 lowercase hex characters/);
  });

  test('the hello carries the proof of the secret given on stdin', async () => {
    const dir = tempDir();
    const sock = join(dir.path, 'h.sock');
    const secret = newVmSecret();
    let proved: boolean | undefined;
    const server = createServer((socket) => {
      const reader = new FrameReader();
      socket.on('data', (chunk) => {
        for (const body of reader.push(chunk)) {
          if (proved === undefined) proved = checkHelloProof(secret, body);
          socket.write(encodeFrame(decodeRequest(body).method === 'hello' ? encodeOk('hello', { version: 1, hostVersion: 'test' }) : encodeStatus('absent', {})));
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      const r = await runVm(['--host', `unix://${sock}`], `${secret.toString('hex')}\n`);
      assert.deepEqual(r, { code: 0, stderr: '' });
      assert.equal(proved, true);
    } finally {
      server.close();
      dir.remove();
    }
  });

  test('pool mode exits 0 when the host has no more work', async () => {
    const dir = tempDir();
    const sock = join(dir.path, 'h.sock');
    const server = await scriptedHost(sock, (method) =>
      method === 'hello' ? encodeOk('hello', { version: 1, hostVersion: 'test' }) : encodeStatus('absent', {}),
    );
    try {
      const r = await runVm(['--host', `unix://${sock}`]);
      assert.deepEqual(r, { code: 0, stderr: '' });
    } finally {
      server.close();
      dir.remove();
    }
  });
});
