/** The handler for each command. */
import { configuredCommand, setNodeId } from './commands.js';
import type { HandlerTable } from './context.js';
import { notify } from './notify.js';
import { upgrade } from './upgrade.js';
import { getHostosVersion, getVsockProtocol } from './version.js';

export const HANDLERS: HandlerTable = {
  'get-vsock-protocol': getVsockProtocol,
  'get-hostos-version': getHostosVersion,
  'attach-hsm': configuredCommand('attach-hsm'),
  'detach-hsm': configuredCommand('detach-hsm'),
  'start-upgrade-guest-vm': configuredCommand('start-upgrade-guest-vm'),
  'set-node-id': setNodeId,
  upgrade,
  notify,
};
