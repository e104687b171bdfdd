// oracle: a price oracle and a page mirror whose data comes from the web, agreed between nodes with
// non-deterministic blocks (docs/nondet.md). Inputs are UTF-8 JSON; see README.md.
//
// update_price: the leader fetches the URL and proposes the number it read; every validator fetches the URL
//   again and accepts when the proposal is within 2% of its own reading (a tolerance: prices move).
// update_page: a comparative block: validators accept only a proposal equal to their own fetch, byte for byte.
import {
  input, inputString, returnOk, returnErr, jsonParseBytes, jsonQuote, fetch, storageWrite, storageReadString,
  runNondet, leaderResult, agree, disagree, verdict,
} from "../../../sdk/assemblyscript/assembly/index";

/** Largest relative difference a validator accepts between the proposal and its own reading. */
const TOLERANCE: f64 = 0.02;

function urlArg(): string | null {
  const v = jsonParseBytes(input());
  return v === null || !v.isObject ? null : v.getString("url");
}

function invalid(why: string): void {
  returnErr('{"kind":"InvalidInput","data":' + jsonQuote(why) + "}");
}

/** A reading: the first number in the body (plain text like `101.25` or JSON like `{"price":101.25}`). */
function readNumber(body: string): f64 {
  let start = -1;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if ((c >= 48 && c <= 57) || (c == 45 && start < 0)) {
      start = i;
      break;
    }
  }
  if (start < 0) return NaN;
  let end = start + 1;
  while (end < body.length) {
    const c = body.charCodeAt(end);
    if (!((c >= 48 && c <= 57) || c == 46)) break;
    end++;
  }
  return F64.parseFloat(body.substring(start, end));
}

// ---------------------------------------------------------------- main methods

/** {"url"} → the agreed price as a string; stored under "price". */
export function update_price(): void {
  const url = urlArg();
  if (url === null) return invalid("expected {\"url\":string}");
  const r = runNondet("fetch_price", "check_price", url);
  if (r.isUserError) return returnErr('{"kind":"FetchFailed","data":' + jsonQuote(r.text) + "}");
  storageWrite<string, string>("price", r.text);
  returnOk(r.text);
}

/** {"url"} → the agreed page body; stored under "page". */
export function update_page(): void {
  const url = urlArg();
  if (url === null) return invalid("expected {\"url\":string}");
  const r = runNondet("fetch_page", "check_page", url);
  if (r.isUserError) return returnErr('{"kind":"FetchFailed","data":' + jsonQuote(r.text) + "}");
  storageWrite<string, string>("page", r.text);
  returnOk(r.text);
}

/** {} → the stored price, or null. */
export function price(): void {
  const v = storageReadString<string>("price");
  returnOk(v === null ? "null" : v);
}

/** {} → the stored page, or null. */
export function page(): void {
  const v = storageReadString<string>("page");
  returnOk(v === null ? "null" : jsonQuote(v));
}

// ---------------------------------------------------------------- leader methods (non-deterministic)

/** Fetches the URL given as input and proposes the number it holds. */
export function fetch_price(): void {
  const r = fetch<string>(inputString(), "GET", [], "");
  if (!r.ok) return returnErr(r.text);
  const p = readNumber(r.text);
  if (isNaN(p)) return returnErr("no number in the answer");
  returnOk(p.toString());
}

/** Fetches the URL given as input and proposes the body. */
export function fetch_page(): void {
  const r = fetch<string>(inputString(), "GET", [], "");
  if (!r.ok) return returnErr(r.text);
  returnOk(r.body);
}

// ---------------------------------------------------------------- validator methods (non-deterministic)

/** Accepts a proposed price within TOLERANCE of this node's own reading; a failed fetch on both sides agrees. */
export function check_price(): void {
  const proposal = leaderResult();
  if (proposal === null) return disagree();
  const mine = fetch<string>(inputString(), "GET", [], "");
  if (proposal.isUserError) return verdict(!mine.ok);
  if (!proposal.isReturn || !mine.ok) return disagree();
  const theirs = F64.parseFloat(proposal.text);
  const ours = readNumber(mine.text);
  if (isNaN(theirs) || isNaN(ours)) return disagree();
  verdict(Math.abs(theirs - ours) <= TOLERANCE * Math.abs(ours));
}

/** Accepts only a proposal equal to this node's own fetch. */
export function check_page(): void {
  const proposal = leaderResult();
  if (proposal === null || !proposal.isReturn) return disagree();
  const mine = fetch<string>(inputString(), "GET", [], "");
  if (!mine.ok || mine.text != proposal.text) return disagree();
  agree();
}
