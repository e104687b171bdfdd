/** `hostlink agent`: serve guest requests until SIGINT or SIGTERM. */
import { parseArgs } from 'node:util';
import { DEFAULT_AGENT_ADDRESS, parseControlAddress } from '../../control/address.js';
import { ControlAgent } from '../../control/agent.js';
import { defaultAgentConfig, loadAgentConfig } from '../../control/config.js';
import { HostlinkError } from '../../errors.js';

const USAGE = `usage: hostlink agent [--listen ADDR] [--config FILE]

Serves the guest-to-host command channel: one JSON request and one JSON reply per connection.

options:
  --listen ADDR   vsock://any:PORT (default ${DEFAULT_AGENT_ADDRESS}; vsock needs socat), unix:///path or HOST:PORT
  --config FILE   JSON configuration: allowed guest CIDs, timeouts, and per command whether it is enabled and
                  what it runs, upgrade URLs and networks allowed, limits (see docs/ops-channel.md). Without
                  it: only CID 3 is served, commands that need a configured command or version answer that
                  they are not configured, and no upgrade URL is allowed.`;

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { listen: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    throw new HostlinkError('usage', `${(e as Error).message} (see hostlink agent --help)`);
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const config = values.config !== undefined ? loadAgentConfig(values.config) : defaultAgentConfig();
  const address = parseControlAddress(values.listen ?? config.listen ?? DEFAULT_AGENT_ADDRESS);
  const agent = new ControlAgent(config);
  let bound: string;
  try {
    bound = await agent.listen(address);
  } catch (e) {
    await agent.close(); // a half-set-up vsock bridge would keep the process alive
    throw e;
  }
  process.stderr.write(`hostlink agent: listening on ${bound}\n`);

  // Kept listening after the first: a second signal while the agent stops (a repeat from a service manager) would
  // otherwise end it midway, before a reboot it promised a guest or with an installer still running. SIGKILL
  // still ends it at once.
  let stopping = false;
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      if (stopping) process.stderr.write(`hostlink agent: ${s}: already stopping (SIGKILL ends it at once)\n`);
      stopping = true;
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
  process.stderr.write(`hostlink agent: ${signal}: stopping\n`);
  await agent.close();
  return 0;
}
