/**
 * Runs one execution: load the code (cached by hash), link the host functions, instantiate a fresh instance,
 * call the method, and turn whatever happened into a result and effects. Everything here is synchronous:
 * host functions block on the host channel.
 *
 * Failure classes (docs/results.md):
 *   user_error: value_return(Err), panic, panic_utf8 (the contract's own decision)
 *   vm_error: traps, limits, invalid module or method, missing code (the VM stopped the contract)
 *   internal_error: the host answered a request with an error (not the contract's fault)
 */
import { GuestError, HostlinkError, isHostlinkError } from '../errors.js';
import type { CalldataValue } from '../protocol/calldata.js';
import { emptyEffects, type Effects } from '../protocol/effects.js';
import type { ExecutionMessage } from '../protocol/message.js';
import { isMethodName, methodNameRule } from '../protocol/method-name.js';
import { MAX_BATCH_KEYS } from '../protocol/messages.js';
import type { BlockResult } from '../protocol/nondet.js';
import { NONDET_LIMITS } from '../protocol/nondet.generated.js';
import type { ExecutionResult } from '../protocol/result.js';
import { Execution, type GasMeter } from './execution.js';
import { captureFingerprint, type Fingerprint } from './fingerprint.js';
import { HostClient } from './host-client.js';
import { FINGERPRINT_GAS, GAS_SCHEDULE_VERSION, HANDED_TO_HOST_GAS, INSTANTIATION_GAS, ROUND_TRIP_GAS } from './host-functions.generated.js';
import { ModuleLink } from './imports/index.js';
import { effectLimitProblem, handedBytes } from '../protocol/effect-limits.js';
import { MAX_CODE_CACHE_BYTES } from '../protocol/bounds.generated.js';
import { MemoryPool } from './memory-pool.js';
import { createMeter, engineRefusal, exportsMemory, INSTRUMENTATION_VERSION, ModuleRejected, OutOfGas, prepareModule, type InstantiationWork, type Meter, type PreparedModule } from './instrument/index.js';
import { chargeRoundTrip, meteredHost, type RoundTripDebt } from './metered-host.js';
import { NondetBlocks } from './nondet-blocks.js';
import { EndExecution, type SubInstanceRequest } from './sub-instance.js';
import { policyFor, policyKey } from './policy.js';
import type { StorageSource } from './storage-overlay.js';
import { checkMethodExport, classifyTrap } from './traps.js';
import { reasonMessage, reasonResult } from '../protocol/reasons.js';
import { extend } from '../extend.js';

export interface ExecutionReport {
  result: ExecutionResult;
  effects: Effects;
}

/** A validated, instrumented and compiled module. */
export interface LoadedCode {
  prepared: PreparedModule;
  module: WebAssembly.Module;
  imports: WebAssembly.ModuleImportDescriptor[];
  /** The module's import functions, built once and linked into each fresh instance (imports/index.ts). */
  link: ModuleLink;
}

/** What a rejection counts against the cache's bytes. */
const REJECTION_BYTES = 1024;

/**
 * Prepared modules by (code hash, instrumentation version, gas schedule, policy), kept by the VM process between
 * calls: repeated calls pay neither the instrumentation nor the compilation. Rejections are cached too. The
 * entries' instrumented bytes are bounded by `maxBytes` (max_code_cache_bytes): `trim`, called when an execution
 * ends, drops the entries used longest ago. Never during an execution, so that one call's modules (the main
 * instance and a variant per sub-instance depth) stay compiled while it runs.
 */
export class CodeCache {
  /** In order of last use, oldest first. */
  private readonly entries = new Map<string, LoadedCode | ModuleRejected>();
  private held = 0;
  hits = 0;
  misses = 0;

  constructor(
    private readonly maxBytes: number = MAX_CODE_CACHE_BYTES,
    /** The memories lent to this VM's instances (memory-pool.ts). */
    readonly memories: MemoryPool = new MemoryPool(),
  ) {}

  get(key: string): LoadedCode | ModuleRejected | undefined {
    const c = this.entries.get(key);
    if (c) {
      this.hits++;
      this.entries.delete(key);
      this.entries.set(key, c);
    } else this.misses++;
    return c;
  }

  set(key: string, code: LoadedCode | ModuleRejected): void {
    const old = this.entries.get(key);
    if (old !== undefined) this.held -= sizeOf(old);
    this.entries.delete(key);
    this.entries.set(key, code);
    this.held += sizeOf(code);
  }

