/**
 * `hostlink/testing`: a harness for contract authors' tests (node:test or any runner). A TestHost is a real
 * Host on an in-memory store running real VM processes, plus what tests need around it: named accounts and
 * contexts with their ids, block time and seed, state patching and reading, calls and views whose results
 * decode as JSON, and assertions that fail with the call's logs. docs/testing.md shows it in use.
 *
 *   const t = await TestHost.open();
 *   const c = await t.deploy('build/counter.wasm');
 *   const r = await c.call('increment', {}, { as: t.account('alice') });
 *   assert.equal(r.expectOk(), 1);
 *   await t.close();
 */
import { AssertionError } from 'node:assert';
import { nameId } from '../name-id.js';
import { readFileSync } from 'node:fs';
import { HostlinkError } from '../errors.js';
import { Host, type CallRequest, type HostOptions, type Outcome } from '../host/host.js';
import { checkGas, DEFAULT_HOST_OPTIONS, MAX_GAS } from '../host/options.js';
import { failureHint } from '../host/outcome-hint.js';
import { fallBackToRootVms, SANDBOX_USER_ENV } from '../host/sandbox/plan.js';
import { HOSTLINK_BIN } from '../host/supervisor.js';
import { DEFAULT_GAS_LIMIT } from '../protocol/message.js';
import { SANDBOX_ENV } from '../vm/sandbox.js';
import { applyDelta, readState } from '../host/state/merkle.js';
import { readAbi, type ContractAbi } from '../contract/abi.js';
import type { ExecutionResult } from '../protocol/result.js';

/** A named 32-byte id: an account (executor) or a context. `id` is SHA-256 of the name, as `hostlink id NAME` prints. */
export interface Named {
  readonly name: string;
  readonly id: Uint8Array;
  readonly hex: string;
}

/**
 * The id that `hostlink id NAME` prints and the CLI's `name:NAME` form means: SHA-256 of the UTF-8 name. A name
 * that is not UTF-8 text (half a UTF-16 pair, U+FFFD) is refused, as the CLI refuses it.
 */
export function idOf(name: string): Named {
  const id = nameId(name, `idOf(${JSON.stringify(name)})`);
  return { name, id, hex: Buffer.from(id).toString('hex') };
}

/** Something that names an id: a Named, a name, or the 32 bytes. */
export type IdLike = Named | string | Uint8Array;

function toId(x: IdLike): Uint8Array {
  if (x instanceof Uint8Array) {
    if (x.length !== 32) throw new TypeError(`an id is 32 bytes (got ${x.length})`);
    return x;
  }
  return typeof x === 'string' ? idOf(x).id : x.id;
}

/** Bytes from what tests usually have: a string (UTF-8), bytes, or any other value (its JSON). */
export function toBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return Uint8Array.from(Buffer.from(v, 'utf8'));
  return Uint8Array.from(Buffer.from(JSON.stringify(v ?? null), 'utf8'));
}

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

function parseJson(b: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(text(b)) as unknown;
  } catch {
    throw new AssertionError({ message: `${what} is not JSON: ${JSON.stringify(text(b).slice(0, 200))}` });
  }
}

/** An event a call emitted, with its data decoded on request. */
export interface TestEvent {
  kind: string;
  data: Uint8Array;
  handler: string | null;
  text(): string;
  json(): unknown;
}

export interface CallOptions {
  /** The executor (default: the account "alice"). */
  as?: IdLike;
  /** The context (default: the TestHost's default context, "test"). */
  context?: IdLike;
  /**
   * Gas limit of this call: a whole number (up to Number.MAX_SAFE_INTEGER) or a bigint (up to 2^63-1).
   * Default: the Host's (1000000000 unless TestHostOptions.host.gasLimit says otherwise).
   */
  gas?: number | bigint;
  /** Block time for this call (RFC 3339); default: the TestHost's time. */
  datetime?: string | Date;
  /** random_bytes seed for this call (32 bytes, or a name hashed to 32 bytes); default: the TestHost's seed. */
  seed?: Uint8Array | string;
}

/** The outcome of a call or view, with decoding and assertions. `outcome` is the Host's raw Outcome. */
export class CallResult {
  constructor(
    readonly method: string,
    readonly outcome: Outcome,
    /** The limits the call ran with, for the failure text's hint (how to raise the one that stopped it). */
    private readonly limits: { gasLimit: bigint; deadlineMs: number } = { gasLimit: DEFAULT_GAS_LIMIT, deadlineMs: DEFAULT_HOST_OPTIONS.deadlineMs },
  ) {}

