/**
 * Handlers that run operator-configured commands: attach-hsm / detach-hsm (for example
 * `virsh attach-device guestos --file hsm.xml`), start-upgrade-guest-vm, and set-node-id (write the node id to a
 * file, then run a command such as one that updates the hostname, with `{node_id}` in its arguments).
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import type { CommandType, Payload } from '../wire.js';
import type { HandlerContext } from './context.js';
import { fillPlaceholders } from './run.js';

const NO_PAYLOAD: Payload = { kind: 'NoPayload' };

/** A handler that runs `handlers.<type>.command`. */
export function configuredCommand(type: 'attach-hsm' | 'detach-hsm' | 'start-upgrade-guest-vm') {
  return async (_c: unknown, ctx: HandlerContext): Promise<Payload> => {
    const argv = ctx.config.handlers[type].command;
    if (argv === undefined) throw notConfigured(type, 'command');
    await ctx.run(argv);
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
  if (h.nodeIdFile !== undefined) {
    // Write then rename, so a reader never sees half an id.
    const tmp = `${h.nodeIdFile}.tmp-${process.pid}`;
    try {
      // 'wx' (O_CREAT|O_EXCL): never write through a file or link someone else left at the temporary name.
      await rm(tmp, { force: true });
      await writeFile(tmp, c.nodeId + '\n', { flag: 'wx', mode: 0o644 });
      await rename(tmp, h.nodeIdFile);
    } catch (e) {
      throw new Error(`cannot write the node id to ${h.nodeIdFile}: ${(e as Error).message}`);
    }
  }
  if (h.command !== undefined) await ctx.run(fillPlaceholders(h.command, { node_id: c.nodeId }));
  return NO_PAYLOAD;
}

function notConfigured(type: CommandType, what: string): Error {
  return new Error(`the host has '${type}' enabled but not configured: set handlers.${type}.${what} in the agent configuration`);
}