  /** Instrumented bytes held (rejections count REJECTION_BYTES). */
  get bytes(): number {
    return this.held;
  }

  /** Drops the entries used longest ago until the cache is within its bytes. */
  trim(): void {
    for (const [key, code] of this.entries) {
      if (this.held <= this.maxBytes) break;
      this.entries.delete(key);
      this.held -= sizeOf(code);
    }
  }
}

const sizeOf = (c: LoadedCode | ModuleRejected): number => (c instanceof ModuleRejected ? REJECTION_BYTES : c.prepared.bytes.length);

/**
 * Raised inside the runner to end the execution with a given result. Internal control flow (src/errors.ts,
 * INTERNAL_ERROR_CLASSES): caught by the runner itself.
 */
class Stop extends Error {
  constructor(readonly result: ExecutionResult) {
    super(result.code === 'return' ? 'return' : result.message);
  }
}

const vmError = (message: string): Stop => new Stop({ code: 'vm_error', message, fingerprint: null });

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The storage source a HostClient provides: storage_read for one key, storage_read_many for several. Each key
 * the host is asked to look up costs round_trip.per_key, charged before the request is sent (the host checks
 * the gas used pays for them: src/protocol/effect-limits.ts).
 */
export function hostStorage(host: HostClient, meter: GasMeter): StorageSource {
  return {
    readMany(keys) {
      if (keys.length === 1) {
        meter.charge(PER_KEY_GAS);
        const r = host.fetch('storage_read', { key: keys[0]! });
        return [r === undefined ? null : r.value];
      }
      // At most MAX_BATCH_KEYS per request (a larger one is a protocol violation): more keys, more requests.
      // The host answers the longest prefix whose values fit in one frame; the rest are asked for again.
      const values: (Uint8Array | null)[] = [];
      while (values.length < keys.length) {
        const batch = keys.slice(values.length, values.length + MAX_BATCH_KEYS);
        meter.charge(PER_KEY_GAS * BigInt(batch.length));
        const r = host.fetch('storage_read_many', { keys: batch });
        if (r === undefined || r.values.length === 0 || r.values.length > batch.length) {
          throw new HostlinkError('protocol', `storage_read_many answered ${r?.values.length ?? 'absent'} values for ${batch.length} keys`);
        }
        for (const v of r.values) values.push(v);
      }
      return values;
    },
  };
}

function loadCode(msg: ExecutionMessage, host: HostClient, cache: CodeCache): LoadedCode {
  const policy = policyFor(msg);
  const hashHex = Buffer.from(msg.codeHash).toString('hex');
  const key = `${hashHex}:${INSTRUMENTATION_VERSION}:${GAS_SCHEDULE_VERSION}:${policyKey(policy)}`;
  let entry = cache.get(key);
  if (entry === undefined) {
    const answer = host.fetch('get_code', { codeHash: msg.codeHash });
    if (answer === undefined) throw vmError(reasonMessage('code_not_found', hashHex));
    try {
      const prepared = prepareModule(answer.code, policy, { importMemory: true, compiledAtOnce: true });
      const module = new WebAssembly.Module(prepared.bytes);
      const imports = WebAssembly.Module.imports(module);
      entry = { prepared, module, imports, link: new ModuleLink(imports) };
    } catch (e) {
      // The engine's own refusal of instrumented code (a V8 limit) depends only on the bytes: cache it as a
      // rejection so every call gets the same named VMError at once, in the deploy check's words.
      if (e instanceof WebAssembly.CompileError) entry = engineRefusal(answer.code);
      else if (!(e instanceof ModuleRejected)) throw e;
      else entry = e;
    }
    cache.set(key, entry);
  }
  if (entry instanceof ModuleRejected) throw vmError(entry.message);
  return entry;
}

/** The fingerprint as the calldata map of docs/results.md: {frames: [int], memories: [bytes]}. */
function fingerprintValue(f: Fingerprint): CalldataValue {
  return new Map<string, CalldataValue>([
    ['frames', f.frames.map((i) => BigInt(i))],
    ['memories', f.memoryHashes],
  ]);
}

