// governance: context membership and proposals. Context changes and proposals are queued by the host
// and applied only after the call succeeds. Keys and ids are 64 hex digits; u128 amounts are decimal strings.
import {
  input, returnOk, returnErr, jsonParseBytes, jsonQuote, JsonValue, toHex, fromHex, utf8,
  contextId, executorId, createContext, deleteContext, addMember, removeMember, isMember, members, resolveAlias,
  ProposalBuilder, approveProposal,
} from "../../../sdk/assemblyscript/assembly/index";

function args(): JsonValue {
  const v = jsonParseBytes(input());
  return v !== null && v.isObject ? v : JsonValue.object();
}

function invalid(why: string): void {
  returnErr('{"kind":"InvalidInput","data":' + jsonQuote(why) + "}");
}

function hex32(a: JsonValue, field: string): Uint8Array | null {
  const s = a.getString(field);
  if (s === null) return null;
  const b = fromHex(s);
  return b !== null && b.length == 32 ? b : null;
}

/** Decimal string → u128 as [lo, hi]; null when not a decimal integer below 2^128. */
function parseU128(s: string): Array<u64> | null {
  if (s.length == 0 || s.length > 39) return null;
  // Four 32-bit limbs, least significant first: limb*10 + carry always fits in a u64.
  const limbs: StaticArray<u64> = [0, 0, 0, 0];
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return null;
    let carry = <u64>d;
    for (let j = 0; j < 4; j++) {
      const v = limbs[j] * 10 + carry;
      limbs[j] = v & 0xffffffff;
      carry = v >> 32;
    }
    if (carry != 0) return null;
  }
  return [limbs[0] | (limbs[1] << 32), limbs[2] | (limbs[3] << 32)];
}

function u32Field(o: JsonValue, field: string): i64 {
  const n = o.getNumber(field);
  if (isNaN(n) || n < 0 || n > 4294967295 || n != Math.trunc(n)) return -1;
  return <i64>n;
}

// ---------------------------------------------------------------- identity and membership

/** {} → {"context_id":hex,"executor_id":hex}. */
export function whoami(): void {
  returnOk(JsonValue.object()
    .set("context_id", JsonValue.string(toHex(contextId())))
    .set("executor_id", JsonValue.string(toHex(executorId())))
    .toString());
}

/** {} → ["<hex public key>", ...] as the host lists them. */
export function list_members(): void {
  const list = members();
  const out = JsonValue.array();
  for (let i = 0; i < list.length; i++) out.push(JsonValue.string(toHex(list[i])));
  returnOk(out.toString());
}

/** {"public_key":hex} → true / false. */
export function is_member(): void {
  const pk = hex32(args(), "public_key");
  if (pk === null) return invalid("public_key must be 64 hex digits");
  returnOk(isMember(pk) ? "true" : "false");
}

/** {"public_key":hex} → null; queues adding the member to this context. */
export function add_member(): void {
  const pk = hex32(args(), "public_key");
  if (pk === null) return invalid("public_key must be 64 hex digits");
  addMember(pk);
  returnOk("null");
}

/** {"public_key":hex} → null; queues removing the member from this context. */
export function remove_member(): void {
  const pk = hex32(args(), "public_key");
  if (pk === null) return invalid("public_key must be 64 hex digits");
  removeMember(pk);
  returnOk("null");
}

// ---------------------------------------------------------------- contexts

/**
 * {"protocol":"near","application_id":hex,"init_args":<any JSON>,"alias":"name"?} → null; queues creating a
 * context whose init input is the JSON text of init_args (default {}).
 */
export function create_context(): void {
  const a = args();
  const protocol = a.getString("protocol");
  if (protocol === null) return invalid("missing string field: protocol");
  const app = hex32(a, "application_id");
  if (app === null) return invalid("application_id must be 64 hex digits");
  const init = a.get("init_args");
  const aliasValue = a.get("alias");
  if (aliasValue !== null && !aliasValue.isString) return invalid("alias must be a string");
  createContext<Uint8Array>(protocol, app, utf8(init === null ? "{}" : init.toString()), aliasValue === null ? "" : aliasValue.strValue);
  returnOk("null");
}

