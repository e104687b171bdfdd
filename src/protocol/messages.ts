/**
 * Requests and responses of protocol v1, encoded by walking the schemas generated from protocol/methods.json.
 *
 * Request body:  u8 method id, then the method's request fields.
 * Response body: u8 status, then the method's response fields (status ok) or the status's payload fields.
 */
import { HostlinkError } from '../errors.js';
import {
  MAX_FRAME_BYTES,
  METHOD_NAMES,
  METHOD_SCHEMAS,
  STATUS_CODES,
  STATUS_NAMES,
  STATUS_PAYLOADS,
  Status,
  type MethodName,
  type StatusName,
} from './generated.js';
import { WireReader, WireWriter, type WireType, type WireTypes } from './wire.js';

interface FieldSpec {
  readonly name: string;
  readonly type: WireType;
  /** A list field's bound (protocol/methods.json max_items), checked before its items are read. */
  readonly maxItems?: number;
}
type Fields<S extends readonly FieldSpec[]> = { [F in S[number] as F['name']]: WireTypes[F['type']] };

export type RequestOf<M extends MethodName> = Fields<(typeof METHOD_SCHEMAS)[M]['request']>;
export type ResponseOf<M extends MethodName> = Fields<(typeof METHOD_SCHEMAS)[M]['response']>;
type ErrorStatus = Exclude<StatusName, 'ok'>;
export type StatusPayloadOf<S extends ErrorStatus> = Fields<(typeof STATUS_PAYLOADS)[S]>;

/** A decoded request: the method name and its fields. */
export type AnyRequest = { [M in MethodName]: { method: M; fields: RequestOf<M> } }[MethodName];

/** A decoded response to method M. */
export type Response<M extends MethodName> =
  | { status: 'ok'; fields: ResponseOf<M> }
  | { [S in ErrorStatus]: { status: S; fields: StatusPayloadOf<S> } }[ErrorStatus];

const STATUS_BY_CODE: (StatusName | undefined)[] = [];
for (const name of STATUS_NAMES) STATUS_BY_CODE[STATUS_CODES[name]] = name;
const METHOD_BY_ID: (MethodName | undefined)[] = [];
for (const name of METHOD_NAMES) METHOD_BY_ID[METHOD_SCHEMAS[name].id] = name;

/** Most keys one storage_read_many may ask for (protocol/methods.json): the VM reads more in several requests. */
export const MAX_BATCH_KEYS: number = METHOD_SCHEMAS.storage_read_many.request[0].maxItems;

function writeFields(w: WireWriter, specs: readonly FieldSpec[], values: Record<string, unknown>): void {
  for (const f of specs) {
    const v = values[f.name];
    if (v === undefined) throw new HostlinkError('internal', `missing field ${f.name}`);
    w.field(f.type, v as WireTypes[typeof f.type]);
  }
}

function readFields(r: WireReader, specs: readonly FieldSpec[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of specs) out[f.name] = r.field(f.type, f.name, f.maxItems);
  r.done();
  return out;
}

export function encodeRequest<M extends MethodName>(method: M, fields: RequestOf<M>): Uint8Array {
  const schema = METHOD_SCHEMAS[method];
  const w = new WireWriter();
  w.u8(schema.id);
  writeFields(w, schema.request, fields as Record<string, unknown>);
  return w.finish();
}

/** Decodes a request body. Throws HostlinkError('protocol') for an unknown method, truncation or trailing bytes. */
export function decodeRequest(body: Uint8Array): AnyRequest {
  if (body.length === 0) throw new HostlinkError('protocol', 'empty request frame');
  const method = METHOD_BY_ID[body[0]!];
  if (method === undefined) throw new HostlinkError('protocol', `unknown method id ${body[0]}`);
  const r = new WireReader(body.subarray(1), `${method} request`);
  return { method, fields: readFields(r, METHOD_SCHEMAS[method].request) } as AnyRequest;
}

const textBytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Encoded size of one field, computed without encoding it. */
function fieldSize(type: WireType, value: unknown): number {
  switch (type) {
    case 'u8':
      return 1;
    case 'u32':
      return 4;
    case 'u64':
      return 8;
    case 'bytes32':
      return 32;
    case 'bytes':
      return 4 + (value as Uint8Array).length;
    case 'string':
      return 4 + textBytes(value as string);
    case 'bytes_list':
      return (value as Uint8Array[]).reduce((n, b) => n + 4 + b.length, 4);
    case 'maybe_bytes_list':
      return (value as (Uint8Array | null)[]).reduce((n, b) => n + 1 + (b === null ? 0 : 4 + b.length), 4);
    default:
      throw new HostlinkError('internal', `unknown wire type ${String(type)}`);
  }
}

/**
 * Encodes an ok response, or, when its body would exceed `maxBytes` (the frame limit), a `limit_exceeded`
 * naming the size instead. The size is computed before anything is allocated: no response larger than a
 * frame is ever built.
 */
/** Bytes of the ok response of `method` carrying `fields`: what encodeOk builds, sized before it is built. */
export function okResponseSize<M extends MethodName>(method: M, fields: ResponseOf<M>): number {
  const specs: readonly FieldSpec[] = METHOD_SCHEMAS[method].response;
  const values = fields as Record<string, unknown>;
  return specs.reduce((n, f) => n + (values[f.name] === undefined ? 0 : fieldSize(f.type, values[f.name])), 1);
}

export function encodeOk<M extends MethodName>(method: M, fields: ResponseOf<M>, maxBytes: number = MAX_FRAME_BYTES): Uint8Array {
  const size = okResponseSize(method, fields);
  if (size > maxBytes) {
    return encodeStatus('limit_exceeded', { reason: `${method} response of ${size} bytes exceeds the ${maxBytes}-byte frame limit` });
  }
  const w = new WireWriter(size);
  w.u8(Status.Ok);
  writeFields(w, METHOD_SCHEMAS[method].response, fields as Record<string, unknown>);
  return w.finish();
}

export function encodeStatus<S extends ErrorStatus>(status: S, fields: StatusPayloadOf<S>): Uint8Array {
  const w = new WireWriter();
  w.u8(STATUS_CODES[status]);
  writeFields(w, STATUS_PAYLOADS[status], fields as Record<string, unknown>);
  return w.finish();
}

/** Decodes the response to a request of `method`. */
export function decodeResponse<M extends MethodName>(method: M, body: Uint8Array): Response<M> {
  if (body.length === 0) throw new HostlinkError('protocol', `empty response to ${method}`);
  const status = STATUS_BY_CODE[body[0]!];
  if (status === undefined) throw new HostlinkError('protocol', `unknown status ${body[0]} in response to ${method}`);
  const r = new WireReader(body.subarray(1), `${method} response (${status})`);
  const specs: readonly FieldSpec[] = status === 'ok' ? METHOD_SCHEMAS[method].response : STATUS_PAYLOADS[status];
  return { status, fields: readFields(r, specs) } as Response<M>;
}

/**
 * The length of the answer the host did not send because the call's gas cannot pay for its bytes, when `body`
 * is an `unaffordable` status; undefined for any other response.
 */
export function unaffordableBytes(body: Uint8Array): number | undefined {
  if (body[0] !== STATUS_CODES.unaffordable) return undefined;
  const r = new WireReader(body.subarray(1), 'unaffordable status');
  return (readFields(r, STATUS_PAYLOADS.unaffordable) as StatusPayloadOf<'unaffordable'>).bytes;
}
