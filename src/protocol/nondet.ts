/**
 * The result of one non-deterministic block or sandbox, in the seed's sub-VM encoding (docs/nondet.md):
 * one result-code byte, then calldata for Return, or a UTF-8 string for UserError and VMError. It is NOT the
 * parent result encoding of result.ts (whose errors are a {fingerprint, message} map); the two stay apart.
 *
 * A leader's proposal arrives from outside the VM, so decoding checks it fully: a proposal that is empty, has an
 * unknown code, calldata that is invalid or has trailing bytes, or a message that is not UTF-8 is malformed.
 */
import { isHostlinkError } from '../errors.js';
import { decodeCalldata, encodeCalldata } from './calldata.js';
import { ResultCode } from './generated.js';

/** A block's result. For Return, `data` is the returned bytes (empty when the method returned nothing). */
export type BlockResult =
  | { code: 'return'; data: Uint8Array; returnedNothing?: boolean }
  | { code: 'user_error' | 'vm_error'; message: string };

/** Result-code byte of each block result kind (the parent's codes; internal_error is never a block result). */
export const BLOCK_CODE = { return: ResultCode.Return, user_error: ResultCode.UserError, vm_error: ResultCode.VmError } as const;

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function encodeBlockResult(r: BlockResult): Uint8Array {
  const data = r.code === 'return' ? encodeCalldata(r.returnedNothing ? null : r.data) : utf8.encode(r.message);
  const out = new Uint8Array(1 + data.length);
  out[0] = BLOCK_CODE[r.code];
  out.set(data, 1);
  return out;
}

/** Decodes a block result, or returns why it is malformed (a string) without throwing. */
export function decodeBlockResult(bytes: Uint8Array): BlockResult | string {
  if (bytes.length === 0) return 'empty';
  const data = bytes.subarray(1);
  switch (bytes[0]) {
    case BLOCK_CODE.return: {
      let value;
      try {
        value = decodeCalldata(data);
      } catch (e) {
        if (!isHostlinkError(e, 'protocol')) throw e;
        return `bad calldata (${e.message})`;
      }
      if (value === null) return { code: 'return', data: new Uint8Array(0), returnedNothing: true };
      if (!(value instanceof Uint8Array)) return 'Return calldata is not bytes or null';
      return { code: 'return', data: value };
    }
    case BLOCK_CODE.user_error:
    case BLOCK_CODE.vm_error:
      try {
        const message = strictUtf8.decode(Uint8Array.from(data));
        return { code: bytes[0] === BLOCK_CODE.user_error ? 'user_error' : 'vm_error', message };
      } catch {
        return 'message is not UTF-8';
      }
    default:
      return `unknown result code ${bytes[0]}`;
  }
}

/** One line for people: `Return(0x…)`, `UserError("…")`, `VMError("…")`. */
export function describeBlockResult(r: BlockResult): string {
  if (r.code === 'return') return r.returnedNothing ? 'Return(null)' : `Return(${JSON.stringify(Buffer.from(r.data).toString('utf8'))})`;
  return `${r.code === 'user_error' ? 'UserError' : 'VMError'}(${JSON.stringify(r.message)})`;
}
