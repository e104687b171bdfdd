/**
 * The operations `hostlink serve` offers, each a function of JSON-friendly parameters: the REST routes and the
 * JSON-RPC 2.0 endpoint (server.ts) both call these, so there is one implementation of each.
 */
import { readAbi, type ContractAbi, type DescribedModule } from '../contract/abi.js';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hex, outcomeJson, parseId } from '../cli/common.js';
import type { CallRequest, ExecutionMode, FollowUp, Host } from '../host/host.js';
import { isMethodName, methodNameRule } from '../protocol/method-name.js';
import { LIMIT_JSON_NAMES, parseLimitOverrides, type VmLimits } from '../protocol/message.js';
import { HOSTLINK_VERSION } from '../version.js';
import { HttpError, jsonFailure, optString, needString } from './http.js';
import { scanJsonInSlices } from '../json-check.js';
import { listCodes, listContexts, listStateBounded, type StateEntry } from './inventory.js';
import type { CallRecord, CallRecords, TraceJson } from './records.js';
import { extend } from '../extend.js';

export interface ApiOptions {
  /** Longest deadline a request may ask for (and the default), in milliseconds. */
  deadlineMs: number;
  /** Folder of example contracts (each built to <name>/build/<name>.wasm), offered by the studio. */
  examplesDir: string;
}

/** GET /api/codes/HASH: what a caller needs to know of a deployed contract. */
export interface CodeDescription {
  code_hash: string;
  bytes: number;
  methods: string[];
  abi: ContractAbi;
  abi_embedded: boolean;
  abi_unexported: string[];
}

/**
 * Descriptions kept, the most recently asked for: a code never changes under its hash, and the studio asks for
 * the one it shows on every refresh. Each is bounded by max_abi_bytes and the module's exports.
 */
const DESCRIBED_CODES = 16;

export class Api {
  /** Descriptions by code hash (lower-case hex), oldest used first. */
  private readonly described = new Map<string, CodeDescription>();

  constructor(
    readonly host: Host,
    readonly records: CallRecords,
    private readonly options: ApiOptions,
  ) {}

  info(): Record<string, unknown> {
    return { version: HOSTLINK_VERSION, pool: this.host.poolStats, busy_vm_pids: this.host.busyVmPids(), deadline_ms: this.options.deadlineMs };
  }

  async deploy(code: Uint8Array): Promise<{ code_hash: string; bytes: number }> {
    if (code.length === 0) throw new HttpError(400, 'empty body: send the .wasm bytes with Content-Type application/wasm');
    const hash = await this.host.deploy(code);
    return { code_hash: hex(hash), bytes: code.length };
  }

  /** Built example contracts (name → size). */
  examples(): { name: string; bytes: number }[] {
    if (!existsSync(this.options.examplesDir)) return [];
    return readdirSync(this.options.examplesDir)
      .filter((name) => existsSync(this.examplePath(name)))
      .sort()
      .map((name) => ({ name, bytes: readFileSync(this.examplePath(name)).length }));
  }

  async deployExample(name: string): Promise<{ code_hash: string; bytes: number; name: string }> {
    if (!/^[a-z0-9-]{1,64}$/.test(name) || !existsSync(this.examplePath(name))) {
      throw new HttpError(404, `no built example '${name}': GET /api/examples lists them`);
    }
    return extend((await this.deploy(Uint8Array.from(readFileSync(this.examplePath(name))))), { name });
  }

  private examplePath(name: string): string {
    return join(this.options.examplesDir, name, 'build', `${name}.wasm`);
  }

  codes(): ReturnType<typeof listCodes> {
    return listCodes(this.host);
  }

