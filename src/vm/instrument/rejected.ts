// The error a module refused before compilation raises, and the stable message it carries.
import { MAX_REJECTION_DETAIL_CHARS } from '../../protocol/bounds.generated.js';
import { reasonMessage } from '../../protocol/reasons.js';
import { cutText } from '../../terminal-text.js';

/**
 * Why a module was refused before compilation. The rule is a stable snake_case name (listed in
 * docs/determinism.md); the message is derived only from the module's bytes, so every node reports the
 * same VMError text for the same code. Internal control flow (src/errors.ts, INTERNAL_ERROR_CLASSES): it
 * becomes the call's vm_error, or HostlinkError 'usage' when deploy refuses the module.
 */
export class ModuleRejected extends Error {
  override readonly name = 'ModuleRejected';
  constructor(
    readonly rule: string,
    readonly detail?: string,
    readonly functionIndex?: number,
    readonly offset?: number,
  ) {
    super(formatRejection(rule, detail, functionIndex, offset));
  }
}


/** A name from the module as a refusal quotes it: a long one cut, so the reason after it stays readable. */
export const quotedName = (name: string): string => cutText(name, MAX_REJECTION_DETAIL_CHARS >> 2);

function formatRejection(rule: string, detail?: string, functionIndex?: number, offset?: number): string {
  let msg = reasonMessage('module_rejected', rule);
  // The detail may quote the module (an import's or an export's name): a bounded message whatever its size.
  if (detail) msg += `: ${cutText(detail, MAX_REJECTION_DETAIL_CHARS)}`;
  const where: string[] = [];
  if (functionIndex !== undefined) where.push(`function ${functionIndex}`);
  if (offset !== undefined) where.push(`offset 0x${offset.toString(16)}`);
  if (where.length) msg += ` (${where.join(', ')})`;
  return msg;
}
