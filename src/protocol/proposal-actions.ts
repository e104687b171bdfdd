/**
 * Proposal actions: the Borsh `Vec<ProposalAction>` a guest passes to send_proposal (the reference SDK's enum,
 * docs/host-functions-semantics.md). The VM decodes it at call time so a malformed proposal traps DeserializationError there,
 * and the host decodes it again to present recorded proposals.
 *
 *   0 ExternalFunctionCall { receiver_id: String, method_name: String, args: String, deposit: u128 }
 *   1 Transfer { receiver_id: String, amount: u128 }
 *   2 SetNumApprovals { num_approvals: u32 }
 *   3 SetActiveProposalsLimit { active_proposals_limit: u32 }
 *   4 SetContextValue { key: Vec<u8>, value: Vec<u8> }
 *   5 DeleteProposal { proposal_id: [u8; 32] }
 */

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

/** Decodes a Borsh Vec<ProposalAction>; throws ProposalDecodeError (truncated, unknown tag, bad UTF-8, trailing bytes). */
export function decodeProposalActions(bytes: Uint8Array): ProposalAction[] {
  const r = new Reader(bytes);
  const n = r.u32('action count');
  // Every action takes at least 5 bytes (tag + shortest body): bound n before looping.
  if (n > r.remaining / 5) throw new ProposalDecodeError(`action count ${n} is more than ${r.remaining} bytes can hold`);
  const out: ProposalAction[] = [];
  for (let i = 0; i < n; i++) out.push(action(r, i));
  if (r.remaining !== 0) throw new ProposalDecodeError(`${r.remaining} trailing bytes after ${n} actions`);
  return out;
}
