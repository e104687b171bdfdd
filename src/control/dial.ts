/**
 * One exchange on the command channel, from the guest's side: connect, write the request, half-close (so the
 * host reads to EOF), read the reply to EOF with a size cap. One request per connection, as in the reference.
 */
import { connect, type Socket } from 'node:net';
import { HostlinkError, type HostlinkErrorCode } from '../errors.js';
import { formatControlAddress, type ControlAddress } from './address.js';
import { socatErrors, socatStartError, spawnSocat } from './socat.js';
import { MAX_MESSAGE_BYTES } from './wire.js';

export interface ExchangeOptions {
  /** Connecting (and the hybrid-vsock CONNECT handshake). Default 5 s. */
  connectTimeoutMs?: number;
  /** Writing the request. Default 5 s. */
  writeTimeoutMs?: number;
  /** Waiting for the whole reply. Default 300 s: an upgrade downloads and installs before it answers. */
  replyTimeoutMs?: number;
  maxReplyBytes?: number;
  socatPath?: string;
}

/**
 * An exchange that failed. `reached` tells whether the request was handed to the host (connected, request
 * written) before the failure: a legacy host that reboots during an upgrade hangs up after that point.
 */
export class ExchangeError extends HostlinkError {
  constructor(
    code: HostlinkErrorCode,
    message: string,
    readonly reached: boolean,
  ) {
    super(code, message);
  }
}

const MAX_HANDSHAKE_LINE = 256;

export function exchange(address: ControlAddress, request: Uint8Array, options: ExchangeOptions = {}): Promise<Buffer> {
  return address.kind === 'vsock' ? exchangeSocat(address, request, options) : exchangeNet(address, request, options);
}

function exchangeNet(address: ControlAddress & { kind: 'unix' | 'tcp' }, request: Uint8Array, o: ExchangeOptions): Promise<Buffer> {
  const where = formatControlAddress(address);
  const connectMs = o.connectTimeoutMs ?? 5_000;
  const writeMs = o.writeTimeoutMs ?? 5_000;
  const replyMs = o.replyTimeoutMs ?? 300_000;
  const max = o.maxReplyBytes ?? MAX_MESSAGE_BYTES;
  const hybridPort = address.kind === 'unix' ? address.vsockPort : undefined;

  return new Promise<Buffer>((resolve, reject) => {
    const sock: Socket = address.kind === 'tcp' ? connect({ host: address.host, port: address.port }) : connect(address.path);
    let phase: 'connect' | 'handshake' | 'write' | 'reply' | 'done' = 'connect';
    let handshake = Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let size = 0;
    let timer = setTimeout(() => fail('timeout', `could not connect to ${where} within ${connectMs} ms`), connectMs);

    const fail = (code: HostlinkErrorCode, message: string): void => {
      if (phase === 'done') return;
      const reached = phase === 'reply';
      phase = 'done';
      clearTimeout(timer);
      sock.destroy();
      reject(new ExchangeError(code, message, reached));
    };
    const arm = (ms: number, what: string): void => {
      clearTimeout(timer);
      timer = setTimeout(() => fail('timeout', `${what} (${ms} ms) talking to ${where}`), ms);
    };
    const sendRequest = (): void => {
      phase = 'write';
      arm(writeMs, 'timed out writing the request');
      // end() writes and then shuts down our write side: the host reads to EOF.
      sock.end(request);
    };
    const onReplyData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) return fail('protocol', `the reply from ${where} is larger than ${max} bytes`);
      chunks.push(chunk);
    };

    sock.on('connect', () => {
      if (hybridPort === undefined) return sendRequest();
      phase = 'handshake';
      arm(connectMs, 'no answer to the hybrid vsock CONNECT');
      sock.write(`CONNECT ${hybridPort}\n`);
    });
    sock.on('finish', () => {
      if (phase !== 'write') return;
      phase = 'reply';
      arm(replyMs, 'timed out waiting for the reply');
    });
    sock.on('data', (chunk: Buffer) => {
      if (phase === 'handshake') {
        handshake = Buffer.concat([handshake, chunk]);
        const nl = handshake.indexOf(0x0a);
        if (nl < 0) {
          if (handshake.length > MAX_HANDSHAKE_LINE) fail('protocol', `hybrid vsock: the VMM at ${where} sent no line in answer to CONNECT`);
          return;
        }
        const line = handshake.subarray(0, nl).toString('utf8').trim();
        if (!/^OK(\s|$)/.test(line)) {
          return fail('channel_closed', `hybrid vsock: ${where} answered '${line}' to CONNECT ${hybridPort}: is the agent listening on port ${hybridPort} in the VM?`);
        }
        const rest = handshake.subarray(nl + 1);
        sendRequest();
        if (rest.length > 0) onReplyData(rest);
        return;
      }
      if (phase === 'write' || phase === 'reply') onReplyData(chunk);
    });
    sock.on('end', () => {
      if (phase === 'handshake') {
        return fail('channel_closed', `hybrid vsock: ${where} closed the connection after CONNECT ${hybridPort}: nothing listens on that port in the VM`);
      }
      if (phase !== 'reply' && phase !== 'write') return;
      if (size === 0) {
        phase = 'reply';
        return fail('channel_closed', `the host at ${where} closed the connection without replying`);
      }
      phase = 'done';
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      const text = phase === 'connect' ? `could not connect to ${where}: ${err.message}` : `connection to ${where} failed: ${err.message}`;
      fail('channel_closed', text);
    });
    sock.on('close', () => fail('channel_closed', `the connection to ${where} closed unexpectedly`));
  });
}

