/**
 * `hostlink agent` configuration: a JSON file (see docs/ops-channel.md), merged over the defaults below.
 * Unknown keys are errors so that a typo cannot silently leave a handler enabled or a command unset.
 */
import { isAbsolute } from 'node:path';
import { HostlinkError } from '../errors.js';
import { readSettingsFile } from '../read-bounded.js';
import { parseNetwork } from './handlers/addresses.js';
import { parseAllowedOrigin } from './handlers/url-policy.js';
import type { CommandType } from './wire.js';

/** A command to run, as argv (no shell). Placeholders like `{file}` are replaced by the handler. */
export type CommandLine = string[];

export interface Timeouts {
  /** From accept until the whole request has arrived. */
  readMs: number;
  /** For writing the reply. */
  writeMs: number;
  /** For handling one request (every command but upgrade). */
  requestMs: number;
  /** For handling an upgrade: download, verify, install. Keep it below the guest's reply timeout (300 s). */
  upgradeMs: number;
  /** A connection that sends nothing for this long while its request is incomplete is answered and closed. */
  idleMs: number;
}

export interface HandlerConfigs {
  'get-vsock-protocol': { enabled: boolean };
  'get-hostos-version': { enabled: boolean; version?: string; versionFile?: string };
  'attach-hsm': { enabled: boolean; command?: CommandLine };
  'detach-hsm': { enabled: boolean; command?: CommandLine };
  'start-upgrade-guest-vm': { enabled: boolean; command?: CommandLine };
  'set-node-id': { enabled: boolean; nodeIdFile?: string; command?: CommandLine };
  upgrade: {
    enabled: boolean;
    /**
     * The agent's own directory for downloads (created with mode 0700 when missing; refused when it is not a
     * directory owned by the agent's user with mode 0700, or sits under a directory others may write to).
     * `{file}` in installCommand is a fresh file in it.
     */
    stagingDir: string;
    /** Origins (`https://host[:port]`) upgrades may be downloaded from, redirects included. Empty: none. */
    allowedUrls: string[];
    /** Networks (CIDR) that may be reached although special-purpose (loopback, private, link-local...). */
    allowedNetworks: string[];
    maxRedirects: number;
    maxBytes: number;
    /** The download fails when no data arrives for this long (per chunk, not for the whole download). */
    chunkTimeoutMs: number;
    installCommand?: CommandLine;
    rebootCommand?: CommandLine;
    /** Wait this long after the reply has been written before running rebootCommand. */
    rebootDelayMs: number;
  };
  /** maxPending: notifications still being written at once; one more is refused until one finishes. */
  notify: { enabled: boolean; consoles: string[]; intervalMs: number; maxCount: number; maxPending: number };
}

export interface AgentConfig {
  /** Listen address when --listen is not given. */
  listen?: string;
  /** Guest CIDs whose requests are served (the reference host accepts only 3, the first VM). */
  allowedCids: number[];
  /** The CID of whoever connects on a unix listener (Firecracker hybrid vsock: the VM's guest_cid). */
  peerCid?: number;
  socatPath: string;
  /** Connections at once, from everyone. */
  maxConnections: number;
  /** Connections at once from one peer (TCP address, vsock CID, unix listener); at most maxConnections. */
  maxConnectionsPerPeer: number;
  /** Configured commands (install, attach-hsm, ...) running at once; more wait for a slot. */
  maxCommands: number;
  timeouts: Timeouts;
  handlers: HandlerConfigs;
}

/** Not under a shared temporary directory: a download there could be swapped by another user. */
export const DEFAULT_STAGING_DIR = '/var/lib/hostlink/upgrade';

export function defaultAgentConfig(): AgentConfig {
  return {
    allowedCids: [3],
    socatPath: 'socat',
    maxConnections: 32,
    maxConnectionsPerPeer: 8,
    maxCommands: 4,
    timeouts: { readMs: 5_000, writeMs: 5_000, requestMs: 30_000, upgradeMs: 280_000, idleMs: 2_000 },
    handlers: {
      'get-vsock-protocol': { enabled: true },
      'get-hostos-version': { enabled: true },
      'attach-hsm': { enabled: true },
      'detach-hsm': { enabled: true },
      'start-upgrade-guest-vm': { enabled: true },
      'set-node-id': { enabled: true },
      upgrade: {
        enabled: true,
        stagingDir: DEFAULT_STAGING_DIR,
        allowedUrls: [],
        allowedNetworks: [],
        maxRedirects: 5,
        maxBytes: 4 * 1024 ** 3,
        chunkTimeoutMs: 120_000,
        rebootDelayMs: 0,
      },
      notify: { enabled: true, consoles: ['/dev/tty1', '/dev/ttyS0'], intervalMs: 2_000, maxCount: 10, maxPending: 8 },
    },
  };
}

type Check = (v: unknown, path: string) => unknown;

function fail(path: string, want: string): never {
  throw new HostlinkError('usage', `agent configuration: '${path}' must be ${want}`);
}
const bool: Check = (v, p) => (typeof v === 'boolean' ? v : fail(p, 'true or false'));
const str: Check = (v, p) => (typeof v === 'string' && v !== '' ? v : fail(p, 'a non-empty string'));
const count: Check = (v, p) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : fail(p, 'a non-negative integer'));
const cid: Check = (v, p) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff ? v : fail(p, 'a CID (0..4294967295)'));
const cids: Check = (v, p) => (Array.isArray(v) ? v.map((x, i) => cid(x, `${p}[${i}]`)) : fail(p, 'an array of CIDs'));
const argv: Check = (v, p) =>
  Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string') ? v : fail(p, 'a non-empty array of strings (argv, no shell)');
