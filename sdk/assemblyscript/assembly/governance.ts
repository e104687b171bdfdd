// Governance: proposals are Borsh Vec<ProposalAction>, forwarded by the host to the context's proxy.
import { send_proposal, approve_proposal } from "./env";
import { bytesDescriptor, toBytes } from "./buffers";
import { BorshWriter } from "./borsh";

/** Builds the actions of one proposal; `send()` submits it and returns the 32-byte proposal id. */
export class ProposalBuilder {
  private count: u32 = 0;
  private body: BorshWriter = new BorshWriter();

  /** ExternalFunctionCall (tag 0): call `methodName` on `receiverId` with `args`, attaching `deposit` (u128 as lo/hi). */
  externalFunctionCall(receiverId: string, methodName: string, args: string, depositLo: u64 = 0, depositHi: u64 = 0): ProposalBuilder {
    this.body.u8(0).string(receiverId).string(methodName).string(args).u128(depositLo, depositHi);
    this.count++;
    return this;
  }

  /** Transfer (tag 1) of `amount` (u128 as lo/hi) to `receiverId`. */
  transfer(receiverId: string, amountLo: u64, amountHi: u64 = 0): ProposalBuilder {
    this.body.u8(1).string(receiverId).u128(amountLo, amountHi);
    this.count++;
    return this;
  }

  /** SetNumApprovals (tag 2). */
  setNumApprovals(n: u32): ProposalBuilder {
    this.body.u8(2).u32(n);
    this.count++;
    return this;
  }

  /** SetActiveProposalsLimit (tag 3). */
  setActiveProposalsLimit(n: u32): ProposalBuilder {
    this.body.u8(3).u32(n);
    this.count++;
    return this;
  }

  /** SetContextValue (tag 4): key and value are strings (UTF-8) or bytes. */
  setContextValue<K, V>(key: K, value: V): ProposalBuilder {
    this.body.u8(4).bytes(toBytes<K>(key)).bytes(toBytes<V>(value));
    this.count++;
    return this;
  }

  /** DeleteProposal (tag 5) of a 32-byte proposal id. */
  deleteProposal(proposalId: Uint8Array): ProposalBuilder {
    if (proposalId.length != 32) throw new Error("deleteProposal: proposal id must be 32 bytes");
    this.body.u8(5).fixed(proposalId);
    this.count++;
    return this;
  }

  get length(): u32 {
    return this.count;
  }

  /** Borsh Vec<ProposalAction>. */
  encode(): Uint8Array {
    return new BorshWriter().u32(this.count).fixed(this.body.finish()).finish();
  }

  send(): Uint8Array {
    return sendProposal(this.encode());
  }
}

/** Submits Borsh-encoded proposal actions; returns the 32-byte proposal id. */
export function sendProposal(actions: Uint8Array): Uint8Array {
  const id = new Uint8Array(32);
  send_proposal(bytesDescriptor(actions), bytesDescriptor(id));
  return id;
}

/** Approves a proposal by its 32-byte id. */
export function approveProposal(proposalId: Uint8Array): void {
  approve_proposal(bytesDescriptor(proposalId));
}
