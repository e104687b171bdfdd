/**
 * The slot preamble: the few bytes a node and a remote worker exchange on a fresh TLS connection before the
 * connection carries protocol v1 between the node and one VM.
 *
 *   node -> worker (request):  "HLWK" | version u8 (2) | kind u8 (1 = run a VM) | token length u16 BE |
 *                              secret (VM_SECRET_BYTES) | token (UTF-8, may be empty)
 *   worker -> node (reply):    "HLWK" | version u8 (2) | status u8 | VM pid u32 BE | message length u16 BE |
 *                              message (UTF-8)
 *
 * Status 0 (ok): the worker started a VM with that secret; from the next byte on, the connection is a relay
 * between the node and that VM (raw towards the VM, DATA frames then one EXIT frame towards the node:
 * relay.ts), starting with the VM's hello, whose proof the node checks itself
 * (proveConnection), so the worker cannot answer for a VM that does not hold the secret. Any other status
 * (1 busy, 2 refused, 3 could not start a VM) carries a one-line reason and the worker closes the connection.
 * The secret crosses the network only inside TLS, to a worker whose certificate the node verified.
 */
import { VM_SECRET_BYTES } from '../protocol/generated.js';

export const PREAMBLE_MAGIC = Buffer.from('HLWK', 'ascii');
/** 2: the worker -> node direction after the reply is framed (relay.ts); version 1 relayed it raw. */
export const PREAMBLE_VERSION = 2;
const KIND_RUN_VM = 1;
const REQUEST_HEAD = 4 + 1 + 1 + 2;
const REPLY_HEAD = 4 + 1 + 1 + 4 + 2;
/** A token or a reason longer than this is refused without being buffered. */
export const MAX_PREAMBLE_TEXT_BYTES = 1024;

export const SLOT_STATUS = { ok: 0, busy: 1, refused: 2, startFailed: 3 } as const;
export type SlotStatus = (typeof SLOT_STATUS)[keyof typeof SLOT_STATUS];

export interface SlotRequest {
  secret: Buffer;
  token: string;
}

export interface SlotReply {
  status: SlotStatus;
  pid: number;
  message: string;
}

export function encodeRequest(secret: Uint8Array, token = ''): Buffer {
  const t = Buffer.from(token, 'utf8');
  if (secret.length !== VM_SECRET_BYTES) throw new RangeError(`a VM secret is ${VM_SECRET_BYTES} bytes`);
  if (t.length > MAX_PREAMBLE_TEXT_BYTES) throw new RangeError(`a worker token is at most ${MAX_PREAMBLE_TEXT_BYTES} bytes`);
  const head = Buffer.alloc(REQUEST_HEAD);
  PREAMBLE_MAGIC.copy(head, 0);
  head.writeUInt8(PREAMBLE_VERSION, 4);
  head.writeUInt8(KIND_RUN_VM, 5);
  head.writeUInt16BE(t.length, 6);
  return Buffer.concat([head, secret, t]);
}

export function encodeReply(status: SlotStatus, pid: number, message = ''): Buffer {
  const m = Buffer.from(message, 'utf8').subarray(0, MAX_PREAMBLE_TEXT_BYTES);
  const head = Buffer.alloc(REPLY_HEAD);
  PREAMBLE_MAGIC.copy(head, 0);
  head.writeUInt8(PREAMBLE_VERSION, 4);
  head.writeUInt8(status, 5);
  head.writeUInt32BE(pid >>> 0, 6);
  head.writeUInt16BE(m.length, 10);
  return Buffer.concat([head, m]);
}

/** A parse result: the value and the bytes after it, 'more' when incomplete, or an error string. */
export type Parsed<T> = { value: T; rest: Buffer } | 'more' | { error: string };

function checkHead(buf: Buffer): string | undefined {
  const n = Math.min(buf.length, 4);
  if (!buf.subarray(0, n).equals(PREAMBLE_MAGIC.subarray(0, n))) return 'not a Hostlink worker preamble';
  if (buf.length > 4 && buf[4] !== PREAMBLE_VERSION) return `worker preamble version ${buf[4]} is not ${PREAMBLE_VERSION}`;
  return undefined;
}

export function parseRequest(buf: Buffer): Parsed<SlotRequest> {
  const bad = checkHead(buf);
  if (bad !== undefined) return { error: bad };
  if (buf.length < REQUEST_HEAD) return 'more';
  if (buf[5] !== KIND_RUN_VM) return { error: `unknown worker request kind ${buf[5]}` };
  const tokenLength = buf.readUInt16BE(6);
  if (tokenLength > MAX_PREAMBLE_TEXT_BYTES) return { error: 'worker token too long' };
  const end = REQUEST_HEAD + VM_SECRET_BYTES + tokenLength;
  if (buf.length < end) return 'more';
  return {
    value: {
      secret: Buffer.from(buf.subarray(REQUEST_HEAD, REQUEST_HEAD + VM_SECRET_BYTES)),
      token: buf.subarray(REQUEST_HEAD + VM_SECRET_BYTES, end).toString('utf8'),
    },
    rest: buf.subarray(end),
  };
}

export function parseReply(buf: Buffer): Parsed<SlotReply> {
  const bad = checkHead(buf);
  if (bad !== undefined) return { error: bad };
  if (buf.length < REPLY_HEAD) return 'more';
  const status = buf[5]!;
  if (!Object.values(SLOT_STATUS).includes(status as SlotStatus)) return { error: `unknown worker reply status ${status}` };
  const length = buf.readUInt16BE(10);
  if (length > MAX_PREAMBLE_TEXT_BYTES) return { error: 'worker reply too long' };
  if (buf.length < REPLY_HEAD + length) return 'more';
  return {
    value: { status: status as SlotStatus, pid: buf.readUInt32BE(6), message: buf.subarray(REPLY_HEAD, REPLY_HEAD + length).toString('utf8') },
    rest: buf.subarray(REPLY_HEAD + length),
  };
}

/**
 * Reads one preamble from a socket: resolves with the parsed value once complete, pushing any bytes after it
 * back (unshift) and leaving the socket paused; rejects on a malformed preamble, on close, or after `timeoutMs`.
 */
export function readPreamble<T>(
  socket: import('node:net').Socket,
  parse: (buf: Buffer) => Parsed<T>,
  timeoutMs: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (error: Error | null, value?: T, rest?: Buffer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('end', onClose);
      if (error) return reject(error);
      socket.pause();
      if (rest !== undefined && rest.length > 0) socket.unshift(rest);
      resolve(value as T);
    };
    const timer = setTimeout(() => finish(new Error(`no preamble within ${timeoutMs} ms`)), timeoutMs);
    const onClose = (): void => finish(new Error('the connection closed during the preamble'));
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const parsed = parse(buf);
      if (parsed === 'more') return;
      if ('error' in parsed) return finish(new Error(parsed.error));
      finish(null, parsed.value, parsed.rest);
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('end', onClose);
    socket.resume();
  });
}