/** {"context_id":hex} → null; queues deleting the context. */
export function delete_context(): void {
  const id = hex32(args(), "context_id");
  if (id === null) return invalid("context_id must be 64 hex digits");
  deleteContext(id);
  returnOk("null");
}

/** {"alias":"name"} → the context id as hex, or null. */
export function resolve_alias(): void {
  const alias = args().getString("alias");
  if (alias === null) return invalid("missing string field: alias");
  const id = resolveAlias(alias);
  returnOk(id === null ? "null" : jsonQuote(toHex(id)));
}

// ---------------------------------------------------------------- proposals

/** Adds one JSON action to the builder; returns an error text, or null on success. */
function addAction(b: ProposalBuilder, o: JsonValue): string | null {
  const kind = o.getString("kind");
  if (kind === null) return "every action needs a string kind";
  if (kind == "external_function_call") {
    const receiver = o.getString("receiver_id");
    const method = o.getString("method_name");
    const callArgs = o.getString("args");
    // An absent deposit is 0; a present one must be a decimal string.
    const depositText = o.has("deposit") ? o.getString("deposit") : "0";
    const deposit: Array<u64> | null = depositText === null ? null : parseU128(depositText);
    if (receiver === null || method === null || callArgs === null || deposit === null) {
      return "external_function_call needs receiver_id, method_name, args (strings) and deposit (decimal string)";
    }
    b.externalFunctionCall(receiver, method, callArgs, deposit[0], deposit[1]);
  } else if (kind == "transfer") {
    const receiver = o.getString("receiver_id");
    const amountText = o.getString("amount");
    const amount: Array<u64> | null = amountText === null ? null : parseU128(amountText);
    if (receiver === null || amount === null) return "transfer needs receiver_id and amount (decimal string)";
    b.transfer(receiver, amount[0], amount[1]);
  } else if (kind == "set_num_approvals") {
    const n = u32Field(o, "num_approvals");
    if (n < 0) return "set_num_approvals needs num_approvals (u32)";
    b.setNumApprovals(<u32>n);
  } else if (kind == "set_active_proposals_limit") {
    const n = u32Field(o, "active_proposals_limit");
    if (n < 0) return "set_active_proposals_limit needs active_proposals_limit (u32)";
    b.setActiveProposalsLimit(<u32>n);
  } else if (kind == "set_context_value") {
    const key = o.getString("key");
    const value = o.getString("value");
    if (key === null || value === null) return "set_context_value needs key and value (strings)";
    b.setContextValue<string, string>(key, value);
  } else if (kind == "delete_proposal") {
    const id = hex32(o, "proposal_id");
    if (id === null) return "delete_proposal needs proposal_id (64 hex digits)";
    b.deleteProposal(id);
  } else {
    return "unknown action kind: " + kind;
  }
  return null;
}

/** {"actions":[{"kind":...}, ...]} → {"proposal_id":hex,"actions":n}. See README.md for the action kinds. */
export function propose(): void {
  const actions = args().getArray("actions");
  if (actions === null || actions.length == 0) return invalid("actions must be a non-empty array");
  const b = new ProposalBuilder();
  for (let i = 0; i < actions.length; i++) {
    const a = actions[i];
    const err = a.isObject ? addAction(b, a) : "every action must be an object";
    if (err !== null) return invalid("action " + i.toString() + ": " + err);
  }
  const id = b.send();
  returnOk(JsonValue.object()
    .set("proposal_id", JsonValue.string(toHex(id)))
    .set("actions", JsonValue.number(<f64>b.length))
    .toString());
}

/** {"proposal_id":hex} → null; records this executor's approval. */
export function approve(): void {
  const id = hex32(args(), "proposal_id");
  if (id === null) return invalid("proposal_id must be 64 hex digits");
  approveProposal(id);
  returnOk("null");
}
