/** `hostlink vm`: the VM process. Normally started by the host, not by hand. */
import { parseArgs } from 'node:util';
import { runVmProcess, VM_EXIT } from '../../vm/process.js';

const USAGE = `usage: hostlink vm --host ADDR [--message JSON] [--channel auto|native|js]

Runs contract executions for a host. ADDR is unix:///path/to.sock, tcp://HOST:PORT or HOST:PORT.
The host that starts the VM writes its secret to stdin; the VM proves it when it connects (a VM
started by hand has none, and a Hostlink host closes its connection). The VM asks the host for
messages until there are none. With --message (manual use), it runs that one execution instead and
exits. The message schema is in docs/message.md.

exit codes: 0 done, 1 internal failure, 2 bad arguments or message, 3 no common protocol version,
            4 host unreachable or connection lost`;

export async function run(argv: string[]): Promise<number> {
  let values: { host?: string; message?: string; channel?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        host: { type: 'string' },
        message: { type: 'string' },
        channel: { type: 'string' },
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
  if (values.host === undefined) {
    process.stderr.write(`hostlink vm: --host is required\n${USAGE}\n`);
    return VM_EXIT.usage;
  }
  const channel = values.channel ?? 'auto';
  if (channel !== 'auto' && channel !== 'native' && channel !== 'js') {
    process.stderr.write(`hostlink vm: --channel must be auto, native or js\n`);
    return VM_EXIT.usage;
  }
  return runVmProcess({ host: values.host, channel, ...(values.message !== undefined ? { message: values.message } : {}) });
}
