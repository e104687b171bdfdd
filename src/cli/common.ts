/** Helpers shared by the CLI commands: the common options, ids, input and printing. */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HostlinkError } from '../errors.js';
import { readBounded } from '../read-bounded.js';
import { inertJson, isPlainText, logText } from '../terminal-text.js';
import { nameId } from '../name-id.js';
import { MAX_DEADLINE_MS, MAX_INPUT_BYTES } from '../protocol/bounds.generated.js';
import { calldataToJson } from '../protocol/calldata.js';
import { DEFAULT_GAS_LIMIT, DEFAULT_LIMITS } from '../protocol/message.js';
import type { ExecutionMode, FollowUpHalt, Host, HostOptions, Outcome } from '../host/host.js';
import { DataDirInUse, unusableDataDir } from '../host/state/data-dir.js';
import { failureHint, isTimeout, type HintContext } from '../host/outcome-hint.js';
import { DEFAULT_HOST_OPTIONS, MAX_GAS } from '../host/options.js';
import { haltedFollowUpName } from '../host/call-types.js';
import { commandOf, readServeNote } from './serve-note.js';
import { fallBackToRootVms as fallBackToRoot, SANDBOX_USER_ENV } from '../host/sandbox/plan.js';
import { HOSTLINK_BIN, type Transport } from '../host/supervisor.js';
import { isSandboxMode, SANDBOX_ENV, type SandboxMode } from '../vm/sandbox.js';
import { launcherStatus, sandboxAddon } from '../vm/sandbox-native.js';

export const DEFAULT_DATA_DIR = '.hostlink';

/** Options of the commands that read or write the store without running a VM (deploy, state, codes, ...). */
export const STORE_OPTIONS = {
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Options every command that runs VMs accepts: the store's, and how VMs start. */
export const HOST_OPTIONS = {
  ...STORE_OPTIONS,
  transport: { type: 'string' },
  mode: { type: 'string' },
  deadline: { type: 'string' },
  sandbox: { type: 'string' },
  launcher: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const DATA_DIR_HELP = `  --data-dir DIR        where code and state live (default ./${DEFAULT_DATA_DIR})`;
const OUTPUT_HELP = `  --json                machine-readable output
  --verbose             stack traces on errors`;

export const STORE_OPTIONS_HELP = `common options:
${DATA_DIR_HELP}
${OUTPUT_HELP}`;

export const HOST_OPTIONS_HELP = `common options:
${DATA_DIR_HELP}
  --transport unix|tcp  how VM processes connect (default unix)
  --mode pool|oneshot   a pooled VM process (reused by follow-up calls), or one VM process per call
                        (default pool; either way one call starts one VM process)
  --launcher process|runtime|thread  how VMs start: processes that dial the host (default), processes
                        that announce themselves through the gRPC Runtime handshake (docs/runtime.md), or
                        worker threads of the host process (no OS sandbox: needs --sandbox off)
  --deadline MS         wall-clock limit of one execution (default ${DEFAULT_HOST_OPTIONS.deadlineMs})
  --sandbox MODE        required|best-effort|off: the VM processes' OS sandbox (default: required when the
                        native parts are built, else best-effort with a warning; HOSTLINK_SANDBOX overrides)
${OUTPUT_HELP}`;

type Parsed<O extends NonNullable<ParseArgsConfig['options']>> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>;

/**
 * Node's parseArgs errors as one line in our words: which option is wrong, and what to do. (Its own texts
 * talk about `--` separators and "ambiguous" arguments, and a negative number is such an argument.)
 */
export function parseError(e: unknown, usage: string): HostlinkError {
  const command = /^usage: (hostlink \S+)/.exec(usage)?.[1] ?? 'hostlink';
  const err = e as Error & { code?: string };
  const msg = err.message ?? String(e);
  const option = /'(-{1,2}[^' ]+)/.exec(msg)?.[1];
  const help = `run ${command} --help for its options`;
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return new HostlinkError('usage', `unknown option ${option ?? ''} for ${command}: ${help}`);
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/does not take an argument/.test(msg)) return new HostlinkError('usage', `${option} takes no value: ${help}`);
    return new HostlinkError('usage', `${option} needs a value (a value that starts with '-' is written ${option}=VALUE, e.g. ${option}=-1): ${help}`);
  }
  return new HostlinkError('usage', `${msg.split('\n')[0]}: ${help}`);
}

