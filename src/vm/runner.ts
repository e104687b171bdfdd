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
import type { Effects } from '../protocol/effects.js';
import type { ExecutionMessage } from '../protocol/message.js';
import type { ExecutionResult } from '../protocol/result.js';
import { CountingMeter, Execution, type GasMeter } from './execution.js';
import { HostClient } from './host-client.js';
import { buildImports, importProblem } from './imports/index.js';
import type { StorageSource } from './storage-overlay.js';

export interface ExecutionReport {
  result: ExecutionResult;
  effects: Effects;
}

/** A compiled module ready to instantiate, with what linking needs. */
export interface LoadedCode {
  module: WebAssembly.Module;
  imports: WebAssembly.ModuleImportDescriptor[];
  exports: Map<string, WebAssembly.ImportExportKind>;
}

/** Compiled modules by code hash (hex), kept for the life of the VM process. */
export class CodeCache {
  private readonly entries = new Map<string, LoadedCode>();
  hits = 0;
  misses = 0;

  get(hashHex: string): LoadedCode | undefined {
    const c = this.entries.get(hashHex);
    if (c) this.hits++;
    else this.misses++;
    return c;
  }

  set(hashHex: string, code: LoadedCode): void {
    this.entries.set(hashHex, code);
  }
}

/** Raised inside the runner to end the execution with a given result. */
class Stop extends Error {
  constructor(readonly result: ExecutionResult) {
    super(result.code === 'return' ? 'return' : result.message);
  }
}

const vmError = (message: string): Stop => new Stop({ code: 'vm_error', message, fingerprint: null });

const METHOD_NAME = /^[A-Za-z0-9_]+$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The storage source a HostClient provides: storage_read for one key, storage_read_many for several. */
export function hostStorage(host: HostClient): StorageSource {
  return {
    readMany(keys) {
      if (keys.length === 1) {
        const r = host.fetch('storage_read', { key: keys[0]! });
        return [r === undefined ? null : r.value];
      }
      const r = host.fetch('storage_read_many', { keys });
      if (r === undefined || r.values.length !== keys.length) {
        throw new HostlinkError('protocol', `storage_read_many answered ${r?.values.length ?? 'absent'} values for ${keys.length} keys`);
      }
      return r.values;
    },
  };
}

function loadCode(msg: ExecutionMessage, host: HostClient, cache: CodeCache): LoadedCode {
  const hashHex = Buffer.from(msg.codeHash).toString('hex');
  const cached = cache.get(hashHex);
  if (cached) return cached;
  const answer = host.fetch('get_code', { codeHash: msg.codeHash });
  if (answer === undefined) throw vmError(`code_not_found ${hashHex}`);
  const bytes = answer.code;
  if (bytes.length > msg.limits.maxModuleSize) {
    throw vmError(`invalid_module module of ${bytes.length} bytes exceeds max_module_size ${msg.limits.maxModuleSize}`);
  }
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(bytes);
  } catch (e) {
    throw vmError(`invalid_module ${(e as Error).message}`);
  }
  const code: LoadedCode = {
    module,
    imports: WebAssembly.Module.imports(module),
    exports: new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind])),
  };
  cache.set(hashHex, code);
  return code;
}

function link(code: LoadedCode, method: string): void {
  for (const imp of code.imports) {
    const problem = importProblem(imp.module, imp.name, imp.kind);
    if (problem !== undefined) throw vmError(`link_error ${problem}`);
  }
  if (code.exports.get('memory') !== 'memory') throw vmError('invalid_module the module does not export its memory as "memory"');
  const kind = code.exports.get(method);
  if (kind === undefined) throw vmError(`method_not_found ${method}`);
  if (kind !== 'function') throw vmError(`method_not_found ${method} is a ${kind} export, not a function`);
}

/** Maps whatever the guest's run threw to a result. Host-side failures (channel lost) are rethrown. */
function classify(err: unknown): ExecutionResult {
  if (err instanceof Stop) return err.result;
  if (err instanceof GuestError) {
    if (err.kind === 'Panic') return { code: 'user_error', message: `Panic: ${err.detail}`, fingerprint: null };
    return { code: 'vm_error', message: `${err.kind} (${err.fn})${err.detail ? `: ${err.detail}` : ''}`, fingerprint: null };
  }
  if (isHostlinkError(err, 'protocol')) {
    return { code: 'internal_error', message: `host_error ${err.message}`, fingerprint: null };
  }
  if (err instanceof HostlinkError) throw err;
  if (err instanceof WebAssembly.RuntimeError) {
    return { code: 'vm_error', message: `wasm_trap ${err.message}`, fingerprint: null };
  }
  if (err instanceof RangeError && /call stack/i.test(err.message)) {
    return { code: 'vm_error', message: 'stack_overflow', fingerprint: null };
  }
  if (err instanceof WebAssembly.LinkError) return { code: 'vm_error', message: `link_error ${err.message}`, fingerprint: null };
  throw err;
}

function returnResult(ex: Execution): ExecutionResult {
  const rv = ex.returnValue;
  if (rv === null) return { code: 'return', value: null };
  if (rv.ok) return { code: 'return', value: rv.bytes as CalldataValue };
  // value_return checked that an Err payload is UTF-8.
  return { code: 'user_error', message: strictUtf8.decode(rv.bytes), fingerprint: null };
}

export interface RunOptions {
  /** Gas accounting; defaults to a meter that only counts. */
  meter?: GasMeter;
}

/** Runs one execution to completion. Throws only when the host is unreachable (the VM must then exit). */
export function runExecution(msg: ExecutionMessage, host: HostClient, cache: CodeCache, options: RunOptions = {}): ExecutionReport {
  const ex = new Execution(msg, hostStorage(host), options.meter ?? new CountingMeter());
  let result: ExecutionResult;
  try {
    if (msg.method.length > msg.limits.maxMethodNameLength || !METHOD_NAME.test(msg.method)) {
      throw vmError(`invalid_method_name method names are 1-${msg.limits.maxMethodNameLength} ASCII letters, digits or _`);
    }
    const code = loadCode(msg, host, cache);
    link(code, msg.method);
    const instance = new WebAssembly.Instance(code.module, buildImports(ex, code.imports));
    ex.attachMemory(instance.exports.memory as WebAssembly.Memory);
    const fn = instance.exports[msg.method] as () => unknown;
    if (fn.length !== 0) throw vmError(`invalid_signature ${msg.method} must take no parameters and return nothing`);
    const returned = fn();
    if (returned !== undefined) throw vmError(`invalid_signature ${msg.method} must take no parameters and return nothing`);
    result = returnResult(ex);
  } catch (err) {
    result = classify(err);
  }
  return { result, effects: ex.effects() };
}
