/**
 * Handlers that run operator-configured commands: attach-hsm / detach-hsm (for example
 * `virsh attach-device guestos --file hsm.xml`), start-upgrade-guest-vm, and set-node-id (write the node id to a
 * file, then run a command such as one that updates the hostname, with `{node_id}` in its arguments).
 */
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import type { CommandType, Payload } from '../wire.js';
import type { HandlerContext } from './context.js';
import { fillPlaceholders, whyStopped } from './run.js';
import { rebootPendingError } from './upgrade.js';

const NO_PAYLOAD: Payload = { kind: 'NoPayload' };

/** A handler that runs `handlers.<type>.command`. */
export function configuredCommand(type: 'attach-hsm' | 'detach-hsm' | 'start-upgrade-guest-vm') {
  return async (_c: unknown, ctx: HandlerContext): Promise<Payload> => {
    const argv = ctx.config.handlers[type].command;
    if (argv === undefined) throw notConfigured(type, 'command');
    if (type !== 'start-upgrade-guest-vm') {
      await ctx.run(argv);
      return NO_PAYLOAD;
    }
    // The guest upgrade VM rewrites the guest's disks: the reboot of an installed host upgrade would cut it
    // short, whether that reboot is already promised or comes from an upgrade still installing.
    if (ctx.state.rebootPending) throw rebootPendingError("'start-upgrade-guest-vm'");
    if (ctx.state.upgradeRunning) throw new Error(`'start-upgrade-guest-vm' is refused while a host upgrade is running (it reboots the host when installed); ${GUEST_VM_RETRY}`);
    ctx.state.guestUpgradeVms++;
    try {
      await ctx.run(argv);
    } finally {
      ctx.state.guestUpgradeVms--;
    }
    return NO_PAYLOAD;
  };
}

/** Node ids are principal texts (`abcde-fghij-...`): letters, digits and dashes; they end up in a hostname. */
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,254}$/;

export async function setNodeId(c: { nodeId: string }, ctx: HandlerContext): Promise<Payload> {
  const h = ctx.config.handlers['set-node-id'];
  if (h.nodeIdFile === undefined && h.command === undefined) throw notConfigured('set-node-id', 'nodeIdFile or command');
  if (!NODE_ID.test(c.nodeId)) {
    throw new Error(`invalid node id '${c.nodeId.slice(0, 64)}': expected letters, digits and dashes (at most 255)`);
  }
  // One request at a time, in arrival order: the file and the command must end up with the same id, the one
  // whose request was answered last.
  const release = await ctx.state.nodeIdTurn.acquire(ctx.signal);
  try {
    if (h.nodeIdFile !== undefined) await writeNodeId(h.nodeIdFile, c.nodeId, ctx);
    if (h.command !== undefined) await ctx.run(fillPlaceholders(h.command, { node_id: c.nodeId }));
  } finally {
    release();
  }
  return NO_PAYLOAD;
}

/** Writes a fresh temporary file, then renames it over `file`, so a reader never sees half an id. */
async function writeNodeId(file: string, nodeId: string, ctx: HandlerContext): Promise<void> {
  if (ctx.signal.aborted) throw new Error(`the node id was not recorded: ${whyStopped(ctx.signal)}`);
  // A name no one else uses, created with 'wx' (O_CREAT|O_EXCL): never write through a file or link left there.
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(8).toString('hex')}`;
  try {
    await writeFile(tmp, nodeId + '\n', { flag: 'wx', mode: 0o644 });
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    // Paths and errno texts are the host's business: the log has them, the guest learns what to do.
    ctx.log(`set-node-id: cannot write the node id to ${file}: ${(e as Error).message}`);
    throw new Error("the host could not record the node id in handlers.set-node-id.nodeIdFile; the host's agent log has the details");
  }
}

const GUEST_VM_RETRY = 'retry when the upgrade has finished (after the reboot, if it installed)';

function notConfigured(type: CommandType, what: string): Error {
  return new Error(`the host has '${type}' enabled but not configured: set handlers.${type}.${what} in the agent configuration`);
}