/** parseArgs with usage errors as one-line HostlinkError('usage'). */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O, usage: string): Parsed<O> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw parseError(e, usage);
  }
}

/**
 * The CLI's sandbox: --sandbox, else HOSTLINK_SANDBOX, else 'required' when the launcher and the addon are built
 * and 'best-effort' when they are not (a machine without a C compiler still runs the tools; the host prints
 * which layers are missing). The library's own default (Host.open) is always 'required'.
 */
export function cliSandbox(flag: string | undefined): SandboxMode {
  const v = flag ?? process.env[SANDBOX_ENV.mode];
  if (v !== undefined && v !== '') {
    if (!isSandboxMode(v)) throw new HostlinkError('usage', `--sandbox must be required, best-effort or off, got '${v}'`);
    if (v === 'best-effort') fallBackToRootVms(); // an explicit 'required' keeps refusing
    return v;
  }
  const mode = sandboxAddon().addon && launcherStatus().reason === undefined ? 'required' : 'best-effort';
  fallBackToRootVms();
  return mode;
}

/**
 * A root host runs VMs as an unprivileged user, which must be able to read the installation. A checkout in a
 * private folder (mktemp -d, /root) is not readable: rather than fail every call, the command line runs VMs as
 * root with every other layer on, and says so. The library (Host.open) never does this: it refuses.
 */
function fallBackToRootVms(): void {
  const why = fallBackToRoot(HOSTLINK_BIN);
  if (why !== undefined) {
    process.stderr.write(`hostlink: warning: ${why}; VMs run as root with the other sandbox layers on (install Hostlink where that account can read it, e.g. under /opt, or set ${SANDBOX_USER_ENV} or --sandbox to choose)\n`);
  }
}

/** --data-dir as an absolute path (default ./.hostlink). */
export function dataDirOf(values: { 'data-dir'?: string }): string {
  // resolve('') is the current directory: an empty value (an unset shell variable) would put the store there.
  if (values['data-dir'] === '') throw new HostlinkError('usage', `--data-dir must not be empty: give a directory, or leave the option out for ./${DEFAULT_DATA_DIR}`);
  return resolve(values['data-dir'] ?? DEFAULT_DATA_DIR);
}

export function hostOptions(values: { 'data-dir'?: string; transport?: string; mode?: string; deadline?: string; sandbox?: string; launcher?: string }): HostOptions {
  // A command runs one call at a time: a pool of one VM process is the fewest processes for it.
  const o: HostOptions = { dataDir: dataDirOf(values), poolSize: 1, sandbox: cliSandbox(values.sandbox) };
  if (values.transport !== undefined) {
    if (values.transport !== 'unix' && values.transport !== 'tcp') throw new HostlinkError('usage', '--transport must be unix or tcp');
    o.transport = values.transport as Transport;
  }
  if (values.launcher !== undefined) {
    if (values.launcher !== 'process' && values.launcher !== 'runtime' && values.launcher !== 'thread') throw new HostlinkError('usage', '--launcher must be process, runtime or thread');
    o.launcher = values.launcher;
  }
  if (values.mode !== undefined) {
    if (values.mode !== 'pool' && values.mode !== 'oneshot') throw new HostlinkError('usage', '--mode must be pool or oneshot');
    o.mode = values.mode as ExecutionMode;
  }
  if (values.deadline !== undefined) o.deadlineMs = parseDeadline(values.deadline);
  return o;
}

/** `--deadline MS`: a whole number of milliseconds the host accepts. */
export function parseDeadline(text: string): number {
  const ms = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(ms) || ms <= 0 || ms > MAX_DEADLINE_MS) {
    throw new HostlinkError('usage', `--deadline must be a whole number of milliseconds from 1 to ${MAX_DEADLINE_MS} (got ${JSON.stringify(text)})`);
  }
  return ms;
}

/** How long a command waits for another hostlink process to release the data directory. */
export const DATA_DIR_WAIT_MS = 30_000;

/** The Host options of a command that only reads or writes the store: no VM runs, so no VM options. */
export function storeOptions(values: { 'data-dir'?: string }): HostOptions {
  return { dataDir: dataDirOf(values), poolSize: 1 };
}

/**
 * The lock's refusal in the command line's words: a `hostlink serve` holder is named with its URL (go through
 * it with --server), another hostlink command by its command line; what holds the lock decides what to do.
 */