  /**
   * One deployed contract: its size, the functions it exports (the methods a caller can name; the
   * AssemblyScript runtime's own `__` exports are left out) and its ABI: the exports, with the shapes and docs an
   * embedded ABI (by `hostlink build`) gives them. ABI entries naming no export are left out and listed in
   * `abi_unexported`. Read by our own module reader: nothing is compiled on the event loop.
   */
  code(hash: string): CodeDescription {
    if (!/^[0-9a-fA-F]{64}$/.test(hash)) throw new HttpError(400, 'a code hash is 64 hex characters');
    const key = hash.toLowerCase();
    const cached = this.described.get(key);
    if (cached !== undefined) {
      this.described.delete(key); // the newest used
      this.described.set(key, cached);
      return cached;
    }
    const description = this.describe(key);
    this.described.set(key, description);
    if (this.described.size > DESCRIBED_CODES) this.described.delete(this.described.keys().next().value!);
    return description;
  }

  private describe(hash: string): CodeDescription {
    const code = this.host.store.get('code', Uint8Array.from(Buffer.from(hash, 'hex')));
    if (code === undefined) throw new HttpError(404, `no contract with hash ${hash}: deploy it first`);
    let described: DescribedModule;
    try {
      described = readAbi(code);
    } catch (e) {
      throw new HttpError(422, `contract ${hash} cannot be described: ${(e as Error).message}`);
    }
    const methods = described.abi.methods.map((m) => m.name);
    return { code_hash: hash, bytes: code.length, methods, abi: described.abi, abi_embedded: described.embedded, abi_unexported: described.unexported };
  }

  contexts(): ReturnType<typeof listContexts> {
    return listContexts(this.host);
  }

  /** A context's entries, bounded (inventory.ts, listStateBounded): `complete` says whether they are all. */
  state(context: string): { context: string; root: string; entries: StateEntry[]; complete: boolean } {
    const contextId = parseId(context);
    const { root, entries, complete } = listStateBounded(this.host, contextId);
    return { context: hex(contextId), root: hex(root), entries, complete };
  }

  /**
   * Runs a call and waits for its outcome. Body: code (hash hex), method, input (JSON text) or input_hex,
   * context and executor (64 hex or a name), gas, limits {name: value} (each at most the node's), mode,
   * deadline_ms (at most the node's).
   */
  async call(body: Record<string, unknown>): Promise<CallRecord & { follow_ups: unknown[] }> {
    return this.run(body, false);
  }

  /** The same body as `call`; runs against the committed state and applies nothing (Host.view). */
  async view(body: Record<string, unknown>): Promise<CallRecord & { follow_ups: unknown[] }> {
    return this.run(body, true);
  }

  private async run(body: Record<string, unknown>, view: boolean): Promise<CallRecord & { follow_ups: unknown[] }> {
    const code = needString(body, 'code');
    if (!/^[0-9a-fA-F]{64}$/.test(code)) throw new HttpError(400, "field 'code' must be a code hash (64 hex characters): deploy first");
    const codeHash = Uint8Array.from(Buffer.from(code, 'hex'));
    if (!this.host.hasCode(codeHash)) throw new HttpError(404, `no contract with hash ${code}: deploy it first`);
    const request: CallRequest = {
      codeHash,
      method: callMethod(body, this.host.limits.maxMethodNameLength),
      input: await callInput(body),
      contextId: parseId(optString(body, 'context') ?? 'default'),
      executorId: body['executor'] === undefined ? new Uint8Array(32) : parseId(needString(body, 'executor')),
      deadlineMs: this.deadline(body['deadline_ms']),
    };
    const gas = body['gas'];
    if (gas !== undefined && gas !== null) {
      if (!(typeof gas === 'string' || typeof gas === 'number') || !/^[0-9]{1,20}$/.test(String(gas))) throw new HttpError(400, "field 'gas' must be a whole number");
      request.gasLimit = BigInt(gas);
    }
    if (body['limits'] !== undefined) request.limits = limits(body['limits'], this.host.limits);
    const mode = optString(body, 'mode');
    if (mode !== undefined) {
      if (mode !== 'pool' && mode !== 'oneshot') throw new HttpError(400, "field 'mode' must be pool or oneshot");
      request.mode = mode as ExecutionMode;
    }
    const outcome = view ? await this.host.view(request) : await this.host.call(request);
    const found = this.records.get(outcome.callId);
    if (found === undefined) throw new HttpError(500, `call ${outcome.callId} finished but its record is missing`);
    // The caller gets the whole outcome; the kept record may have summarised a large one.
    return extend(found.record, { outcome: outcomeJson(outcome, request.contextId), follow_ups: followUps(outcome.followUps) });
  }