/** Maps whatever the guest's run threw to a result (fingerprint added later). Host-side failures are rethrown. */
function classify(err: unknown): ExecutionResult {
  if (err instanceof Stop) return err.result;
  if (err instanceof EndExecution) return err.result;
  if (err instanceof GuestError) {
    if (err.kind === 'Panic') return { code: 'user_error', message: `Panic: ${err.detail}`, fingerprint: null };
    return { code: 'vm_error', message: `${err.kind} (${err.fn})${err.detail ? `: ${err.detail}` : ''}`, fingerprint: null };
  }
  if (isHostlinkError(err, 'protocol')) {
    return reasonResult('host_error', err.message);
  }
  if (err instanceof HostlinkError) throw err;
  const trap = classifyTrap(err);
  if (trap) return extend(trap, { fingerprint: null });
  // Not a known trap: never guess a deterministic-looking VMError for it.
  return reasonResult('vm_bug', (err as Error)?.message ?? String(err));
}

function returnResult(ex: Execution): ExecutionResult {
  const rv = ex.returnValue;
  if (rv === null) return { code: 'return', value: null };
  if (rv.ok) return { code: 'return', value: rv.bytes as CalldataValue };
  // value_return checked that an Err payload is UTF-8.
  return { code: 'user_error', message: strictUtf8.decode(rv.bytes), fingerprint: null };
}

/** What running one instance produced: its result, and the error that ended it (for gasUsed). */
interface InstanceRun {
  result: ExecutionResult;
  failure: unknown;
}

/** Checks the method, instantiates a fresh instance of the code and calls the method. Never throws guest errors. */
function runInstance(ex: Execution, code: LoadedCode, meter: Meter, fingerprint: boolean, memories: MemoryPool): InstanceRun {
  const limits = code.prepared.importedMemory;
  if (limits === undefined) return runLent(ex, code, meter, fingerprint, undefined);
  // Taken back when the run is over: nothing refers to the instance then (results, effects, fingerprint are copies).
  return memories.lend(limits, (memory) => runLent(ex, code, meter, fingerprint, memory));
}

function runLent(ex: Execution, code: LoadedCode, meter: Meter, fingerprint: boolean, lent: WebAssembly.Memory | undefined): InstanceRun {
  const method = ex.message.method;
  // Set once the instance exists, as when the module defined its memory: a trap while it is being created
  // (a data segment out of bounds, the start function) has no memory in its fingerprint.
  let memory: WebAssembly.Memory | undefined;
  try {
    const notCallable = checkMethodExport(code.prepared, method);
    if (notCallable) throw new Stop(extend(notCallable, { fingerprint: null }));
    if (!exportsMemory(code.prepared)) {
      throw vmError(reasonMessage('invalid_module', 'the module does not export its memory as "memory"'));
    }
    // The start function runs inside the constructor: metered, and its traps are classified like the method's.
    // The instance is fresh; only the import functions are reused, serving `ex` and `meter` for its whole life.
    code.link.run(ex, meter, (imports) => {
      const instance = new WebAssembly.Instance(code.module, imports);
      memory = instance.exports.memory as WebAssembly.Memory;
      ex.attachMemory(memory);
      (instance.exports[method] as () => void)();
    }, lent);
    if (ex.parent === null) {
      // The count limits were enforced as actions were queued; storage writes and bytes are known at the end.
      const over = effectLimitProblem(ex.message.limits, ex.effects());
      if (over !== undefined) throw new GuestError('EffectsOverflow', 'result', over);
    }
    return { result: returnResult(ex), failure: undefined };
  } catch (err) {
    let result = classify(err);
    // A trap inside the contract gets a fingerprint: its backtrace and memory hashes (docs/results.md).
    if (fingerprint && !(err instanceof Stop) && !(err instanceof EndExecution) && (result.code === 'vm_error' || result.code === 'user_error')) {
      result = extend(result, { fingerprint: fingerprintValue(captureFingerprint(err, memory ? [memory] : [], code.prepared)) });
      // Hashing the memories is work the guest caused: charged from what is left (a trap has already used all).
      chargeUpToLeft(meter, BigInt(memory?.buffer.byteLength ?? 0) * FINGERPRINT_PER_BYTE);
    }
    return { result, failure: err };
  }
}

/** Gas of creating one instance of a module (protocol/gas-costs.json `instantiation`). */
function instantiationGas(w: InstantiationWork): bigint {
  const g = INSTANTIATION_GAS;
  const units =
    w.dataBytes * g.perDataByte +
    w.tableSlots * g.perTableSlot +
    w.elements * g.perElement +
    w.initialPages * g.perInitialPage +
    w.elementSegments * g.perElementSegment +
    w.dataSegments * g.perDataSegment +
    w.imports * g.perImport +
    w.exports * g.perExport +
    w.globals * g.perGlobal;
  // Every term is far below 2^53 (the module budgets bound each count), so the sum is exact.
  return BigInt(units);
}

