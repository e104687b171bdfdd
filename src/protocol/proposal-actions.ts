/**
 * Proposal actions: the Borsh `Vec<ProposalAction>` a guest passes to send_proposal (the reference SDK's enum,
 * docs/host-functions-semantics.md). The VM decodes it at call time so a malformed proposal traps DeserializationError there,
 * the host checks it again when a VM hands it over (checkProposalActions, building nothing) and decodes it to present
 * recorded proposals.
 *
 *   0 ExternalFunctionCall { receiver_id: String, method_name: String, args: String, deposit: u128 }
 *   1 Transfer { receiver_id: String, amount: u128 }
 *   2 SetNumApprovals { num_approvals: u32 }
 *   3 SetActiveProposalsLimit { active_proposals_limit: u32 }
 *   4 SetContextValue { key: Vec<u8>, value: Vec<u8> }
 *   5 DeleteProposal { proposal_id: [u8; 32] }
 */

import { isUtf8 } from 'node:buffer';

export type ProposalAction =
  | { kind: 'external_function_call'; receiverId: string; methodName: string; args: string; deposit: bigint }
  | { kind: 'transfer'; receiverId: string; amount: bigint }
  | { kind: 'set_num_approvals'; numApprovals: number }
  | { kind: 'set_active_proposals_limit'; activeProposalsLimit: number }
  | { kind: 'set_context_value'; key: Uint8Array; value: Uint8Array }
  | { kind: 'delete_proposal'; proposalId: Uint8Array };

/**
 * Thrown for bytes that are not a Borsh Vec<ProposalAction>; `message` says where. Internal control flow
 * (src/errors.ts, INTERNAL_ERROR_CLASSES): the governance host function turns it into DeserializationError.
 */
