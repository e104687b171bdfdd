/**
 * `hostlink guest`: ask the host operating system to do one privileged thing. Prints the payload on
 * stdout; the exit code tells "the host refused" (1) from "could not reach the host" (3).
 */
import { parseArgs } from 'node:util';
import { DEFAULT_GUEST_ADDRESS, parseControlAddress } from '../../control/address.js';
import { DEFAULT_GUEST_CID, GuestClient } from '../../control/client.js';
import { consoleText } from '../../terminal-text.js';
import { formatVersion, type Command, type Payload } from '../../control/wire.js';
import { HostlinkError } from '../../errors.js';

export const GUEST_EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3, failed: 4 } as const;

/**
 * The longest --timeout in seconds. Over vsock the whole wait (5 s to connect, 5 s to write, the reply) is one
 * Node.js timer, which takes at most 2^31 - 1 ms (about 24.8 days) and fires at once beyond that.
 */
export const MAX_GUEST_TIMEOUT_S = 2_000_000;

const USAGE = `usage: hostlink guest [--addr ADDR] [--cid N] [--timeout SECONDS] [--protocol auto|v1|legacy] COMMAND [ARGS]

commands:
  attach-hsm                      ask the host to attach the HSM to this VM
  detach-hsm                      ask the host to detach the HSM from this VM
  get-hostos-version              print the host OS version
  protocol-version                print the host agent's protocol version (0.0.0 for a legacy host)
  upgrade URL HASH                host downloads URL, checks its SHA-256 (64 lowercase hex), installs, reboots
  set-node-id NODE_ID             record this node's id on the host (and in its hostname)
  notify MESSAGE [--count N]      host prints MESSAGE on its consoles N times (default 1, at most 10)
  start-upgrade-guest-vm          host (re)starts the guest upgrade VM

options:
  --addr ADDR       vsock://CID:PORT (default ${DEFAULT_GUEST_ADDRESS}; vsock needs socat), unix:///path,
                    unix:///path?port=PORT (Firecracker hybrid vsock) or HOST:PORT
  --cid N           the CID this guest claims (default $HOSTLINK_GUEST_CID or ${DEFAULT_GUEST_CID})
  --timeout SECONDS how long to wait for the reply, 1 to ${MAX_GUEST_TIMEOUT_S} (default 300: an upgrade answers
                    after installing)
  --protocol P      auto (ask the host first, the default), v1, or legacy (the v0 string format)

exit codes: 0 done, 1 the host refused (reason on stderr), 2 usage error, 3 could not reach the host,
            4 the host's reply was not understood or its protocol is incompatible`;

function usage(msg: string): HostlinkError {
  return new HostlinkError('usage', `${msg} (see hostlink guest --help)`);
}

/** A whole number from `min` to `max` given as decimal digits; `unit` (e.g. 'of seconds ') goes in the error. */
function whole(text: string | undefined, what: string, fallback: number, min: number, max: number, unit = ''): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,16}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw usage(`${what} must be a whole number ${unit}from ${min} to ${max}, not '${text}'`);
  }
  return Number(text);
}

function uint(text: string | undefined, what: string, fallback: number): number {
  return whole(text, what, fallback, 0, 0xffff_ffff);
}

function parseCommand(words: string[], count: number | undefined): Command {
  const [name, ...args] = words;
  const want = (n: number, shape: string): void => {
    if (args.length !== n) throw usage(`${name} takes ${shape}`);
  };
  if (count !== undefined && name !== 'notify') throw usage('--count is only for notify');
  switch (name) {
    case undefined:
      throw usage('missing COMMAND');
    case 'attach-hsm':
    case 'detach-hsm':
    case 'get-hostos-version':
    case 'start-upgrade-guest-vm':
      want(0, 'no arguments');
      return { type: name };
    case 'protocol-version':
      want(0, 'no arguments');
      return { type: 'get-vsock-protocol' };
    case 'upgrade':
      want(2, 'URL HASH');
      return { type: 'upgrade', url: args[0]!, targetHash: args[1]! };
    case 'set-node-id':
      want(1, 'NODE_ID');
      return { type: 'set-node-id', nodeId: args[0]! };
    case 'notify':
      want(1, 'one MESSAGE (quote it)');
      return { type: 'notify', count: count ?? 1, message: args[0]! };
    default:
      throw usage(`unknown guest command '${name}'`);
  }
}

function formatPayload(p: Payload): string | undefined {
  switch (p.kind) {
    case 'NoPayload':
      return undefined;
    case 'HostOSVersion':
      return p.version;
    case 'HostOSVsockVersion':
      return formatVersion(p.version);
    case 'Unknown':
      return JSON.stringify(p.raw);
  }
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        addr: { type: 'string' },
        cid: { type: 'string' },
        count: { type: 'string' },
        timeout: { type: 'string' },
        protocol: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw usage((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return GUEST_EXIT.ok;
  }
  const protocol = values.protocol ?? 'auto';
  if (protocol !== 'auto' && protocol !== 'v1' && protocol !== 'legacy') throw usage(`--protocol must be auto, v1 or legacy, not '${protocol}'`);
  const command = parseCommand(positionals, values.count === undefined ? undefined : uint(values.count, '--count', 1));
  const client = new GuestClient({
    address: parseControlAddress(values.addr ?? DEFAULT_GUEST_ADDRESS),
    senderCid: uint(values.cid ?? process.env['HOSTLINK_GUEST_CID'], '--cid', DEFAULT_GUEST_CID),
    replyTimeoutMs: whole(values.timeout, '--timeout', 300, 1, MAX_GUEST_TIMEOUT_S, 'of seconds ') * 1000,
    protocol,
  });

  const name = positionals[0]!;
  try {
    const reply = await client.send(command);
    if (!reply.ok) {
      // The host's text goes to a terminal: no control characters but newline (a host is trusted, a hijacked
      // line not). The same for every message below: they may quote the host's reply or a VMM's answer.
      process.stderr.write(`hostlink: the host refused ${name}: ${consoleText(reply.error)}\n`);
      return GUEST_EXIT.refused;
    }
    const out = formatPayload(reply.payload);
    if (out !== undefined) process.stdout.write(consoleText(out) + '\n');
    return GUEST_EXIT.ok;
  } catch (e) {
    if (e instanceof HostlinkError && (e.code === 'channel_closed' || e.code === 'timeout')) {
      process.stderr.write(`hostlink: could not reach the host: ${consoleText(e.message)}\n`);
      return GUEST_EXIT.unreachable;
    }
    if (e instanceof HostlinkError && e.code === 'usage') throw e;
    process.stderr.write(`hostlink: ${name} failed: ${consoleText((e as Error).message)}\n`);
    return GUEST_EXIT.failed;
  }
}