  private deadline(value: unknown): number {
    if (value === undefined || value === null) return this.options.deadlineMs;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) throw new HttpError(400, "field 'deadline_ms' must be a positive whole number");
    return Math.min(value, this.options.deadlineMs);
  }

  recentCalls(limit: number): CallRecord[] {
    return this.records.recent(Math.max(1, Math.min(limit, 500)));
  }

  callRecord(id: number): CallRecord & { trace: TraceJson } {
    const found = this.records.get(id);
    if (found === undefined) throw new HttpError(404, `no recent call ${id} (the node keeps the most recent calls only)`);
    return extend(found.record, { trace: found.trace });
  }
}

/**
 * The method a call names, checked here by the rule the VM applies (protocol/method-name.ts) under this node's
 * max_method_name_length: a name the VM would refuse is refused before it is queued, and no record keeps it.
 */
function callMethod(body: Record<string, unknown>, maxLength: number): string {
  const method = needString(body, 'method');
  if (!isMethodName(method, maxLength)) {
    const shown = method.length > 40 ? `${JSON.stringify(method.slice(0, 40))}… (${method.length} characters)` : JSON.stringify(method);
    throw new HttpError(400, `field 'method' ${shown} is not a method name: ${methodNameRule(maxLength)}; GET /api/codes/HASH lists a contract's methods`);
  }
  return method;
}

/** The call input: `input` JSON text (checked), or `input_hex` raw bytes; empty when neither. */
async function callInput(body: Record<string, unknown>): Promise<Uint8Array> {
  const text = optString(body, 'input');
  const rawHex = optString(body, 'input_hex');
  if (text !== undefined && rawHex !== undefined) throw new HttpError(400, "give 'input' (JSON text) or 'input_hex', not both");
  if (rawHex !== undefined) {
    // Not /^([0-9a-fA-F]{2})*$/: its backtracking overflowed the stack on 10 million digits (a 500).
    if (rawHex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(rawHex)) throw new HttpError(400, "field 'input_hex' must be an even number of hex digits");
    return Uint8Array.from(Buffer.from(rawHex, 'hex'));
  }
  if (text === undefined || text === '') return new Uint8Array(0);
  // Only validated, never built: JSON.parse of a large input held the event loop for seconds.
  const failure = await scanJsonInSlices(text);
  if (failure !== undefined) throw new HttpError(400, `field 'input' ${jsonFailure(failure)}; use input_hex for raw bytes`);
  return Uint8Array.from(Buffer.from(text, 'utf8'));
}

/**
 * A request's limits: each may lower the node's, never raise it. The node's limits are what bounds one call's
 * cost to the node (max_storage_writes its event loop's stall while the call is applied, max_effect_bytes the
 * bytes it decodes and hashes), so a caller who could raise them could hold the node, as one raising its
 * deadline could (that one is capped too).
 */
function limits(value: unknown, node: Readonly<VmLimits>): Partial<VmLimits> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, "field 'limits' must be an object of limit names (docs/message.md) to numbers");
  let asked: Partial<VmLimits>;
  try {
    asked = parseLimitOverrides(value as Record<string, unknown>);
  } catch (e) {
    throw new HttpError(400, `field 'limits': ${(e as Error).message.replace(/^invalid message: field /, '')}`);
  }
  for (const [key, v] of Object.entries(asked) as [keyof VmLimits, number][]) {
    if (v > node[key]) {
      throw new HttpError(400, `field 'limits': ${LIMIT_JSON_NAMES[key]} ${v} is above this node's ${node[key]}: a request may lower a limit, not raise it`);
    }
  }
  return asked;
}

function followUps(list: FollowUp[]): unknown[] {
  return list.map((f) => ({
    kind: f.kind,
    context: hex(f.contextId),
    method: f.method,
    ...(f.outcome ? { call_id: f.outcome.callId, result: f.outcome.result.code, follow_ups: followUps(f.outcome.followUps) } : { skipped: f.skipped }),
  }));
}
