/**
 * The guest-to-host command channel's messages, byte-compatible with the IC vsock agent (docs/ops-channel.md):
 *
 * - v1 (current): request `{"sender_cid":3,"message":<command>}`, response `{"Ok":<payload>}` or `{"Err":"text"}`.
 *   Commands and payloads are serde "externally tagged" enums: a unit variant is a bare string
 *   (`"attach-hsm"`), a variant with data is a one-key object (`{"notify":{"count":1,"message":"hi"}}`).
 * - legacy (v0): request `{"sender_cid":"3","message":"notify[2, hi]"}`; success is the exact literal
 *   `LEGACY_ACCEPTED`, anything else is an error text.
 *
 * Encoding is compact JSON with keys in the reference's field order, so our bytes equal serde_json's output.
 * Decoding ignores unknown fields (serde's default) but names unknown commands, so new commands can be
 * added on either side without breaking the other.
 */
import { CANONICAL_UINT, firstDuplicateKey, JsonObjectScanner, rawValueAt } from './json-scan.js';
import { cutText } from '../terminal-text.js';

export const VSOCK_PROTOCOL_VERSION = { major: 1, minor: 0, patch: 0 } as const;
/** Both sides read at most this many bytes of one message (the reference's MAX_MESSAGE_SIZE). */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** What a v0 host answered on success, byte for byte (note the spaces). */
export const LEGACY_ACCEPTED = '{"message": "accepted request", "status": "ok"}';
/** A v1 guest talking to a v0 host answers get-hostos-version itself with this (as the reference does). */
export const LEGACY_HOSTOS_VERSION = '0'.repeat(64);

export interface ProtocolVersion {
  major: number;
  minor: number;
  patch: number;
}

export type Command =
  | { type: 'attach-hsm' }
  | { type: 'detach-hsm' }
  | { type: 'get-hostos-version' }
  | { type: 'get-vsock-protocol' }
  | { type: 'start-upgrade-guest-vm' }
  | { type: 'upgrade'; url: string; targetHash: string }
  | { type: 'set-node-id'; nodeId: string }
  | { type: 'notify'; count: number; message: string };

export type CommandType = Command['type'];

export const COMMAND_TYPES: readonly CommandType[] = [
  'attach-hsm',
  'detach-hsm',
  'get-hostos-version',
  'get-vsock-protocol',
  'start-upgrade-guest-vm',
  'upgrade',
  'set-node-id',
  'notify',
];

export type Payload =
  | { kind: 'NoPayload' }
  | { kind: 'HostOSVersion'; version: string }
  | { kind: 'HostOSVsockVersion'; version: ProtocolVersion }
  /** A payload variant this build does not know (a newer host): kept as parsed JSON. */
  | { kind: 'Unknown'; raw: unknown };

export type Response = { ok: true; payload: Payload } | { ok: false; error: string };

export type RequestFormat = 'v1' | 'legacy';

export interface Request {
  senderCid: number;
  command: Command;
}

/**
 * Why bytes could not be read as a request or response; the agent sends `message` back as the Err text.
 * Internal control flow (src/errors.ts, INTERNAL_ERROR_CLASSES): the agent answers it as a refusal and the
 * client turns it into HostlinkError 'protocol', so it never reaches a caller.
 */
export class WireError extends Error {
  override readonly name = 'WireError';
  /** The request's format when it was recognised: the agent answers in that format. */
  constructor(
    message: string,
    readonly format?: RequestFormat,
  ) {
    super(message);
  }
}

// Wire names of the unit commands; the rest are one-key objects named after their type.
const UNIT_TO_WIRE: Record<string, string> = {
  'attach-hsm': 'attach-hsm',
  'detach-hsm': 'detach-hsm',
  'get-hostos-version': 'GetHostOSVersion',
  'get-vsock-protocol': 'GetVsockProtocol',
  'start-upgrade-guest-vm': 'start-upgrade-guest-vm',
};
const WIRE_TO_UNIT = new Map(Object.entries(UNIT_TO_WIRE).map(([k, v]) => [v, k as CommandType]));