/** The longest delay Node.js timers take (2^31 - 1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;
const ms =
  (min: number): Check =>
  (v, p) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= MAX_TIMER_MS
      ? v
      : fail(p, `a whole number of milliseconds from ${min} to ${MAX_TIMER_MS} (the longest timer Node.js can set, about 24.8 days)`);
/** A time limit: 0 would refuse everything at once. */
const timeout = ms(1);
/** A delay: 0 is none. */
const delay = ms(0);
const positive: Check = (v, p) => (typeof v === 'number' && Number.isInteger(v) && v >= 1 ? v : fail(p, 'a positive integer'));
const absolute: Check = (v, p) => (typeof v === 'string' && isAbsolute(v) ? v : fail(p, 'an absolute path'));
const origins: Check = (v, p) =>
  Array.isArray(v)
    ? v.map((x, i) => {
        try {
          parseAllowedOrigin(x);
          return x as string;
        } catch (e) {
          return fail(`${p}[${i}]`, `an origin such as https://updates.example.com or http://10.0.0.5:8080 (${(e as Error).message})`);
        }
      })
    : fail(p, 'an array of origins such as ["https://updates.example.com"]');
const networks: Check = (v, p) =>
  Array.isArray(v)
    ? v.map((x, i) => {
        try {
          parseNetwork(typeof x === 'string' ? x : '');
          return x as string;
        } catch {
          return fail(`${p}[${i}]`, 'a network such as 10.0.0.0/8 or fd00::/8');
        }
      })
    : fail(p, 'an array of networks such as ["10.0.0.0/8"]');
const replaced =
  (what: string): Check =>
  (_v, p) => {
    throw new HostlinkError('usage', `agent configuration: '${p}' was replaced by ${what}`);
  };
const strs: Check = (v, p) => (Array.isArray(v) && v.every((x) => typeof x === 'string' && x !== '') ? v : fail(p, 'an array of paths'));

/** Copies known keys of `input` over `target`, checking each; unknown keys are errors. */
function merge(target: Record<string, unknown>, input: unknown, path: string, schema: Record<string, Check | Record<string, unknown>>): void {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) fail(path || 'the file', 'a JSON object');
  for (const [key, value] of Object.entries(input)) {
    const at = path ? `${path}.${key}` : key;
    const rule = schema[key];
    if (rule === undefined) {
      throw new HostlinkError('usage', `agent configuration: unknown key '${at}' (known: ${Object.keys(schema).join(', ')})`);
    }
    if (typeof rule === 'function') target[key] = rule(value, at);
    else merge(target[key] as Record<string, unknown>, value, at, rule as Record<string, Check | Record<string, unknown>>);
  }
}

const SCHEMA: Record<string, Check | Record<string, unknown>> = {
  listen: str,
  allowedCids: cids,
  peerCid: cid,
  socatPath: str,
  maxConnections: positive,
  maxConnectionsPerPeer: positive,
  maxCommands: positive,
  timeouts: { readMs: timeout, writeMs: timeout, requestMs: timeout, upgradeMs: timeout, idleMs: timeout },
  handlers: {
    'get-vsock-protocol': { enabled: bool },
    'get-hostos-version': { enabled: bool, version: str, versionFile: str },
    'attach-hsm': { enabled: bool, command: argv },
    'detach-hsm': { enabled: bool, command: argv },
    'start-upgrade-guest-vm': { enabled: bool, command: argv },
    'set-node-id': { enabled: bool, nodeIdFile: str, command: argv },
    upgrade: {
      enabled: bool,
      stagingFile: replaced("'handlers.upgrade.stagingDir', a directory only the agent may use (mode 0700): move the setting there"),
      stagingDir: absolute,
      allowedUrls: origins,
      allowedNetworks: networks,
      maxRedirects: count,
      maxBytes: count,
      chunkTimeoutMs: timeout,
      installCommand: argv,
      rebootCommand: argv,
      rebootDelayMs: delay,
    },
    notify: { enabled: bool, consoles: strs, intervalMs: delay, maxCount: count, maxPending: positive },
  } satisfies Record<CommandType, unknown>,
};

/** The defaults with `input` (parsed JSON) applied; throws HostlinkError('usage') naming the bad key. */
export function resolveAgentConfig(input: unknown): AgentConfig {
  const config = defaultAgentConfig();
  merge(config as unknown as Record<string, unknown>, input, '', SCHEMA);
  return config;
}

export function loadAgentConfig(file: string): AgentConfig {
  let text: string;
  try {
    text = readSettingsFile(file, 'agent configuration');
  } catch (e) {
    // A configuration that cannot be opened is a bad configuration (exit 2), in one line. A directory or a file
    // over the size bound: the bounded reader's own usage error says so.
    const code = (e as { cause?: NodeJS.ErrnoException }).cause?.code;
    if (code === undefined) throw e;
    const why = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'permission denied' : code;
    throw new HostlinkError(
      'usage',
      `cannot read the agent configuration ${file}: ${why}; give --config the path of a readable JSON file, or leave --config out to run with the defaults`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HostlinkError('usage', `agent configuration ${file} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return resolveAgentConfig(json);
  } catch (e) {
    if (e instanceof HostlinkError) throw new HostlinkError(e.code, `${file}: ${e.message}`);
    throw e;
  }
}