/**
 * Runs a sub-instance (a block's leader or validator method, or a sandbox) of the parent's module, inside this
 * process. Its budget comes out of the parent's: at most 1/sub_instance_gas_share of the gas left (charged to
 * the parent as used; a trap uses the whole share), 1/sub_instance_memory_share of the parent's memory pages, the
 * register capacity the parent does not use, and 1/sub_instance_stack_share of the parent's stack-height limit, so
 * that every nested instance fits on one native stack. Internal failures (the host lost) end the whole execution.
 * Round-trip gas is the one charge not bounded by the share: an answer's bytes the share cannot pay go to the
 * caller (`parentDebt` when the caller is itself a sub-instance), because the host books them against the call.
 */
function spawnSubInstance(parent: Execution, request: SubInstanceRequest, host: HostClient, cache: CodeCache, parentDebt: RoundTripDebt | undefined): BlockResult {
  const limits = parent.message.limits;
  // A fixed share of the caller's limit, never what the instances above happen to hold: the limit is compiled
  // into the module, so a limit that followed the guest's memory.grow gave a new compiled variant of the whole
  // module for each size, uncharged (measured: 37 variants in one call; with a 9 MB module, 20 s and 2.3 GB in
  // the VM for a call of 330M gas). Like the stack, all nested instances together stay under twice the limit.
  const share = Math.floor(limits.maxMemoryPages / NONDET_LIMITS.subInstanceMemoryShare);
  if (share < 1) {
    return { code: 'vm_error', message: reasonMessage('OOM', `memory: a sub-instance here would get no page of its caller's ${limits.maxMemoryPages}`) };
  }
  // The share comes from the gas left as the deterministic code sees it: without what the non-deterministic blocks'
  // methods used, which differs by role (the leader's method, the validator's, none in a sync replay). From the
  // real gas left, a sandbox after a block got a different share in each role, so the same agreed proposals gave
  // the leader a VMError out_of_gas where the sync replay's sandbox returned. Never more than is really left.
  const gasLeft = parent.message.gasLimit - parent.meter.gasUsed();
  const seenLeft = gasLeft + parent.blockGas;
  const fair = seenLeft / BigInt(NONDET_LIMITS.subInstanceGasShare);
  const gasShare = fair < gasLeft ? fair : gasLeft;
  const message: ExecutionMessage = extend(parent.message, {
    method: request.method,
    input: request.input,
    gasLimit: gasShare,
    limits: extend(limits, {
      maxMemoryPages: share,
      maxRegistersCapacity: limits.maxRegistersCapacity - parent.registers.used,
      maxStackSize: Math.floor(limits.maxStackSize / NONDET_LIMITS.subInstanceStackShare),
    }),
    leaderResults: null,
    sync: false,
  });
  const meter = createMeter(gasShare, policyFor(message));
  // Round-trip gas the share cannot pay (an answer's bytes, booked by the host against the call's gas): the caller's.
  let owed = 0n;
  const debt: RoundTripDebt = { limit: gasShare, owe: (gas) => void (owed += gas) };
  const ex = new Execution(message, { readMany: () => [] }, meter, meteredHost(host, meter, debt), { parent, rules: request.rules });
  ex.spawner = (p, r) => spawnSubInstance(p, r, host, cache, debt);
  let run: InstanceRun;
  try {
    if (!isMethodName(request.method, limits.maxMethodNameLength)) {
      throw vmError(reasonMessage('invalid_method_name', methodNameRule(limits.maxMethodNameLength)));
    }
    const code = loadCode(message, host, cache);
    // The fresh instance copies data, fills its table and allocates its memory again at every sub-instance:
    // paid from the sub-instance's own gas before it is created (an instance that cannot pay is its out_of_gas).
    meter.charge(instantiationGas(code.prepared.instantiation));
    run = runInstance(ex, code, meter, false, cache.memories);
  } catch (err) {
    if (err instanceof OutOfGas) run = { result: { code: 'vm_error', message: reasonMessage('out_of_gas'), fingerprint: null }, failure: err };
    else if (err instanceof Stop) run = { result: err.result, failure: err };
    else throw err;
  }
  const spent = meter.gasUsed(run.failure);
  parent.meter.charge(spent);
  if (request.rules.kind === 'nondet') parent.blockGas += spent + owed;
  // The round trips the share could not pay are the caller's, beyond the share: the host booked their bytes
  // against the call's gas. A caller that cannot pay them runs out of gas (a sub-instance owes its own caller
  // the rest), exactly as if it had made the request itself; one that can sees the sub-instance's out_of_gas.
  if (owed > 0n) chargeRoundTrip(parent.meter, owed, parentDebt);
  const r = run.result;
  if (r.code === 'internal_error') throw new EndExecution(r);
  if (r.code === 'return') {
    const rv = ex.returnValue;
    return rv === null ? { code: 'return', data: new Uint8Array(0), returnedNothing: true } : { code: 'return', data: rv.bytes.slice() };
  }
  return { code: r.code, message: r.message };
}