const U32_MAX = 0xffff_ffff;

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The JSON value of a command inside a v1 request (`message`). */
export function commandToJson(c: Command): unknown {
  switch (c.type) {
    case 'upgrade':
      return { upgrade: { url: c.url, 'target-hash': c.targetHash } };
    case 'set-node-id':
      return { 'set-node-id': { 'node-id': c.nodeId } };
    case 'notify':
      return { notify: { count: c.count, message: c.message } };
    default:
      return UNIT_TO_WIRE[c.type];
  }
}

export function encodeRequest(r: Request): Buffer {
  if (!isU32(r.senderCid)) throw new WireError(`sender CID ${r.senderCid} is not a 32-bit unsigned integer`);
  return Buffer.from(JSON.stringify({ sender_cid: r.senderCid, message: commandToJson(r.command) }), 'utf8');
}

export function encodeResponse(r: Response): Buffer {
  return Buffer.from(JSON.stringify(r.ok ? { Ok: payloadToJson(r.payload) } : { Err: r.error }), 'utf8');
}

function payloadToJson(p: Payload): unknown {
  switch (p.kind) {
    case 'NoPayload':
      return 'NoPayload';
    case 'HostOSVersion':
      return { HostOSVersion: p.version };
    case 'HostOSVsockVersion':
      return { HostOSVsockVersion: { major: p.version.major, minor: p.version.minor, patch: p.version.patch } };
    case 'Unknown':
      return p.raw;
  }
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  return parseJsonText(bytes, what).value;
}

function parseJsonText(bytes: Uint8Array, what: string): { text: string; value: unknown } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new WireError(`unable to parse ${what}: not valid UTF-8`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new WireError(`unable to parse ${what}: ${(e as Error).message}`);
  }
  // JSON.parse keeps the last of two fields of one name; serde refuses them, and so do we (one request, one reading).
  const twice = firstDuplicateKey(text);
  if (twice !== undefined) throw new WireError(`unable to parse ${what}: duplicate field \`${twice.slice(0, 64)}\``);
  return { text, value };
}

/**
 * A u32 field checked as written: JSON.parse reads `3.0`, `3e0`, `-0` and `3.0000000000000001` as the integer 3
 * (or 0), which serde would refuse and which would let two spellings name one CID. Only canonical digits pass.
 */
function canonicalU32(text: string, path: readonly string[], v: unknown): v is number {
  if (!isU32(v)) return false;
  const raw = rawValueAt(text, path);
  return raw !== undefined && CANONICAL_UINT.test(raw);
}

/** Reads a v1 command value; throws WireError naming an unknown or malformed command. */
export function commandFromJson(v: unknown): Command {
  if (typeof v === 'string') {
    const t = WIRE_TO_UNIT.get(v);
    if (t) return { type: t } as Command;
    throw new WireError(`unknown command '${v}'`);
  }
  if (!isObject(v) || Object.keys(v).length !== 1) {
    throw new WireError('malformed command: expected a command name or an object with exactly one key');
  }
  const [name, body] = Object.entries(v)[0]!;
  const fields = isObject(body) ? body : undefined;
  const str = (key: string): string => {
    const s = fields?.[key];
    if (typeof s !== 'string') throw new WireError(`malformed '${name}' command: field '${key}' must be a string`);
    return s;
  };
  switch (name) {
    case 'upgrade':
      return { type: 'upgrade', url: str('url'), targetHash: str('target-hash') };
    case 'set-node-id':
      return { type: 'set-node-id', nodeId: str('node-id') };
    case 'notify': {
      const count = fields?.['count'];
      if (!isU32(count)) throw new WireError(`malformed 'notify' command: field 'count' must be an unsigned 32-bit integer`);
      return { type: 'notify', count, message: str('message') };
    }
    default:
      if (WIRE_TO_UNIT.has(name)) throw new WireError(`malformed command: '${name}' takes no data`);
      throw new WireError(`unknown command '${name}'`);
  }
}

/**
 * Reads a request in either format. A v1 envelope (numeric sender_cid) with an unknown command is reported as
 * such rather than retried as legacy, so the guest learns the command is unknown, not that its JSON is bad.
 */
