/**
 * Builds and reads error-result messages from the closed catalogue of result reasons (protocol/reasons.json,
 * generated into reasons.generated.ts), so a reason's text and its result code are written in one place.
 */
import { GUEST_ERROR_NAMES, type GuestErrorName } from '../errors.js';
import { RESULT_REASONS, RESULT_REASON_NAMES, type ResultReason } from './reasons.generated.js';

export { RESULT_REASONS, RESULT_REASON_NAMES, type ResultReason };

/** The result code a reason is reported with. */
export type ReasonCode<R extends ResultReason> = (typeof RESULT_REASONS)[R]['code'];

/** The message of a result for `reason`: its prefix, then the detail after one space when there is one. */
export function reasonMessage(reason: ResultReason, detail?: string): string {
  const prefix = RESULT_REASONS[reason].prefix;
  return detail === undefined || detail === '' ? prefix : `${prefix} ${detail}`;
}

/** An error result (no fingerprint) for `reason`, with the code the catalogue gives it. */
export function reasonResult<R extends ResultReason>(reason: R, detail?: string): { code: ReasonCode<R>; message: string; fingerprint: null } {
  return { code: RESULT_REASONS[reason].code, message: reasonMessage(reason, detail), fingerprint: null };
}

const GUEST_NAMES: ReadonlySet<string> = new Set(GUEST_ERROR_NAMES);

/**
 * The catalogued reason an error message starts with: a ResultReason, a host function's named error
 * (`<ErrorName> (<function>)`), or undefined when the message starts with anything else.
 */
export function reasonOf(message: string): ResultReason | GuestErrorName | undefined {
  for (const name of RESULT_REASON_NAMES) {
    const prefix = RESULT_REASONS[name].prefix;
    if (message === prefix || message.startsWith(prefix + ' ') || (prefix.endsWith(':') && message.startsWith(prefix))) return name;
  }
  const guest = /^([A-Za-z0-9]+) \(/.exec(message)?.[1];
  return guest !== undefined && GUEST_NAMES.has(guest) ? (guest as GuestErrorName) : undefined;
}
