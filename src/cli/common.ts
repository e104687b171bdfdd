/** Helpers shared by the CLI commands: the common options, ids, input and printing. */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HostlinkError } from '../errors.js';
import { calldataToJson } from '../protocol/calldata.js';
import { Host, type ExecutionMode, type HostOptions, type Outcome } from '../host/host.js';
import type { Transport } from '../host/supervisor.js';
import { isSandboxMode, SANDBOX_ENV, type SandboxMode } from '../vm/sandbox.js';
import { launcherStatus, sandboxAddon } from '../vm/sandbox-native.js';

export const DEFAULT_DATA_DIR = '.hostlink';

/** Options every command that opens a host accepts. */
export const HOST_OPTIONS = {
  'data-dir': { type: 'string' },
  transport: { type: 'string' },
  mode: { type: 'string' },
  deadline: { type: 'string' },
  sandbox: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const HOST_OPTIONS_HELP = `common options:
  --data-dir DIR        where code and state live (default ./${DEFAULT_DATA_DIR})
  --transport unix|tcp  how VM processes connect (default unix)
  --mode pool|oneshot   warm VM pool, or one VM process per call (default pool)
  --deadline MS         wall-clock limit of one execution (default 10000)
  --sandbox MODE        required|best-effort|off: the VM processes' OS sandbox (default: required when the
                        native parts are built, else best-effort with a warning; HOSTLINK_SANDBOX overrides)
  --json                machine-readable output
  --verbose             stack traces on errors`;

type Parsed<O extends NonNullable<ParseArgsConfig['options']>> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>;

/** parseArgs with usage errors as HostlinkError('usage'). */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O, usage: string): Parsed<O> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new HostlinkError('usage', `${(e as Error).message}\n${usage}`);
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
    return v;
  }
  return sandboxAddon().addon && launcherStatus().reason === undefined ? 'required' : 'best-effort';
}

export function hostOptions(values: { 'data-dir'?: string; transport?: string; mode?: string; deadline?: string; sandbox?: string }): HostOptions {
  const o: HostOptions = { dataDir: resolve(values['data-dir'] ?? DEFAULT_DATA_DIR), sandbox: cliSandbox(values.sandbox) };
  if (values.transport !== undefined) {
    if (values.transport !== 'unix' && values.transport !== 'tcp') throw new HostlinkError('usage', '--transport must be unix or tcp');
    o.transport = values.transport as Transport;
  }
  if (values.mode !== undefined) {
    if (values.mode !== 'pool' && values.mode !== 'oneshot') throw new HostlinkError('usage', '--mode must be pool or oneshot');
    o.mode = values.mode as ExecutionMode;
  }
  if (values.deadline !== undefined) {
    const ms = Number(values.deadline);
    if (!Number.isInteger(ms) || ms <= 0) throw new HostlinkError('usage', '--deadline must be a positive number of milliseconds');
    o.deadlineMs = ms;
  }
  return o;
}

export async function withHost<T>(options: HostOptions, fn: (host: Host) => Promise<T>): Promise<T> {
  const host = await Host.open(options);
  try {
    return await fn(host);
  } finally {
    await host.close();
  }
}

/**
 * A 32-byte id from the command line: 64 hex characters, or any other text, which names the id
 * SHA-256(text) (so `--context demo` is a stable context without typing 64 characters).
 */
export function parseId(text: string): Uint8Array {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Uint8Array.from(Buffer.from(text, 'hex'));
  if (text.length === 0) throw new HostlinkError('usage', 'an id must not be empty');
  return Uint8Array.from(createHash('sha256').update(text, 'utf8').digest());
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** `--input`: JSON text (checked), or @file for raw bytes. */
export function parseInput(text: string | undefined): Uint8Array {
  if (text === undefined) return new Uint8Array(0);
  if (text.startsWith('@')) {
    const path = text.slice(1);
    if (!existsSync(path)) throw new HostlinkError('not_found', `input file ${path} does not exist`);
    return Uint8Array.from(readFileSync(path));
  }
  try {
    JSON.parse(text);
  } catch (e) {
    throw new HostlinkError('usage', `--input is not valid JSON (${(e as Error).message}); use @file to pass raw bytes`);
  }
  return Uint8Array.from(Buffer.from(text, 'utf8'));
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes as text when they are printable UTF-8, otherwise as 0x-hex. */
export function showBytes(b: Uint8Array): string {
  try {
    const s = strictUtf8.decode(b);
    // eslint-disable-next-line no-control-regex
    if (!/[\u0000-\u0008\u000e-\u001f]/.test(s)) return s;
  } catch {
    // not text
  }
  return '0x' + hex(b);
}

/** The outcome as a JSON-friendly object (the `--json` output of `hostlink call`). */
export function outcomeJson(o: Outcome, contextId: Uint8Array): Record<string, unknown> {
  const r = o.result;
  return {
    result: r.code,
    ...(r.code === 'return'
      ? { value: r.value instanceof Uint8Array ? showBytes(r.value) : r.value }
      : { message: r.message, fingerprint: calldataToJson(r.fingerprint) }),
    context: hex(contextId),
    applied: o.applied,
    state_root: hex(o.stateRoot),
    gas_used: o.gasUsed.toString(),
    logs: o.logs,
    events: o.events.map((e) => ({ kind: e.kind, data: showBytes(e.data), handler: e.handler })),
    writes: o.writes.map(([k, v]) => ({ key: showBytes(k), value: v === null ? null : showBytes(v) })),
    ...(o.crash ? { crash: o.crash } : {}),
  };
}

export function printOutcome(o: Outcome, contextId: Uint8Array, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(outcomeJson(o, contextId)) + '\n');
    return;
  }
  const r = o.result;
  if (r.code === 'return') {
    const v = r.value;
    process.stdout.write(`${v === null ? '(no value)' : v instanceof Uint8Array ? showBytes(v) : String(v)}\n`);
  } else {
    process.stdout.write(`${r.code}: ${r.message}\n`);
  }
  for (const line of o.logs) process.stderr.write(`  log: ${line}\n`);
  for (const e of o.events) process.stderr.write(`  event: ${e.kind} ${showBytes(e.data)}\n`);
  process.stderr.write(
    `  ${o.applied ? `applied ${o.writes.length} change(s)` : 'state unchanged'}; gas ${o.gasUsed}; context ${hex(contextId).slice(0, 16)}…; root ${hex(o.stateRoot).slice(0, 16)}…\n`,
  );
}
