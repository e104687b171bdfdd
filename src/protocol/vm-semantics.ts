/**
 * The rules a VM runs a message by, as versions: the gas schedule (protocol/gas-costs.json) and the
 * instrumentation (src/vm/instrument). Two releases that differ in either charge different gas for the same call,
 * or accept different modules, so the same message could end `out_of_gas` on one machine and return on another.
 * Nothing else in the handshake says which a VM uses (the protocol version does not change with them, and a
 * worker on another machine runs its own installation), so the host writes its own into every message it builds
 * and a VM of another release refuses the message (docs/message.md) instead of running it by other rules.
 */
import { GAS_SCHEDULE_VERSION } from '../vm/host-functions.generated.js';
import { INSTRUMENTATION_VERSION } from '../vm/instrument/version.js';

/** A message field naming one of the versions, and this release's value of it. */
export interface SemanticsField {
  readonly field: 'gas_schedule_version' | 'instrumentation_version';
  readonly version: number;
  /** How the refusal names what the version is of. */
  readonly what: string;
}

export const VM_SEMANTICS: readonly SemanticsField[] = Object.freeze([
  { field: 'gas_schedule_version', version: GAS_SCHEDULE_VERSION, what: 'gas schedule' },
  { field: 'instrumentation_version', version: INSTRUMENTATION_VERSION, what: 'instrumentation' },
] as const);

/**
 * Why this VM cannot run a message that asks for `asked` (a field's value, absent when the message does not
 * say), or undefined when it can. A message without the fields (written by hand, or by an older host) is run.
 */
export function semanticsRefusal(f: SemanticsField, asked: unknown): string | undefined {
  if (asked === undefined || asked === null || asked === f.version) return undefined;
  const shown = typeof asked === 'number' || typeof asked === 'string' ? String(asked) : JSON.stringify(asked);
  return `asks for ${f.what} version ${shown.slice(0, 40)}, but this VM (${f.what} version ${f.version}) is of another Hostlink release: run the same release on the host and on every VM and worker`;
}

/**
 * This release's versions as one line, `gas_schedule_version=6 instrumentation_version=3`: what a worker announces
 * when it registers with a node, and what the node answers with, so that a worker of another release is refused
 * at registration instead of failing every call it is given.
 */
export const VM_SEMANTICS_TEXT = VM_SEMANTICS.map((f) => `${f.field}=${f.version}`).join(' ');

/** A VM_SEMANTICS_TEXT in words (`gas schedule 6, instrumentation 3`); a version missing from it is "unknown". */
function inWords(text: string | undefined): string {
  const said = new Map<string, string>();
  for (const part of (text ?? '').slice(0, 512).split(/\s+/)) {
    const eq = part.indexOf('=');
    if (eq > 0) said.set(part.slice(0, eq), part.slice(eq + 1, eq + 21));
  }
  return VM_SEMANTICS.map((f) => `${f.what} ${said.get(f.field) ?? 'unknown'}`).join(', ');
}

/**
 * Compares the versions a peer announced (its VM_SEMANTICS_TEXT; undefined when it announced none, as releases
 * before the announcement did) with this release's: undefined when they are the same, else both in words.
 */
export function semanticsMismatch(announced: string | undefined): { ours: string; theirs: string } | undefined {
  if (announced === VM_SEMANTICS_TEXT) return undefined;
  return { ours: inWords(VM_SEMANTICS_TEXT), theirs: announced === undefined ? 'not announced (an older release)' : inWords(announced) };
}