function inUse(e: DataDirInUse, dir: string, serverFlag: boolean, waited: boolean): DataDirInUse {
  const pid = e.holderPid;
  const url = readServeNote(dir, pid);
  if (url !== undefined) {
    const how = serverFlag ? `send this command through it with --server ${url} (or HOSTLINK_SERVER=${url}), or stop it first` : 'stop it first (this command has no --server)';
    return new DataDirInUse(`data directory ${dir} is owned by hostlink serve (process ${pid}, ${url}): ${how}`, pid);
  }
  const command = commandOf(pid);
  if (command !== undefined && /hostlink/.test(command)) {
    return new DataDirInUse(
      `data directory ${dir} is in use by another Hostlink process (${pid}: ${command})${waited ? `; waited ${DATA_DIR_WAIT_MS / 1000} s` : ''}: ` +
        `one process at a time owns a data directory; run this again when it has finished, or stop it`,
      pid,
    );
  }
  return e;
}

/**
 * Opens the Host, waiting (up to DATA_DIR_WAIT_MS) while another command holds the data directory, so that
 * commands run from several shells take turns instead of failing. A serving node does not finish: no wait then.
 */
async function openWaiting(options: HostOptions, serverFlag: boolean): Promise<Host> {
  // Loaded here, not at start-up: it brings the store's native module, which commands that open no data
  // directory (build, check, inspect FILE, new, id, usage errors) would pay for at every run.
  const { Host } = await import('../host/host.js');
  const until = Date.now() + DATA_DIR_WAIT_MS;
  for (;;) {
    try {
      return await Host.open(options);
    } catch (e) {
      if (!(e instanceof DataDirInUse) || options.dataDir === undefined) throw e;
      if (readServeNote(options.dataDir, e.holderPid) !== undefined || Date.now() >= until) throw inUse(e, options.dataDir, serverFlag, Date.now() >= until);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Opens the Host for `fn` and closes it. A command that only reads (`access` 'read') refuses a data directory
 * that does not exist instead of creating an empty store there: a mistyped --data-dir would show empty state.
 * `serverFlag`: the command takes --server (its refusal by a serving node then says to use it).
 */
export async function withHost<T>(options: HostOptions, fn: (host: Host) => Promise<T>, access: 'read' | 'write' = 'write', serverFlag = true): Promise<T> {
  if (access === 'read' && options.dataDir !== undefined) {
    try {
      statSync(options.dataDir);
    } catch (e) {
      // Only a missing directory is "does not exist": one this user may not reach (EACCES) exists, and said so.
      const c = (e as NodeJS.ErrnoException).code;
      if (c !== 'ENOENT' && c !== 'ENOTDIR') throw unusableDataDir(resolve(options.dataDir), options.dataDir, e);
      throw new HostlinkError('not_found', `data directory ${options.dataDir} does not exist: check --data-dir (deploy, call and serve create it; the default is ./${DEFAULT_DATA_DIR} in the current directory)`);
    }
  }
  const host = await openWaiting(options, serverFlag);
  try {
    return await fn(host);
  } finally {
    await host.close();
  }
}

/** How ids are written on the command line (part of the help of every command that takes one). */
export const ID_HELP = `IDs (contexts, executors) are 32 bytes, written as:
  64 hex characters, with or without 0x      the id itself
  name:TEXT                                   SHA-256 of TEXT's UTF-8 bytes (hostlink id TEXT prints it)
  TEXT                                        the same as name:TEXT, when TEXT cannot be mistaken for hex
                                              (it has a character outside 0-9a-f; else write name:TEXT)`;

/**
 * A 32-byte id from the command line: exactly 64 hex characters (optionally 0x-prefixed), or a name hashed
 * with SHA-256 (`name:TEXT`, or plain TEXT that is not hex-like). Hex of any other length is an error, never
 * a name: a mistyped id must not silently become a different account or context.
 */
export function parseId(text: string, what = 'id'): Uint8Array {
  if (text.startsWith('name:')) {
    const name = text.slice(5);
    if (name.length === 0) throw new HostlinkError('usage', `${what} 'name:' has an empty name: write name:TEXT`);
    return nameId(name, what);
  }
  const hexMatch = /^(0x|0X)?([0-9a-fA-F]*)$/.exec(text);
  if (hexMatch && (hexMatch[1] !== undefined || hexMatch[2]!.length > 0)) {
    const digits = hexMatch[2]!;
    if (digits.length === 64) return Uint8Array.from(Buffer.from(digits, 'hex'));
    throw new HostlinkError(
      'usage',
      `${what} '${text.length > 80 ? text.slice(0, 80) + '…' : text}' looks like hex but has ${digits.length} digits: an id is exactly 64 hex digits (32 bytes); to use it as a name, write name:${text.length > 80 ? text.slice(0, 80) + '…' : text}`,
    );
  }
  if (text.length === 0) throw new HostlinkError('usage', `${what} must not be empty: give 64 hex digits or name:TEXT`);
  return nameId(text, what);
}


export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** `--input`: JSON text (checked), or @file for raw bytes. */
export function parseInput(text: string | undefined): Uint8Array {
  if (text === undefined) return new Uint8Array(0);
  if (text.startsWith('@')) {
    const path = text.slice(1);
    if (!existsSync(path)) throw new HostlinkError('usage', `input file ${path} does not exist`);
    return readBounded(path, MAX_INPUT_BYTES, 'input file', 'max_input_bytes');
  }
  try {
    JSON.parse(text);
  } catch (e) {
    throw new HostlinkError('usage', `--input is not valid JSON (${(e as Error).message}); use @file to pass raw bytes`);
  }
  return Uint8Array.from(Buffer.from(text, 'utf8'));
}

/** Largest contract file the CLI reads: the default module size limit. */
export const MAX_CONTRACT_FILE_BYTES = DEFAULT_LIMITS.maxModuleSize;

export { readBounded };

/** A contract file (FILE.wasm on the command line), read up to max_module_size. */
export function readContractFile(path: string): Uint8Array {
  return readBounded(path, MAX_CONTRACT_FILE_BYTES, 'contract', 'max_module_size');
}

const BUILD_HINT = 'hostlink build, run in the contract project, writes build/NAME.wasm';

/**
 * A contract argument that is neither a file nor a code hash. One that looks like a path (a .wasm name, a
 * slash) is a missing file, not a malformed hash. Either is a wrong argument (exit 2), like a directory.
 */
export function missingContract(target: string): HostlinkError {
  if (target.endsWith('.wasm') || target.includes('/')) {
    return new HostlinkError('usage', `no such file: ${target}: check the path, or build the contract first (${BUILD_HINT})`);
  }
  return new HostlinkError('usage', `${target} is neither a file nor a 64-character code hash: give the contract's .wasm file, or the hash of a deployed one (hostlink codes lists them)`);
}

/** The WebAssembly binary header: `\0asm`. */
const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

/**
 * A contract file named on the command line: its bytes, refused with the file's name when it is missing or is
 * not WebAssembly at all (a source file, package.json). Whether it is a valid contract is the deploy's check.
 */
export function readContractArg(target: string): Uint8Array {
  if (!existsSync(target)) throw missingContract(target);
  const bytes = readContractFile(target);
  if (!WASM_MAGIC.every((b, i) => bytes[i] === b)) {
    throw new HostlinkError('usage', `${target} is not a WebAssembly module: give the compiled contract (${BUILD_HINT})`);
  }
  return bytes;
}

/** A deploy's refusal of a module that is not valid WebAssembly, with the file's name (the host does not know it). */
export function namingFile<T>(target: string, p: Promise<T>): Promise<T> {
  return p.catch((e: unknown) => {
    if (e instanceof HostlinkError && e.message.startsWith('not a valid WebAssembly module')) throw new HostlinkError(e.code, `${target} is ${e.message}`);
    throw e;
  });
}

/** `--gas N`: a whole number within the message's gas range. */
export function parseGas(text: string | undefined): bigint | undefined {
  if (text === undefined) return undefined;
  const gas = /^[0-9]{1,20}$/.test(text) ? BigInt(text) : -1n;
  if (gas < 0n || gas > MAX_GAS) throw new HostlinkError('usage', `--gas must be an integer from 0 to ${MAX_GAS} (got ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)})`);
  return gas;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes as text when they are UTF-8 without control characters but tab and newline, otherwise as 0x-hex. */
export function showBytes(b: Uint8Array): string {
  try {
    const s = strictUtf8.decode(b);
    if (isPlainText(s)) return s;
  } catch {
    // not text
  }
  return '0x' + hex(b);
}

/** One JSON line on stdout (the `--json` outputs), with nothing in it a terminal acts on (inertJson). */
export function printJson(value: unknown): void {
  process.stdout.write(inertJson(JSON.stringify(value)) + '\n');
}

/** Outcome.halted as JSON (`follow_ups_halted` of an outcome, the node's call_halted event). */
export interface HaltJson {
  call_id: number | null;
  kind: string;
  context: string;
  method: string;
  result: string | null;
  reason: string;
  not_run: number;
}

export function haltJson(h: FollowUpHalt): HaltJson {
  return { call_id: h.callId, kind: h.kind, context: hex(h.contextId), method: h.method, result: h.result?.code ?? null, reason: h.reason, not_run: h.notRun };
}

/**
 * The warning line for a call tree a node failure cut short: the call itself is applied, but this node's state
 * for the tree is incomplete. The reason may hold a crashed VM's text: shown escaped.
 */
export function haltedText(h: HaltJson): string {
  return `follow-ups halted: ${haltedFollowUpName({ kind: h.kind, method: h.method, callId: h.call_id })} ended by a node failure (${logText(h.reason)}); ${h.not_run} later follow-up(s) did not run: this node's state for the call is incomplete, run it again or repair it`;
}

/** The outcome as a JSON-friendly object (the `--json` output of `hostlink call`). */
export function outcomeJson(o: Outcome, contextId: Uint8Array, view = false): Record<string, unknown> {
  const r = o.result;
  return {
    result: r.code,
    ...(r.code === 'return'
      ? { value: r.value instanceof Uint8Array ? showBytes(r.value) : r.value }
      : { message: r.message, fingerprint: calldataToJson(r.fingerprint) }),
    context: hex(contextId),
    applied: o.applied,
    ...(view ? { view: true } : {}),
    state_root: hex(o.stateRoot),
    gas_used: o.gasUsed.toString(),
    logs: o.logs,
    events: o.events.map((e) => ({ kind: e.kind, data: showBytes(e.data), handler: e.handler })),
    writes: o.writes.map(([k, v]) => ({ key: showBytes(k), value: v === null ? null : showBytes(v) })),
    ...(o.crash ? { crash: o.crash } : {}),
    ...(o.halted ? { follow_ups_halted: haltJson(o.halted) } : {}),
  };
}

/** The gas figure of a text summary: a VM stopped at its deadline or crashed reported none. */
export function gasText(gasUsed: bigint | string, r: { code: string; message?: string }, crashed: boolean): string {
  if (r.message !== undefined && isTimeout({ code: r.code, message: r.message })) return 'gas not reported (the VM was stopped at the deadline)';
  if (crashed) return 'gas not reported (the VM crashed)';
  return `gas ${gasUsed}`;
}

/** How `hostlink call` raises its limits, for failureHint. */
export function cliHintContext(gasLimit: bigint | undefined, deadlineMs: number | undefined): HintContext {
  return { gasLimit: gasLimit ?? DEFAULT_GAS_LIMIT, gasOption: `--gas N (at most ${MAX_GAS})`, deadlineMs: deadlineMs ?? DEFAULT_HOST_OPTIONS.deadlineMs, deadlineOption: `--deadline MS (at most ${MAX_DEADLINE_MS})` };
}

export function printOutcome(o: Outcome, contextId: Uint8Array, json: boolean, view = false, hints?: HintContext): void {
  if (json) {
    printJson(outcomeJson(o, contextId, view));
    return;
  }
  const r = o.result;
  if (r.code === 'return') {
    const v = r.value;
    process.stdout.write(`${v === null ? '(no value)' : v instanceof Uint8Array ? showBytes(v) : String(v)}\n`);
  } else {
    // The message, logs and event kinds are the contract's (or a crashed VM's) text: one escaped line each.
    process.stdout.write(`${r.code}: ${logText(r.message)}\n`);
  }
  for (const line of o.logs) process.stderr.write(`  log: ${logText(line)}\n`);
  for (const e of o.events) process.stderr.write(`  event: ${logText(e.kind)} ${logText(showBytes(e.data))}\n`);
  process.stderr.write(
    `  ${o.applied ? `applied ${o.writes.length} change(s)` : view ? `view: not applied (${o.writes.length} change(s) discarded)` : 'state unchanged'}; ${gasText(o.gasUsed, r, o.crash !== undefined)}; context ${hex(contextId).slice(0, 16)}…; root ${hex(o.stateRoot).slice(0, 16)}…\n`,
  );
  const hint = r.code === 'return' || hints === undefined ? undefined : failureHint({ code: r.code, message: r.message, fingerprintNull: r.fingerprint === null }, hints);
  if (hint !== undefined) process.stderr.write(`  hint: ${hint}\n`);
  if (o.halted) process.stderr.write(`  ${haltedText(haltJson(o.halted))}\n`);
}
