/**
 * The execution result as the VM hands it to the host (docs/calldata.md, "Result encoding"): one result-code byte, then
 * calldata for Return, or the calldata map {fingerprint, message} for the error codes.
 */
import { HostlinkError, isHostlinkError } from '../errors.js';
import { decodeCalldata, encodeCalldataAfter, type CalldataValue, type DecodeLimits } from './calldata.js';
import { ResultCode, type ResultCodeName } from './generated.js';

export type ErrorResultCode = Exclude<ResultCodeName, 'return'>;

export type ExecutionResult =
  | { code: 'return'; value: CalldataValue }
  /** `fingerprint` is null until the VM computes fingerprints (docs/calldata.md). */
  | { code: ErrorResultCode; message: string; fingerprint: CalldataValue };

const CODE_BYTE: Readonly<Record<ResultCodeName, number>> = {
  return: ResultCode.Return,
  user_error: ResultCode.UserError,
  vm_error: ResultCode.VmError,
  internal_error: ResultCode.InternalError,
};

const BYTE_CODE = new Map<number, ResultCodeName>(
  (Object.entries(CODE_BYTE) as Array<[ResultCodeName, number]>).map(([name, byte]) => [byte, name]),
);

/** Encodes a result. Throws HostlinkError('usage') for an unknown code or a value calldata cannot carry. */
export function encodeResult(r: ExecutionResult): Uint8Array {
  const code = CODE_BYTE[r.code] as number | undefined;
  if (code === undefined) throw new HostlinkError('usage', `unknown result code '${String(r.code)}'`);
  if (r.code === 'return') return encodeCalldataAfter(code, r.value);
  if (typeof r.message !== 'string') throw new HostlinkError('usage', 'an error result needs a string message');
  // The encoder sorts keys, so fingerprint comes before message on the wire.
  return encodeCalldataAfter(
    code,
    new Map<string, CalldataValue>([
      ['fingerprint', r.fingerprint],
      ['message', r.message],
    ]),
  );
}

/**
 * Decodes a result. Throws HostlinkError('protocol') for an empty input, an unknown code byte, invalid
 * Return calldata, or error data that is a calldata map of the wrong shape.
 *
 * Tolerance: GenVM sends an internal failure as code 2 followed by a raw UTF-8 debug string, not calldata
 * (docs/calldata.md). So error data that is not a calldata map but is valid UTF-8 is taken as the message,
 * with a null fingerprint. Such a result re-encodes in the map shape, not byte-identically.
 */
export function decodeResult(bytes: Uint8Array, limits?: DecodeLimits): ExecutionResult {
  if (bytes.length === 0) throw new HostlinkError('protocol', 'result: empty, expected a result-code byte');
  const code = BYTE_CODE.get(bytes[0]!);
  if (code === undefined) {
    throw new HostlinkError('protocol', `result: unknown result code ${bytes[0]} at byte 0 (known: 0..${BYTE_CODE.size - 1})`);
  }
  const data = bytes.subarray(1);
  if (code === 'return') {
    try {
      return { code, value: decodeCalldata(data, limits) };
    } catch (e) {
      throw wrap(e);
    }
  }
  let value: CalldataValue | undefined;
  let failure: unknown;
  try {
    value = decodeCalldata(data, limits);
  } catch (e) {
    if (!isHostlinkError(e, 'protocol')) throw e;
    failure = e;
  }
  if (value instanceof Map) {
    const message = value.get('message');
    if (value.size !== 2 || !value.has('fingerprint') || typeof message !== 'string') {
      throw new HostlinkError('protocol', `result: ${code} data must be the map {fingerprint, message: string}, got keys [${[...value.keys()].join(', ')}]`);
    }
    return { code, message, fingerprint: value.get('fingerprint')! };
  }
  const text = utf8OrNull(data);
  if (text !== null) return { code, message: text, fingerprint: null };
  throw failure !== undefined
    ? wrap(failure)
    : new HostlinkError('protocol', `result: ${code} data is neither a {fingerprint, message} map nor UTF-8 text`);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function utf8OrNull(data: Uint8Array): string | null {
  try {
    return strictUtf8.decode(data.buffer instanceof SharedArrayBuffer ? Uint8Array.from(data) : data);
  } catch {
    return null;
  }
}

/** Calldata offsets count from the data, which starts at byte 1 of the result. */
function wrap(e: unknown): unknown {
  if (!isHostlinkError(e, 'protocol')) return e;
  return new HostlinkError('protocol', `result data (offsets from byte 1): ${e.message}`, { cause: e });
}
