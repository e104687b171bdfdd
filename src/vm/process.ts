/**
 * The VM process: `hostlink vm --host ADDR [--message JSON]`.
 *
 * At start-up the VM reads its secret from stdin (src/vm/secret.ts), then connects and says hello with a
 * proof of that secret (src/protocol/hello-proof.ts). Then it asks next_message until the host answers
 * `absent`; a host that wants one execution answers one message and then `absent`. The VM is the client and
 * asks; the host never pushes. With --message (manual use), it runs that one execution instead and exits 0.
 *
 * Exit codes: 0 done; 1 internal failure; 2 bad arguments or message (before any connection);
 * 3 no common protocol version; 4 host unreachable or connection lost; 5 sandbox required but not installable.
 */
import { setFlagsFromString } from 'node:v8';
import { HostlinkError, isHostlinkError } from '../errors.js';
import { emptyEffects, encodeEffects } from '../protocol/effects.js';
import { fitResult } from '../protocol/result-size.js';
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from '../protocol/generated.js';
import { helloProof } from '../protocol/hello-proof.js';
import { parseMessage, type ExecutionMessage } from '../protocol/message.js';
import { encodeRequest } from '../protocol/messages.js';
import { encodeResult } from '../protocol/result.js';
import { parseAddress } from '../transport/address.js';
import type { HostChannel } from '../transport/channel.js';
import { connectHost, type ChannelImpl } from '../transport/connect.js';
import { HOSTLINK_VERSION } from '../version.js';
import { HostClient, statusError } from './host-client.js';
import { CodeCache, runExecution, type ExecutionReport } from './runner.js';
import { readVmSecret } from './secret.js';
import { enterSandbox } from './sandbox.js';
import { reasonResult } from '../protocol/reasons.js';

export const VM_EXIT = { ok: 0, internal: 1, usage: 2, incompatibleVersion: 3, hostLost: 4, sandbox: 5 } as const;

export interface VmProcessOptions {
  /** The host's address; with `connect`, only what messages call the host. */
  host: string;
  message?: string;
  channel?: ChannelImpl;
  /** Opens the channel to the host instead of dialling `host`: the runtime handshake (src/runtime/vm.ts). */
  connect?: (secret: Uint8Array | undefined) => Promise<HostChannel>;
}

const say = (line: string): void => {
  process.stderr.write(`hostlink vm: ${line}\n`);
};

/**
 * V8's own tier-up budget (its default in Node 20). VM processes start with a 16x larger one (VM_NODE_FLAGS,
 * src/host/supervisor.ts) so that a one-shot VM does not spend its short life optimizing code it never runs again;
 * a VM asked for a second message is a pool VM and runs the same code for every call, so from then on V8 tiers
 * up at its default pace (with the large budget most of the per-call JavaScript stayed in the baseline tier for
 * thousands of calls). Flags are process-wide: only the VM process sets this, never a VM thread in the host.
 */
export const POOLED_INTERRUPT_BUDGET = 67584;

/** What a VM process does once it knows it serves a pool (its second message). */
export function tierUpForPool(): void {
  setFlagsFromString(`--interrupt-budget=${POOLED_INTERRUPT_BUDGET}`);
}

/** The result's two fields as sent; a result too large for one frame becomes a vm_error so the host still learns the outcome. */
function resultFields(report: ExecutionReport): { result: Uint8Array; effects: Uint8Array } {
  let result = encodeResult(report.result);
  let effects = encodeEffects(report.effects);
  const fitted = fitResult(result.length, effects.length, report);
  if (fitted !== report) {
    result = encodeResult(fitted.result);
    effects = encodeEffects(fitted.effects);
  }
  return { result, effects };
}

/** Sends the result (a one-shot VM's last request). */
function consumeResult(host: HostClient, report: ExecutionReport): void {
  const answer = host.call('consume_result', resultFields(report));
  if (answer.status !== 'ok') throw statusError('consume_result', answer);
}

/** Runs one message; one the VM cannot parse is reported as the host's fault (`invalid_message`). */
function execute(message: string, host: HostClient, cache: CodeCache): ExecutionReport {
  let msg: ExecutionMessage;
  try {
    msg = parseMessage(message);
  } catch (e) {
    return { result: reasonResult('invalid_message', (e as Error).message), effects: emptyEffects() };
  }
  return runExecution(msg, host, cache);
}

