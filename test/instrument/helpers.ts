// Shared by the instrumentation tests (no tests here). Builds fixtures with wabt, runs prepared modules with a
// minimal stand-in for the host functions, and reports outcomes in the shape of test/hostile/expected.json.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HOST_FUNCTIONS } from '../../src/vm/host-functions.generated.js';
import { createMeter, prepareModule, type Meter, type ModulePolicy, type PreparedModule } from '../../src/vm/instrument/index.js';
import { checkCatalogueImport } from '../../src/vm/instrument/catalogue.js';
import { captureFingerprint } from '../../src/vm/fingerprint.js';
import { checkMethodExport, classifyTrap } from '../../src/vm/traps.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Wabt {
  parseWat(name: string, text: string, features?: Record<string, boolean>): {
    toBinary(o: Record<string, unknown>): { buffer: Uint8Array };
    destroy(): void;
  };
}
let wabtPromise: Promise<Wabt> | undefined;
async function wabt(): Promise<Wabt> {
  wabtPromise ??= import('wabt').then((m) => (m.default as unknown as () => Promise<Wabt>)());
  return wabtPromise;
}

/** Every feature wabt knows, so that fixtures for rejected features parse too. */
export const ALL_FEATURES = {
  exceptions: true, mutable_globals: true, sat_float_to_int: true, sign_extension: true, simd: true, threads: true,
  multi_value: true, tail_call: true, bulk_memory: true, reference_types: true,
};

export async function wat(text: string, options: { names?: boolean } = {}): Promise<Uint8Array> {
  const w = await wabt();
  const m = w.parseWat('fixture.wat', text, ALL_FEATURES);
  try {
    return new Uint8Array(m.toBinary({ write_debug_names: options.names ?? false }).buffer);
  } finally {
    m.destroy();
  }
}

/** A policy without its import check: the shape of the corpus's JSON. */
export type PolicyLimits = Omit<ModulePolicy, 'checkImport'>;

export interface HostileCase {
  file: string;
  method: string;
  expect: { code: 'return' | 'vm_error'; message?: string; value?: string };
}

export interface HostileCorpus {
  policy: PolicyLimits;
  gasLimit: string;
  cases: HostileCase[];
}

export function loadCorpus(): HostileCorpus {
  return JSON.parse(readFileSync(`${ROOT}test/hostile/expected.json`, 'utf8')) as HostileCorpus;
}

export function policyFrom(limits: PolicyLimits, checkImport: ModulePolicy['checkImport'] = checkCatalogueImport): ModulePolicy {
  return { ...limits, checkImport };
}

/** The policy of the hostile corpus, used by most tests. */
export const TEST_POLICY: ModulePolicy = policyFrom(loadCorpus().policy);

/** Policy that accepts every import (for fixtures that import test functions). */
export const OPEN_POLICY: ModulePolicy = { ...TEST_POLICY, checkImport: () => undefined };

export function loadContract(name: string): Uint8Array {
  return new Uint8Array(readFileSync(`${ROOT}bench/contracts/${name}/build/${name}.wasm`));
}

export interface Outcome {
  code: 'return' | 'vm_error' | 'internal_error';
  message?: string;
  value?: string;
  gasUsed?: string;
  frames?: number[];
  memory?: string[];
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/**
 * Prepares, instantiates and calls `method` the way the VM will: guest-ABI host functions under "env" (only
 * value_return and panic do anything; each charges its class base cost), a fresh meter and instance.
 */
export function runGuest(bytes: Uint8Array, method: string, policy: ModulePolicy, gasLimit: bigint): Outcome {
  let prepared: PreparedModule;
  try {
    prepared = prepareModule(bytes, policy);
  } catch (e) {
    return failure(e, undefined, undefined, undefined);
  }
  const bad = checkMethodExport(prepared, method);
  if (bad) return { code: bad.code, message: bad.message };
  const meter = createMeter(gasLimit, policy);
  let memory: WebAssembly.Memory | undefined;
  let value: Uint8Array | undefined;
  const env: Record<string, (...args: bigint[]) => unknown> = {};
  for (const name of Object.keys(HOST_FUNCTIONS)) {
    env[name] = () => {
      meter.charge(10n);
      throw new Error(`host function ${name} is not available in this test`);
    };
  }
  env.value_return = (ptr: bigint) => {
    meter.charge(20n);
    const view = new DataView(memory!.buffer);
    const p = Number(ptr);
    const dataPtr = Number(view.getBigUint64(p + 8, true));
    const len = Number(view.getBigUint64(p + 16, true));
    meter.charge(BigInt(len));
    value = new Uint8Array(memory!.buffer.slice(dataPtr, dataPtr + len));
  };
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes), { env, ...meter.imports });
  } catch (e) {
    return failure(e, meter, [], prepared);
  }
  memory = instance.exports.memory as WebAssembly.Memory | undefined;
  try {
    (instance.exports[method] as () => void)();
  } catch (e) {
    return failure(e, meter, memory ? [memory] : [], prepared);
  }
  return { code: 'return', value: value ? hex(value) : '', gasUsed: meter.gasUsed().toString() };
}

function failure(e: unknown, meter: Meter | undefined, memories: WebAssembly.Memory[] | undefined, prepared: PreparedModule | undefined): Outcome {
  const c = classifyTrap(e);
  const out: Outcome = c ? { code: c.code, message: c.message } : { code: 'internal_error', message: String(e) };
  if (meter) out.gasUsed = meter.gasUsed(e).toString();
  if (prepared && memories) {
    const fp = captureFingerprint(e, memories, prepared);
    out.frames = fp.frames;
    out.memory = fp.memoryHashes.map(hex);
  }
  return out;
}

/** Runs `code` (an ES module body that prints to stdout) in a child node with extra V8 flags. */
export async function runChild(flags: string[], code: string): Promise<string> {
  const { execFileSync } = await import('node:child_process');
  return execFileSync(process.execPath, [...flags, '--input-type=module', '-e', code], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
}

export const TIERS = {
  liftoff: ['--liftoff', '--no-wasm-tier-up'],
  turbofan: ['--no-liftoff'],
} as const;

export const helpersUrl = import.meta.url;