export function decodeRequest(bytes: Uint8Array): { format: RequestFormat; request: Request } {
  const { text, value: v } = parseJsonText(bytes, 'client request');
  if (!isObject(v) || !('sender_cid' in v) || !('message' in v)) {
    throw new WireError("unable to parse client request: expected an object with 'sender_cid' and 'message'");
  }
  const cid = v['sender_cid'];
  if (typeof cid === 'number') {
    if (!canonicalU32(text, ['sender_cid'], cid)) {
      const raw = (rawValueAt(text, ['sender_cid']) ?? String(cid)).slice(0, 40);
      throw new WireError(`unable to parse client request: sender_cid ${raw} is not a 32-bit unsigned integer written as plain digits`);
    }
    try {
      const command = commandFromJson(v['message']);
      if (command.type === 'notify' && !canonicalU32(text, ['message', 'notify', 'count'], command.count)) {
        throw new WireError(`malformed 'notify' command: field 'count' must be an unsigned 32-bit integer written as plain digits`);
      }
      return { format: 'v1', request: { senderCid: cid, command } };
    } catch (e) {
      throw e instanceof WireError ? new WireError(e.message, 'v1') : e;
    }
  }
  if (typeof cid === 'string' && typeof v['message'] === 'string') {
    try {
      return { format: 'legacy', request: decodeLegacyFields(cid, v['message']) };
    } catch (e) {
      throw e instanceof WireError ? new WireError(e.message, 'legacy') : e;
    }
  }
  throw new WireError('unable to parse client request: sender_cid must be a number (or a string in the legacy format)');
}

function decodeLegacyFields(cidText: string, message: string): Request {
  if (!/^\d{1,10}$/.test(cidText) || !CANONICAL_UINT.test(cidText) || Number(cidText) > U32_MAX) {
    throw new WireError(`legacy request: sender_cid '${cidText.slice(0, 40)}' is not a 32-bit unsigned integer written as plain digits`);
  }
  return { senderCid: Number(cidText), command: parseLegacyCommand(message) };
}

/**
 * Legacy command strings: `attach-hsm`, `detach-hsm`, `set-node-id[ID]`, `notify[COUNT, MESSAGE]`,
 * `upgrade[URL HASH]` (a space may precede the bracket).
 */
export function parseLegacyCommand(text: string): Command {
  // Split by hand, in linear time: adjacent optional spaces in one pattern backtracked quadratically (65,000
  // spaces then any other character held the agent for seconds).
  const trimmed = text.trim();
  const name = /^[a-z-]+/.exec(trimmed)?.[0];
  const rest = name === undefined ? '' : trimmed.slice(name.length).trimStart();
  const bracketed = rest.startsWith('[') && rest.endsWith(']');
  if (name === undefined || (rest !== '' && !bracketed)) {
    throw new WireError(`legacy request: could not match '${cutText(text, 80)}' to a command`);
  }
  const args = bracketed ? rest.slice(1, -1) : undefined;
  switch (name) {
    case 'attach-hsm':
    case 'detach-hsm':
      if (args !== undefined && args.trim() !== '') throw new WireError(`legacy request: '${name}' takes no arguments`);
      return { type: name };
    case 'set-node-id':
      if (args === undefined || args.trim() === '') throw new WireError('legacy request: set-node-id needs [NODE_ID]');
      return { type: 'set-node-id', nodeId: args.trim() };
    case 'notify': {
      const n = /^\s*(\d+)\s*,?\s*(.*)$/s.exec(args ?? '');
      if (!n) throw new WireError('legacy request: notify needs [COUNT, MESSAGE]');
      if (n[1]!.length > 10 || Number(n[1]) > U32_MAX) throw new WireError(`legacy request: notify's COUNT ${n[1]!.slice(0, 24)}${n[1]!.length > 24 ? '…' : ''} is over ${U32_MAX}, the largest count`);
      return { type: 'notify', count: Number(n[1]), message: n[2]!.trim() };
    }
    case 'upgrade': {
      const u = /^\s*(\S+)\s+(\S+)\s*$/.exec(args ?? '');
      if (!u) throw new WireError('legacy request: upgrade needs [URL HASH]');
      return { type: 'upgrade', url: u[1]!, targetHash: u[2]! };
    }
    default:
      throw new WireError(`legacy request: unknown command '${name}'`);
  }
}