/**
 * vsock via `socat - VSOCK-CONNECT:cid:port`: our request goes to its stdin, which we then close, and socat turns
 * that EOF into a half-close of the vsock; the reply comes back on its stdout. `-d -d` makes socat say when the
 * connection is up, which tells "could not connect" from "connected, then the host hung up".
 */
function exchangeSocat(address: ControlAddress & { kind: 'vsock' }, request: Uint8Array, o: ExchangeOptions): Promise<Buffer> {
  const where = formatControlAddress(address);
  const socatPath = o.socatPath ?? 'socat';
  const connectMs = o.connectTimeoutMs ?? 5_000;
  const replyMs = (o.connectTimeoutMs ?? 5_000) + (o.writeTimeoutMs ?? 5_000) + (o.replyTimeoutMs ?? 300_000);
  const max = o.maxReplyBytes ?? MAX_MESSAGE_BYTES;
  const args = [
    '-d',
    '-d',
    // After our EOF, keep the reply direction open as long as we are willing to wait.
    '-t',
    String(Math.ceil(replyMs / 1000)),
    '-',
    `VSOCK-CONNECT:${address.cid}:${address.port},connect-timeout=${Math.max(1, Math.ceil(connectMs / 1000))}`,
  ];

  return new Promise<Buffer>((resolve, reject) => {
    const child = spawnSocat(socatPath, args);
    let stderr = '';
    let connected = false;
    let done = false;
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: ExchangeError | undefined, value?: Buffer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => finish(new ExchangeError('timeout', `no reply from ${where} within ${replyMs} ms`, connected)), replyMs);

    child.on('error', (err: NodeJS.ErrnoException) => {
      const e = socatStartError(socatPath, err);
      finish(new ExchangeError(e.code, e.message, false));
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      if (stderr.length < 16_384) stderr += s;
      if (stderr.includes('starting data transfer loop')) connected = true;
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) return finish(new ExchangeError('protocol', `the reply from ${where} is larger than ${max} bytes`, true));
      chunks.push(chunk);
    });
    child.stdin!.on('error', () => {
      // EPIPE when socat exits before reading: reported through the exit below.
    });
    child.stdin!.end(request);
    child.on('close', (code) => {
      if (size > 0) return finish(undefined, Buffer.concat(chunks));
      const errors = socatErrors(stderr);
      const why = errors.length > 0 ? errors.join('; ') : `socat exited with code ${code}`;
      if (!connected) return finish(new ExchangeError('channel_closed', `could not connect to ${where}: ${why}`, false));
      finish(new ExchangeError('channel_closed', `the host at ${where} closed the connection without replying${errors.length ? `: ${why}` : ''}`, true));
    });
  });
}
