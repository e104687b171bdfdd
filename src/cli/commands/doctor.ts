/** `hostlink doctor`: what this installation can do here, and what to install when something is missing. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HOSTLINK_BIN, VM_NODE_FLAGS, vmMallocHugePages } from '../../host/supervisor.js';
import { SNAPSHOT_ENV, snapshotDir, snapshotProblem } from '../../host/vm-entry.js';
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from '../../protocol/generated.js';
import { channelInfo } from '../../transport/connect.js';
import { INSTRUMENTATION_VERSION } from '../../vm/instrument/index.js';
import { HOSTLINK_VERSION } from '../../version.js';
import { cliSandbox, parse, printJson } from '../common.js';
import { HostlinkError } from '../../errors.js';
import { assessSandbox } from '../../host/sandbox/plan.js';
import type { SandboxMode } from '../../vm/sandbox.js';
import { sandboxAddon } from '../../vm/sandbox-native.js';
import { stateHashImplementation } from '../../host/state/sha256-record.js';
import { sessionIoMode } from '../../transport/session-io.js';
import { GAS_SCHEDULE_VERSION } from '../../vm/host-functions.generated.js';

export const usage = `usage: hostlink doctor [--json] [--sandbox required|best-effort|off] [--transport unix|tcp]

Checks this installation: Node version, the VM's socket channel (native addon or pure-JS fallback), the VM
start-up snapshot, huge pages for the VMs' malloc, the example contracts, socat for vsock addresses, and each
layer of the VM's OS sandbox as it would be installed here (uid, no_new_privs, seccomp, namespaces, memory,
limits, parent death; docs/security.md). With sandbox 'required' (the default when the native parts are built)
a missing essential layer is a FAIL.
Exit code 0 when the VM can run, 1 otherwise. \`hostlink vm --sandbox-self-test\` tries the forbidden actions.`;

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** A missing optional part does not stop the VM from running. */
  optional?: boolean;
}

function sandboxChecks(mode: SandboxMode, transport: 'unix' | 'tcp'): Check[] {
  const a = assessSandbox(mode, transport, HOSTLINK_BIN);
  return a.layers.map((l) => ({
    name: `sandbox ${l.name}`,
    ok: l.state !== 'off',
    optional: !l.essential || mode !== 'required',
    detail: l.state === 'waived' ? `(waived) ${l.detail}` : l.detail,
  }));
}

/** Whether VMs start from the start-up snapshot (fast one-shot calls) or from the normal entry, and why. */
function vmSnapshotCheck(): Check {
  if (process.env[SNAPSHOT_ENV] === 'off') return { name: 'VM start-up snapshot', ok: false, optional: true, detail: `off (${SNAPSHOT_ENV}=off): VMs start from the normal entry` };
  const problem = snapshotProblem(VM_NODE_FLAGS);
  return {
    name: 'VM start-up snapshot',
    ok: problem === undefined,
    optional: true,
    detail: problem === undefined
      ? `in use (${snapshotDir()}): one-shot VMs start with their modules loaded`
      : `not used: ${problem}; VMs start from the normal entry (slower cold calls); rebuild it with node scripts/build-vm-snapshot.mjs`,
  };
}

/** Whether the VMs' malloc gets huge pages here (VM_ENVIRONMENT): cheaper VM start-up, same results either way. */
function vmHugePagesCheck(): Check {
  const { used, detail } = vmMallocHugePages();
  return { name: 'VM malloc huge pages', ok: used, optional: true, detail };
}

/** Which SHA-256 the host's state tree uses: the native addon, or the JavaScript fallback (same roots, slower). */
function stateHashCheck(): Check {
  const { impl, reason } = stateHashImplementation();
  return {
    name: 'state tree hash',
    ok: impl === 'native',
    optional: true,
    detail: impl === 'native' ? 'native addon' : `JavaScript fallback (${reason ?? 'no addon'}): same state roots, slower updates`,
  };
}

/** How the host reads and writes its VMs' sockets: the socket addon, or libuv's stream handle (same protocol, slower). */
function socketIoCheck(): Check {
  const { mode, reason } = sessionIoMode();
  return {
    name: 'host socket I/O',
    ok: mode === 'polled',
    optional: true,
    detail: mode === 'polled' ? 'socket addon' : `libuv stream handle (${reason ?? 'no addon'}): same sessions, more CPU per request`,
  };
}

function checks(): Check[] {
  const root = join(HOSTLINK_BIN, '..', '..');
  const major = Number(process.versions.node.split('.')[0]);
  const ch = channelInfo();
  const socat = spawnSync('socat', ['-V'], { encoding: 'utf8' });
  const socatVersion = /socat version ([\d.]+)/.exec(socat.stdout ?? '')?.[1];
  const example = join(root, 'examples', 'kv-store', 'build', 'kv-store.wasm');
  return [
    { name: 'node', ok: major >= 20, detail: `${process.version}${major >= 20 ? '' : ': Hostlink needs Node.js 20 or newer'}` },
    {
      name: 'native channel',
      ok: ch.native.available,
      optional: true,
      detail: ch.native.available ? ch.native.path : `${ch.native.reason ?? 'not built'}; run npm install with a C compiler present to build it`,
    },
    { name: 'js channel', ok: ch.js.available, optional: ch.native.available, detail: ch.js.available ? 'available' : ch.js.reason ?? 'unavailable' },
    { name: 'VM channel in use', ok: true, detail: ch.auto },
    vmSnapshotCheck(),
    vmHugePagesCheck(),
    stateHashCheck(),
    socketIoCheck(),
    { name: 'example contracts', ok: existsSync(example), optional: true, detail: existsSync(example) ? 'built' : 'not built: run npm run build' },
    {
      name: 'socat (vsock)',
      ok: socatVersion !== undefined,
      optional: true,
      detail: socatVersion ? `socat ${socatVersion}` : 'not installed: vsock addresses of hostlink guest/agent need socat >= 1.7.4 (apt-get install socat)',
    },
  ];
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    { json: { type: 'boolean' }, sandbox: { type: 'string' }, transport: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    usage,
  );
  const mode = cliSandbox(values.sandbox);
  const transport = values.transport ?? 'unix';
  if (transport !== 'unix' && transport !== 'tcp') throw new HostlinkError('usage', '--transport must be unix or tcp');
  const results = [...checks(), { name: 'sandbox mode', ok: true, detail: mode }, ...sandboxChecks(mode, transport)];
  const ready = results.every((c) => c.ok || c.optional);
  const versions = { hostlink: HOSTLINK_VERSION, protocol: `${PROTOCOL_VERSION_MIN}..${PROTOCOL_VERSION_MAX}`, instrumentation: INSTRUMENTATION_VERSION, gasSchedule: GAS_SCHEDULE_VERSION };
  if (values.json) {
    const seccomp = sandboxAddon().addon?.rules();
    printJson({ ready, versions, checks: results, ...(seccomp ? { seccomp } : {}) });
  } else {
    process.stdout.write(`hostlink ${versions.hostlink}, protocol ${versions.protocol}, instrumentation v${versions.instrumentation}, gas schedule v${versions.gasSchedule}\n`);
    const width = Math.max(...results.map((c) => c.name.length));
    for (const c of results) process.stdout.write(`  ${c.ok ? 'ok  ' : c.optional ? 'note' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}\n`);
    process.stdout.write(ready ? 'the VM can run here\n' : 'the VM cannot run here: fix the FAIL lines\n');
  }
  return ready ? 0 : 1;
}