/** Without a secret the proof is all zeros: only a host that does not authenticate VMs will answer. */
function handshake(host: HostClient, secret: Uint8Array | undefined): number {
  const fields = {
    minVersion: PROTOCOL_VERSION_MIN,
    maxVersion: PROTOCOL_VERSION_MAX,
    vmVersion: HOSTLINK_VERSION,
    pid: process.pid,
    proof: new Uint8Array(32),
  };
  if (secret !== undefined) fields.proof = helloProof(secret, encodeRequest('hello', fields));
  let answer;
  try {
    answer = host.call('hello', fields);
  } catch (e) {
    if (secret === undefined && isHostlinkError(e, 'channel_closed')) {
      throw new HostlinkError('channel_closed', `${(e as Error).message}; no VM secret was given on stdin, and a Hostlink host closes connections that do not prove theirs`);
    }
    throw e;
  }
  if (answer.status === 'ok') return answer.fields.version;
  if (answer.status === 'incompatible_version') {
    const { hostMin, hostMax } = answer.fields;
    const upgrade = hostMin > PROTOCOL_VERSION_MAX ? 'upgrade the VM (hostlink)' : 'upgrade the host';
    throw new HostlinkError(
      'incompatible_version',
      `no common protocol version: this VM (hostlink ${HOSTLINK_VERSION}) speaks ${PROTOCOL_VERSION_MIN}..${PROTOCOL_VERSION_MAX}, ` +
        `the host speaks ${hostMin}..${hostMax}; ${upgrade} so that both support a common version`,
    );
  }
  throw statusError('hello', answer);
}

export async function runVmProcess(options: VmProcessOptions): Promise<number> {
  // Everything that can be checked without the host is checked first: a bad message never connects.
  let oneShot: ExecutionMessage | undefined;
  let secret: Uint8Array | undefined;
  try {
    if (options.message !== undefined) oneShot = parseMessage(options.message);
    if (options.connect === undefined) parseAddress(options.host);
    secret = readVmSecret();
  } catch (e) {
    say((e as Error).message);
    return VM_EXIT.usage;
  }
  let host: HostClient;
  try {
    host = new HostClient(
      options.connect ? await options.connect(secret) : await connectHost(parseAddress(options.host), options.channel ? { impl: options.channel } : {}),
    );
  } catch (e) {
    say((e as Error).message);
    if (options.connect !== undefined && isHostlinkError(e, 'usage')) return VM_EXIT.usage;
    return isHostlinkError(e, 'incompatible_version') ? VM_EXIT.incompatibleVersion : VM_EXIT.hostLost;
  }
  // SANDBOX (src/vm/sandbox.ts): connected, nothing untrusted received yet: close what was inherited, then
  // no_new_privs + lifeline + seccomp on every thread. 'required' and the layer missing: exit before any work.
  return serveHost(host, secret, oneShot, enterSandbox, tierUpForPool);
}

/**
 * The VM loop once connected: hello with the secret's proof, then executions until the host answers `absent`
 * (or the one `oneShot`). Returns the exit code and closes the channel. `beforeHello` runs first, inside the
 * error mapping: the process VM enters its sandbox there; a VM thread (src/vm/thread-main.ts) passes nothing.
 * `whenPooled` runs once, when a second message arrives (a one-shot VM never gets one).
 */
export function serveHost(
  host: HostClient,
  secret: Uint8Array | undefined,
  oneShot?: ExecutionMessage,
  beforeHello?: () => unknown,
  whenPooled?: () => unknown,
): number {
  try {
    beforeHello?.();
    handshake(host, secret);
    const cache = new CodeCache();
    if (oneShot !== undefined) {
      consumeResult(host, runExecution(oneShot, host, cache));
      return VM_EXIT.ok;
    }
    // Each result goes with the request for the next message, in one write: the host answers both in order,
    // so a pool VM makes one round trip per execution for its work instead of two.
    let next = host.fetch('next_message', {});
    for (let served = 0; next !== undefined; served++) {
      if (served === 1) whenPooled?.();
      next = host.callThenFetch('consume_result', resultFields(execute(next.message, host, cache)), 'next_message', {});
    }
    return VM_EXIT.ok;
  } catch (e) {
    say((e as Error).message);
    if (isHostlinkError(e, 'incompatible_version')) return VM_EXIT.incompatibleVersion;
    if (isHostlinkError(e, 'channel_closed')) return VM_EXIT.hostLost;
    if (isHostlinkError(e, 'sandbox_unavailable')) return VM_EXIT.sandbox;
    return VM_EXIT.internal;
  } finally {
    host.channel.close();
  }
}