  get result(): ExecutionResult {
    return this.outcome.result;
  }
  get ok(): boolean {
    return this.outcome.result.code === 'return';
  }
  get applied(): boolean {
    return this.outcome.applied;
  }
  get logs(): string[] {
    return this.outcome.logs;
  }
  get gasUsed(): bigint {
    return this.outcome.gasUsed;
  }
  /** The CRDT artifact to hand to another replica (Contract.applyArtifact), or null. */
  get artifact(): Uint8Array | null {
    return this.outcome.artifact;
  }
  get events(): TestEvent[] {
    return this.outcome.events.map((e) => ({
      kind: e.kind,
      data: e.data,
      handler: e.handler,
      text: () => text(e.data),
      json: () => parseJson(e.data, `the data of event ${e.kind}`),
    }));
  }
  /** The returned bytes (empty when the method returned nothing); throws when the call failed. */
  get bytes(): Uint8Array {
    const r = this.expectReturn();
    return r.value instanceof Uint8Array ? r.value : new Uint8Array(0);
  }
  text(): string {
    return text(this.bytes);
  }
  /** The returned value decoded as JSON. */
  json(): unknown {
    return parseJson(this.bytes, `the value ${this.method} returned`);
  }

  private describe(): string {
    const r = this.outcome.result;
    const what = r.code === 'return' ? `returned ${JSON.stringify(r.value instanceof Uint8Array ? text(r.value) : r.value)}` : `failed with ${r.code}: ${r.message}${this.hint()}`;
    const logs = this.outcome.logs.length ? `\nlogs:\n  ${this.outcome.logs.join('\n  ')}` : '';
    return `${this.method} ${what}${logs}`;
  }

  /** " (hint: …)" naming the limit that stopped a failed call and the option that raises it, or "". */
  private hint(): string {
    const r = this.outcome.result;
    if (r.code === 'return') return '';
    const hint = failureHint(
      { code: r.code, message: r.message, fingerprintNull: r.fingerprint === null },
      { gasLimit: this.limits.gasLimit, gasOption: '{ gas: N } in call or view (a number or a bigint)', deadlineMs: this.limits.deadlineMs, deadlineOption: 'TestHost.open({ host: { deadlineMs } })' },
    );
    return hint === undefined ? '' : ` (hint: ${hint})`;
  }

  private expectReturn(): Extract<ExecutionResult, { code: 'return' }> {
    const r = this.outcome.result;
    if (r.code !== 'return') throw new AssertionError({ message: `expected ${this.method} to return, but it ${this.describe().slice(this.method.length + 1)}` });
    return r;
  }

  /** Asserts the call returned; gives back the value decoded as JSON (undefined when it returned no bytes). */
  expectOk(): unknown {
    const b = this.bytes;
    return b.length === 0 ? undefined : this.json();
  }

  /**
   * Asserts the call failed. `code` narrows the kind (user_error: the contract's returnErr or panic; vm_error:
   * a limit, a trap, a missing method...); `message` must occur in (string) or match (RegExp) the message.
   * Returns the message.
   */
  expectError(code?: ErrorCode, message?: string | RegExp): string {
    // Checked before the outcome: a misspelt code ('panic') would otherwise fail later as a wrong outcome.
    if (code !== undefined && !(ERROR_CODES as readonly string[]).includes(code)) {
      throw new TypeError(`expectError: '${String(code)}' is not a result code: use one of ${ERROR_CODES.join(', ')} (a panic or returnErr is a user_error; match its text with the message argument)`);
    }
    const r = this.outcome.result;
    if (r.code === 'return') throw new AssertionError({ message: `expected ${this.method} to fail, but it ${this.describe().slice(this.method.length + 1)}` });
    if (code !== undefined && r.code !== code) throw new AssertionError({ message: `expected ${code} from ${this.method}, got ${r.code}: ${r.message}${this.hint()}`, actual: r.code, expected: code });
    if (message !== undefined && !(typeof message === 'string' ? r.message.includes(message) : message.test(r.message))) {
      throw new AssertionError({ message: `${this.method} failed with ${JSON.stringify(r.message)}, which does not match ${String(message)}`, actual: r.message, expected: message });
    }
    return r.message;
  }