/** The legacy command string for a command, or undefined for commands a v0 host does not have. */
export function legacyCommandString(c: Command): string | undefined {
  switch (c.type) {
    case 'attach-hsm':
    case 'detach-hsm':
      return c.type;
    case 'set-node-id':
      return `set-node-id[${c.nodeId}]`;
    case 'upgrade':
      return `upgrade[${c.url} ${c.targetHash}]`;
    case 'notify':
      return `notify[${c.count}, ${c.message}]`;
    default:
      return undefined;
  }
}

export function encodeLegacyRequest(r: Request): Buffer {
  const message = legacyCommandString(r.command);
  if (message === undefined) throw new WireError(`the legacy (v0) format has no '${r.command.type}' command`);
  return Buffer.from(JSON.stringify({ sender_cid: String(r.senderCid), message }), 'utf8');
}

/** The agent's answer to a legacy request: the accepted literal, or an error object in the same style. */
export function encodeLegacyResponse(r: Response): Buffer {
  if (r.ok) return Buffer.from(LEGACY_ACCEPTED, 'utf8');
  return Buffer.from(`{"message": ${JSON.stringify(r.error)}, "status": "error"}`, 'utf8');
}

/** Reads a v1 response; throws WireError when the bytes are not one. */
export function decodeResponse(bytes: Uint8Array): Response {
  const v = parseJson(bytes, 'host response');
  if (isObject(v) && Object.keys(v).length === 1) {
    if ('Err' in v) {
      if (typeof v['Err'] !== 'string') throw new WireError('unable to parse host response: Err must carry a string');
      return { ok: false, error: v['Err'] };
    }
    if ('Ok' in v) return { ok: true, payload: payloadFromJson(v['Ok']) };
  }
  throw new WireError('unable to parse host response: expected {"Ok":...} or {"Err":"..."}');
}

function payloadFromJson(v: unknown): Payload {
  if (v === 'NoPayload') return { kind: 'NoPayload' };
  if (isObject(v) && Object.keys(v).length === 1) {
    if (typeof v['HostOSVersion'] === 'string') return { kind: 'HostOSVersion', version: v['HostOSVersion'] };
    const ver = v['HostOSVsockVersion'];
    if (isObject(ver) && isU32(ver['major']) && isU32(ver['minor']) && isU32(ver['patch'])) {
      return { kind: 'HostOSVsockVersion', version: { major: ver['major'], minor: ver['minor'], patch: ver['patch'] } };
    }
  }
  return { kind: 'Unknown', raw: v };
}

/** Reads a reply to a legacy request: the accepted literal is success, anything else is the error text. */
export function decodeLegacyResponse(bytes: Uint8Array): Response {
  const text = Buffer.from(bytes).toString('utf8');
  if (text === LEGACY_ACCEPTED) return { ok: true, payload: { kind: 'NoPayload' } };
  // Our own agent sends errors as {"message": ..., "status": "error"}; show just the message then.
  try {
    const v: unknown = JSON.parse(text);
    if (isObject(v) && v['status'] === 'error' && typeof v['message'] === 'string') return { ok: false, error: v['message'] };
  } catch {
    // not JSON: the whole text is the error
  }
  return { ok: false, error: text };
}

export function formatVersion(v: ProtocolVersion): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

/** True when `bytes` is one complete JSON object (optionally followed by whitespace); linear in the input. */
export function isCompleteJson(bytes: Uint8Array): boolean {
  const scanner = new JsonObjectScanner();
  const end = scanner.feed(bytes);
  if (end < 0) return false;
  for (let i = end; i < bytes.length; i++) if (bytes[i] !== 0x20 && bytes[i] !== 0x0a && bytes[i] !== 0x0d && bytes[i] !== 0x09) return false;
  try {
    JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    return true;
  } catch {
    return false;
  }
}
