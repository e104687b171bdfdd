/**
 * The closed set of errors Hostlink raises. Two families:
 *
 * - `GuestErrorName`: why a contract execution failed, reported inside the outcome (VMError / UserError
 *   messages). These are the seed's host-function error names plus the VM's own stop reasons.
 * - `HostlinkErrorCode`: why a tool or API call failed (bad arguments, protocol violation, crashed VM...).
 *
 * Messages say what happened and what to do; the name or code is what programs match on.
 */

/** Errors a host function raises by trapping the guest (docs/host-functions-semantics.md). */
export const GUEST_ERROR_NAMES = [
  'InvalidMemoryAccess',
  'KeyLengthOverflow',
  'ValueLengthOverflow',
  'LogsOverflow',
  'LogLengthOverflow',
  'EventsOverflow',
  'EventKindSizeOverflow',
  'EventDataSizeOverflow',
  'BadUTF8',
  'InvalidRegisterId',
  'DeserializationError',
  'Panic',
  'XCallsOverflow',
  'XCallFunctionSizeOverflow',
  'XCallParamsSizeOverflow',
  'TooManyBlobHandles',
  'InvalidBlobHandle',
  'BlobWriteTooLarge',
  'AliasAlreadyExists',
  'Ed25519IncorrectPublicKey',
  'CommitTwice',
  'HostUnavailable',
  'MemoryLimitExceeded',
  /** A sub-instance called a host function its kind may not use (docs/nondet.md). */
  'Forbidden',
  // Effect limits (protocol/limits.json): too many node actions queued, effects too large at the end.
  'NodeActionsOverflow',
  'EffectsOverflow',
  // A context mutation the call is not entitled to (src/host/node/contexts.ts, refusal), refused when applied.
  'Unauthorized',
] as const;
export type GuestErrorName = (typeof GUEST_ERROR_NAMES)[number];

/** A host function failed: the guest traps and the execution ends with VMError (or UserError for Panic). */
export class GuestError extends Error {
  override readonly name = 'GuestError';
  constructor(
    readonly kind: GuestErrorName,
    readonly fn: string,
    readonly detail: string = '',
  ) {
    super(`${kind} in ${fn}${detail ? `: ${detail}` : ''}`);
  }
}

export const HOSTLINK_ERROR_CODES = [
  'usage', // wrong command-line arguments or API parameters
  'invalid_message', // the --message JSON is missing a field or has a malformed one
  'not_found', // code hash, context, file or blob that does not exist
  'protocol', // a peer broke the wire protocol (bad frame, unknown method, oversized frame)
  'incompatible_version', // hello found no common protocol version
  'channel_closed', // the peer closed the connection or died
  'timeout', // a deadline passed
  'vm_crash', // the VM process exited without sending a result
  'store', // the database failed
  'sandbox_unavailable', // sandbox 'required' and a layer of the VM's OS sandbox cannot be installed here
  'internal', // a bug: an invariant did not hold
] as const;
export type HostlinkErrorCode = (typeof HOSTLINK_ERROR_CODES)[number];

export class HostlinkError extends Error {
  override readonly name = 'HostlinkError';
  constructor(
    readonly code: HostlinkErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Error classes defined beside the code that throws them, outside the closed set above: each is control flow
 * caught at a known boundary and turned into a result, a wire status or a HostlinkError, so no caller ever
 * catches one. A class that can reach a caller belongs above instead (or extends HostlinkError, as
 * ExchangeError and DataDirInUse do). A test keeps this list equal to the `extends Error` classes in src/.
 */
export const INTERNAL_ERROR_CLASSES = [
  'HttpError', // src/server/http.ts: the server turns it into a JSON error reply
  'ProposalDecodeError', // src/protocol/proposal-actions.ts: a guest's DeserializationError
  'WireError', // src/control/wire.ts: the agent's refusal, the client's HostlinkError 'protocol'
  'UrlRefused', // src/control/handlers/url-policy.ts: answered to the guest
  'ModuleRejected', // src/vm/instrument/rejected.ts: result reason module_rejected, or HostlinkError 'usage' at deploy
  'OutOfGas', // src/vm/instrument/meter.ts: result reason out_of_gas
  'StackOverflow', // src/vm/instrument/meter.ts: result reason stack_overflow
  'Stop', // src/vm/runner.ts: ends the runner with a result
  'CrdtFormatError', // src/vm/crdt/bytes.ts: a guest's DeserializationError
  'CrdtDomainError', // src/vm/crdt/bytes.ts: -1 and a message for the guest
  'EndExecution', // src/vm/sub-instance.ts: ends the execution with a result
  'AliasConflict', // src/host/node/contexts.ts: re-run, then result reason conflict
  'MutationRefused', // src/host/node/contexts.ts: the call's vm_error Unauthorized (...)
  'NodeLimitError', // src/host/node/backend.ts: the wire status limit_exceeded
] as const;

export function isHostlinkError(e: unknown, code?: HostlinkErrorCode): e is HostlinkError {
  return e instanceof HostlinkError && (code === undefined || e.code === code);
}