  /** The error the contract returned with returnErr, decoded as JSON (asserts it is a user_error). */
  errorJson(): unknown {
    const m = this.expectError('user_error');
    try {
      return JSON.parse(m) as unknown;
    } catch {
      throw new AssertionError({ message: `the error of ${this.method} is not JSON: ${JSON.stringify(m)}` });
    }
  }
}

/** The codes of a failed call (ExecutionResult): what expectError accepts. */
export const ERROR_CODES = ['user_error', 'vm_error', 'internal_error'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** A deployed contract: call and view its methods. */
export class Contract {
  constructor(
    readonly host: TestHost,
    readonly codeHash: Uint8Array,
    readonly abi: ContractAbi,
  ) {}

  get hex(): string {
    return Buffer.from(this.codeHash).toString('hex');
  }

  /** Runs a method and applies its outcome (a Return commits its writes). `input`: string, bytes or a JSON value. */
  async call(method: string, input?: unknown, options: CallOptions = {}): Promise<CallResult> {
    const request = this.host.request(this.codeHash, method, input, options);
    return new CallResult(method, await this.host.host.call(request), this.host.limitsOf(request));
  }

  /** Runs a method without applying anything (reads, dry runs). */
  async view(method: string, input?: unknown, options: CallOptions = {}): Promise<CallResult> {
    const request = this.host.request(this.codeHash, method, input, options);
    return new CallResult(method, await this.host.host.view(request), this.host.limitsOf(request));
  }

  /**
   * Replication between two TestHosts: hands the artifact of a call made on another replica (or the artifact
   * bytes) to this contract's merge method, one that passes it to applyStorageDelta. The method gets the raw
   * artifact as input, or whatever `encode` makes of it (e.g. `(a) => ({ delta: hex(a) })`).
   */
  async applyArtifact(
    from: CallResult | Uint8Array,
    method: string,
    options: CallOptions & { encode?: (artifact: Uint8Array) => unknown } = {},
  ): Promise<CallResult> {
    const artifact = from instanceof Uint8Array ? from : from.artifact;
    if (artifact === null) throw new AssertionError({ message: `the call ${(from as CallResult).method} has no artifact to deliver (it did not flush a delta, or was not applied)` });
    const { encode, ...callOptions } = options;
    return this.call(method, encode ? encode(artifact) : artifact, callOptions);
  }
}

export interface TestHostOptions {
  /** Block time of every call unless a call says otherwise (RFC 3339). Default 2024-01-01T00:00:00Z. */
  datetime?: string | Date;
  /** Seed of random_bytes (32 bytes or a name). Default: the name "seed". */
  seed?: Uint8Array | string;
  /** Default context of calls. Default "test". */
  context?: IdLike;
  /** Options of the underlying Host (default: in-memory store, a pool of one VM process). */
  host?: HostOptions;
}

/** The gas option as the Host takes it: a bigint; a number must be a safe whole number (larger ones lose digits). */
function gasOf(gas: number | bigint): bigint {
  if (typeof gas === 'bigint') {
    checkGas('gas', gas);
    return gas;
  }
  if (typeof gas !== 'number' || !Number.isSafeInteger(gas) || gas < 0) {
    throw new HostlinkError('usage', `gas must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}, or a bigint from 0n to ${MAX_GAS}n (got ${String(gas)})`);
  }
  return BigInt(gas);
}

const iso = (d: string | Date): string => (d instanceof Date ? d.toISOString() : d);
const seedBytes = (s: Uint8Array | string): Uint8Array => (typeof s === 'string' ? idOf(s).id : s);

/** An in-memory host for tests. Close it at the end (after() in node:test). */
export class TestHost {
  private datetime: string;
  private seed: Uint8Array;
  readonly defaultContext: Uint8Array;

  private constructor(
    readonly host: Host,
    options: TestHostOptions,
    private readonly hostOptions: HostOptions,
  ) {
    this.datetime = iso(options.datetime ?? '2024-01-01T00:00:00Z');
    this.seed = seedBytes(options.seed ?? 'seed');
    this.defaultContext = toId(options.context ?? 'test');
  }

  /**
   * Opens an in-memory Host. Run as root where the VM user (nobody) cannot read the installation (a project
   * in a private folder), its VMs run as root with the other sandbox layers on, with a warning, as the
   * hostlink command does; naming a sandbox user (TestHostOptions.host.sandbox, HOSTLINK_SANDBOX_USER) or a
   * sandbox mode of 'required' (which then refuses) or 'off' leaves the choice to you.
   */
  static async open(options: TestHostOptions = {}): Promise<TestHost> {
    const hostOptions: HostOptions = { poolSize: 1, ...options.host };
    const sandbox = hostOptions.sandbox;
    const namesUser = typeof sandbox === 'object' && sandbox.user !== undefined;
    // 'off' runs VMs as the host user anyway; an explicit 'required' keeps refusing, as on the command line.
    const mode = typeof sandbox === 'object' ? sandbox.mode : sandbox ?? process.env[SANDBOX_ENV.mode];
    if (!namesUser && mode !== 'off' && mode !== 'required') {
      const why = fallBackToRootVms(HOSTLINK_BIN);
      if (why !== undefined) {
        process.emitWarning(`${why}; the tests run VMs as root with the other sandbox layers on (install Hostlink where that account can read it, e.g. under /opt, or set ${SANDBOX_USER_ENV} to choose)`, { code: 'HOSTLINK_ROOT_VMS' });
      }
    }
    return new TestHost(await Host.open(hostOptions), options, hostOptions);
  }

  /** @internal The limits a request runs with (for the failure text's hint). */
  limitsOf(request: CallRequest): { gasLimit: bigint; deadlineMs: number } {
    return {
      gasLimit: request.gasLimit ?? this.hostOptions.gasLimit ?? DEFAULT_GAS_LIMIT,
      deadlineMs: request.deadlineMs ?? this.hostOptions.deadlineMs ?? DEFAULT_HOST_OPTIONS.deadlineMs,
    };
  }

  /** A named account; its id is SHA-256 of the name (the same on every TestHost). */
  account(name: string): Named {
    return idOf(name);
  }

  /** A named context (same ids as accounts: SHA-256 of the name). */
  context(name: string): Named {
    return idOf(name);
  }

  /** Sets the block time of the following calls. */
  setTime(datetime: string | Date): void {
    this.datetime = iso(datetime);
  }

  /** Sets the random_bytes seed of the following calls. */
  setSeed(seed: Uint8Array | string): void {
    this.seed = seedBytes(seed);
  }

  /** Deploys a module (bytes or a .wasm path); the contract must pass the deploy-time checks. */
  async deploy(wasm: Uint8Array | string): Promise<Contract> {
    const bytes = typeof wasm === 'string' ? Uint8Array.from(readFileSync(wasm)) : wasm;
    const codeHash = await this.host.deploy(bytes);
    return new Contract(this, codeHash, readAbi(bytes).abi);
  }

  /** @internal The CallRequest of a Contract call. */
  request(codeHash: Uint8Array, method: string, input: unknown, o: CallOptions): CallRequest {
    return {
      codeHash,
      method,
      input: input === undefined ? new Uint8Array(0) : toBytes(input),
      contextId: o.context !== undefined ? toId(o.context) : this.defaultContext,
      executorId: toId(o.as ?? 'alice'),
      datetime: iso(o.datetime ?? this.datetime),
      seed: o.seed !== undefined ? seedBytes(o.seed) : this.seed,
      ...(o.gas !== undefined ? { gasLimit: gasOf(o.gas) } : {}),
    };
  }

  /** The committed value of a raw storage key, or undefined. */
  read(key: string | Uint8Array, context: IdLike = this.defaultContext): Uint8Array | undefined {
    return readState(this.host.store, toId(context), toBytes(key));
  }

  readText(key: string | Uint8Array, context: IdLike = this.defaultContext): string | undefined {
    const v = this.read(key, context);
    return v === undefined ? undefined : text(v);
  }

  /** Every committed entry of a context, keys and values as text where they are UTF-8 (sorted by key). */
  state(context: IdLike = this.defaultContext): { root: string; entries: [Uint8Array, Uint8Array][] } {
    const s = this.host.state(toId(context));
    return { root: Buffer.from(s.root).toString('hex'), entries: s.entries };
  }

  /**
   * Writes raw storage directly, as if a call had (values: string, bytes or JSON; null removes the key). The
   * state root is updated like after a call. For arranging a test's starting state.
   */
  async patch(entries: Record<string, unknown> | [Uint8Array | string, unknown][], context: IdLike = this.defaultContext): Promise<void> {
    const list = Array.isArray(entries) ? entries : Object.entries(entries);
    const writes = list.map(([k, v]): [Uint8Array, Uint8Array | null] => [toBytes(k), v === null ? null : toBytes(v)]);
    const ctx = toId(context);
    await this.host.store.write((txn) => applyDelta(txn, ctx, writes));
  }

  async close(): Promise<void> {
    await this.host.close();
  }
}