/** Runs one execution to completion. Throws only when the host is unreachable (the VM must then exit). */
export function runExecution(msg: ExecutionMessage, host: HostClient, cache: CodeCache): ExecutionReport {
  const policy = policyFor(msg);
  const meter = createMeter(msg.gasLimit, policy);
  // Requests made on the guest's behalf are charged; fetching the code (loadCode, with `host`) is not.
  const guestHost = meteredHost(host, meter);
  const ex = new Execution(msg, hostStorage(guestHost, meter), meter, guestHost);
  ex.nondet = new NondetBlocks(msg.leaderResults, msg.sync);
  ex.spawner = (parent, request) => spawnSubInstance(parent, request, host, cache, undefined);
  let run: InstanceRun;
  try {
    if (!isMethodName(msg.method, msg.limits.maxMethodNameLength)) {
      throw vmError(reasonMessage('invalid_method_name', methodNameRule(msg.limits.maxMethodNameLength)));
    }
    run = runInstance(ex, loadCode(msg, host, cache), meter, true, cache.memories);
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    run = { result: err.result, failure: err };
  }
  let effects = ex.effects();
  let result = ex.nondet.finish(run.result);
  // A failed call's changes are never applied: they are not handed over either (the host would decode and hash
  // them for nothing, and changes over the limits it must treat as a protocol violation).
  if (result.code !== 'return') effects = keptOnFailure(effects, msg.limits);
  let gasUsed = meter.gasUsed(run.failure);
  // What the call hands the host is paid for now (handed_to_host, protocol/gas-costs.json): the host decodes,
  // hashes and applies every byte on its event loop, at several times the cost of the copy into the VM that the
  // host functions' per_byte paid for. A call that cannot pay hands over only its logs, events and blocks'
  // results, and a result that is the contract's own data (a return value, an Err) becomes out_of_gas.
  const gas = BigInt(handedBytes(result, effects)) * HANDED_PER_BYTE;
  if (gas <= msg.gasLimit - gasUsed) {
    gasUsed += gas;
  } else {
    effects = keptOnFailure(effects, msg.limits);
    if (result.code === 'return' || result.code === 'user_error') result = reasonResult('out_of_gas');
    gasUsed = msg.gasLimit;
  }
  effects.gasUsed = gasUsed;
  cache.trim();
  return { result, effects };
}

const HANDED_PER_BYTE = BigInt(HANDED_TO_HOST_GAS.perByte);
const PER_KEY_GAS = BigInt(ROUND_TRIP_GAS.perKey);
const FINGERPRINT_PER_BYTE = BigInt(FINGERPRINT_GAS.perByte);

/** Charges `amount`, or all that is left when it is less (the meter then reports its whole limit used). */
function chargeUpToLeft(meter: Meter, amount: bigint): void {
  try {
    meter.charge(amount);
  } catch (e) {
    if (!(e instanceof OutOfGas)) throw e;
  }
}

/**
 * What a failed call still hands the host (which applies nothing of it): its logs, events and blocks' results
 * while they fit max_effect_bytes. They are bounded one by one, not by it, and the host refuses effects over it
 * from any VM (an honest one was judged compromised): the diagnostics go first.
 */
function keptOnFailure(e: Effects, limits: ExecutionMessage['limits']): Effects {
  const { logs, events, nondetResults, nondetDisagreement } = e;
  let kept: Effects = extend(emptyEffects(), { logs, events, nondetResults, nondetDisagreement });
  if (effectLimitProblem(limits, kept) !== undefined) kept = extend(emptyEffects(), { nondetResults, nondetDisagreement });
  if (effectLimitProblem(limits, kept) !== undefined) kept = emptyEffects();
  return kept;
}
