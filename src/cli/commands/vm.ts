/** `hostlink vm`: the VM process. Normally started by the host, not by hand. */
import { parseArgs } from 'node:util';
import { runVmProcess, VM_EXIT } from '../../vm/process.js';
import { isSandboxMode } from '../../vm/sandbox.js';
import { RUNTIME_ENGINE_ADDR_ENV } from '../../protocol/generated.js';

const USAGE = `usage: hostlink vm --host ADDR [--message JSON] [--channel auto|native|js]
       ${RUNTIME_ENGINE_ADDR_ENV}=ADDR hostlink vm [--message JSON]
       hostlink vm --sandbox-self-test [--sandbox required|best-effort|off]

Runs contract executions for a host. ADDR is unix:///path/to.sock, tcp://HOST:PORT or HOST:PORT.
The host that starts the VM writes its secret to stdin; the VM proves it when it connects (a VM
started by hand has none, and a Hostlink host closes its connection). The VM asks the host for
messages until there are none. With --message (manual use), it runs that one execution instead and
exits. The message schema is in docs/message.md.

Without --host, the VM takes the runtime handshake (docs/runtime.md): it listens, calls Initialize on the
engine at $${RUNTIME_ENGINE_ADDR_ENV} with its protocol version and address, and serves the host that
connects and proves the VM's secret.

--sandbox-self-test starts sandboxed VM processes that each try a forbidden action (open a file, connect a
socket, fork, exec, ptrace, raise a limit, write to an inherited descriptor...) and prints what was blocked;
exit 0 when everything was (docs/security.md).

exit codes: 0 done, 1 internal failure, 2 bad arguments or message, 3 no common protocol version,
            4 host unreachable or connection lost, 5 sandbox required but not installable`;

export async function run(argv: string[]): Promise<number> {
  let values: { host?: string; message?: string; channel?: string; help?: boolean; sandbox?: string; 'sandbox-self-test'?: boolean; 'sandbox-probe'?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        host: { type: 'string' },
        message: { type: 'string' },
        channel: { type: 'string' },
        sandbox: { type: 'string' },
        'sandbox-self-test': { type: 'boolean' },
        'sandbox-probe': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`hostlink vm: ${(e as Error).message}\n${USAGE}\n`);
    return VM_EXIT.usage;
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return VM_EXIT.ok;
  }
  if (values['sandbox-self-test']) {
    const mode = values.sandbox ?? 'required';
    if (!isSandboxMode(mode)) {
      process.stderr.write(`hostlink vm: --sandbox must be required, best-effort or off\n`);
      return VM_EXIT.usage;
    }
    // Loaded only here: a VM never carries the self-test's modules.
    const { runSandboxSelfTest } = await import('../../host/sandbox/self-test.js');
    return runSandboxSelfTest(mode, (line) => process.stdout.write(line + '\n'));
  }
  if (values['sandbox-probe'] !== undefined) {
    const { runProbe } = await import('../../vm/sandbox-probes.js');
    return runProbe(values['sandbox-probe']);
  }
  if (values.host === undefined) {
    const engine = process.env[RUNTIME_ENGINE_ADDR_ENV];
    if (!engine) {
      process.stderr.write(`hostlink vm: required env var missing: ${RUNTIME_ENGINE_ADDR_ENV} (or pass --host ADDR)\n${USAGE}\n`);
      return VM_EXIT.usage;
    }
    // Loaded only here: the gRPC packages cost start-up time that a VM dialling --host does not pay.
    const { connectThroughRuntime } = await import('../../runtime/vm.js');
    const connect = (secret: Uint8Array | undefined) => connectThroughRuntime(engine, secret);
    return runVmProcess({ host: engine, connect, ...(values.message !== undefined ? { message: values.message } : {}) });
  }
  const channel = values.channel ?? 'auto';
  if (channel !== 'auto' && channel !== 'native' && channel !== 'js') {
    process.stderr.write(`hostlink vm: --channel must be auto, native or js\n`);
    return VM_EXIT.usage;
  }
  return runVmProcess({ host: values.host, channel, ...(values.message !== undefined ? { message: values.message } : {}) });
}