export class ProposalDecodeError extends Error {
  override readonly name = 'ProposalDecodeError';
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class Reader {
  private at = 0;
  private readonly view: DataView;
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(n: number, what: string): number {
    if (this.bytes.length - this.at < n) throw new ProposalDecodeError(`truncated ${what} at byte ${this.at}`);
    const p = this.at;
    this.at += n;
    return p;
  }
  u8(what: string): number {
    return this.bytes[this.need(1, what)]!;
  }
  u32(what: string): number {
    return this.view.getUint32(this.need(4, what), true);
  }
  u128(what: string): bigint {
    const p = this.need(16, what);
    return this.view.getBigUint64(p, true) | (this.view.getBigUint64(p + 8, true) << 64n);
  }
  fixed(n: number, what: string): Uint8Array {
    const p = this.need(n, what);
    return this.bytes.slice(p, p + n);
  }
  vec(what: string): Uint8Array {
    return this.fixed(this.u32(what), what);
  }
  string(what: string): string {
    try {
      return strictUtf8.decode(this.vec(what));
    } catch (e) {
      if (e instanceof ProposalDecodeError) throw e;
      throw new ProposalDecodeError(`${what} is not valid UTF-8`);
    }
  }
  // The check's reads: they name the field (`action i field`, as the decoder does) only when they fail, since a
  // proposal may hold a million actions.
  private needAt(n: number, i: number, field: string): number {
    if (this.bytes.length - this.at < n) throw new ProposalDecodeError(`truncated action ${i} ${field} at byte ${this.at}`);
    const p = this.at;
    this.at += n;
    return p;
  }
  tagAt(i: number): number {
    return this.bytes[this.needAt(1, i, 'tag')]!;
  }
  /** Passes over n bytes without copying them. */
  skipAt(n: number, i: number, field: string): void {
    this.needAt(n, i, field);
  }
  /** Passes over a Vec<u8> or a String's bytes; returns where they start (they end at the position after). */
  skipVecAt(i: number, field: string): number {
    const n = this.view.getUint32(this.needAt(4, i, field), true);
    return this.needAt(n, i, field);
  }
  /** Passes over a string, checking its UTF-8 without building it; ASCII (the usual case) needs no decoder. */
  skipStringAt(i: number, field: string): void {
    let p = this.skipVecAt(i, field);
    const end = this.at;
    while (p < end && this.bytes[p]! < 0x80) p++;
    // What precedes p is whole ASCII characters, so the rest is valid exactly when the whole string is.
    if (p < end && !isUtf8(this.bytes.subarray(p, end))) throw new ProposalDecodeError(`action ${i} ${field} is not valid UTF-8`);
  }
  get remaining(): number {
    return this.bytes.length - this.at;
  }
}

function action(r: Reader, i: number): ProposalAction {
  const at = `action ${i}`;
  const tag = r.u8(`${at} tag`);
  switch (tag) {
    case 0:
      return {
        kind: 'external_function_call',
        receiverId: r.string(`${at} receiver_id`),
        methodName: r.string(`${at} method_name`),
        args: r.string(`${at} args`),
        deposit: r.u128(`${at} deposit`),
      };
    case 1:
      return { kind: 'transfer', receiverId: r.string(`${at} receiver_id`), amount: r.u128(`${at} amount`) };
    case 2:
      return { kind: 'set_num_approvals', numApprovals: r.u32(`${at} num_approvals`) };
    case 3:
      return { kind: 'set_active_proposals_limit', activeProposalsLimit: r.u32(`${at} active_proposals_limit`) };
    case 4:
      return { kind: 'set_context_value', key: r.vec(`${at} key`), value: r.vec(`${at} value`) };
    case 5:
      return { kind: 'delete_proposal', proposalId: r.fixed(32, `${at} proposal_id`) };
    default:
      throw new ProposalDecodeError(`${at} has unknown tag ${tag} (0..5)`);
  }
}

/** What `action` reads, in the same order and with the same errors, without building anything. */
function skipAction(r: Reader, i: number): void {
  const tag = r.tagAt(i);
  switch (tag) {
    case 0:
      r.skipStringAt(i, 'receiver_id');
      r.skipStringAt(i, 'method_name');
      r.skipStringAt(i, 'args');
      return r.skipAt(16, i, 'deposit');
    case 1:
      r.skipStringAt(i, 'receiver_id');
      return r.skipAt(16, i, 'amount');
    case 2:
      return r.skipAt(4, i, 'num_approvals');
    case 3:
      return r.skipAt(4, i, 'active_proposals_limit');
    case 4:
      r.skipVecAt(i, 'key');
      r.skipVecAt(i, 'value');
      return;
    case 5:
      return r.skipAt(32, i, 'proposal_id');
    default:
      throw new ProposalDecodeError(`action ${i} has unknown tag ${tag} (0..5)`);
  }
}

/** The action count, bounded by what the bytes can hold (every action takes at least 5: tag + shortest body). */
function actionCount(r: Reader): number {
  const n = r.u32('action count');
  if (n > r.remaining / 5) throw new ProposalDecodeError(`action count ${n} is more than ${r.remaining} bytes can hold`);
  return n;
}

function checkEnd(r: Reader, n: number): void {
  if (r.remaining !== 0) throw new ProposalDecodeError(`${r.remaining} trailing bytes after ${n} actions`);
}

/** Decodes a Borsh Vec<ProposalAction>; throws ProposalDecodeError (truncated, unknown tag, bad UTF-8, trailing bytes). */
export function decodeProposalActions(bytes: Uint8Array): ProposalAction[] {
  const r = new Reader(bytes);
  const n = actionCount(r);
  const out: ProposalAction[] = [];
  for (let i = 0; i < n; i++) out.push(action(r, i));
  checkEnd(r, n);
  return out;
}

/**
 * Throws the ProposalDecodeError decodeProposalActions would throw, or nothing, without building the actions: the
 * host checks every proposal a VM hands over, and decoding 4.5 MB of small actions into objects (within the default
 * gas limit) held its event loop for 270-650 ms.
 */
export function checkProposalActions(bytes: Uint8Array): void {
  const r = new Reader(bytes);
  const n = actionCount(r);
  for (let i = 0; i < n; i++) skipAction(r, i);
  checkEnd(r, n);
}
