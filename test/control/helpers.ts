/** Shared test helpers for the command channel: temp dirs, a quiet agent, raw socket exchanges. */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlAgent } from '../../src/control/agent.js';
import { parseControlAddress } from '../../src/control/address.js';
import { resolveAgentConfig } from '../../src/control/config.js';

export async function tempDir(t: { after(fn: () => Promise<void> | void): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hostlink-control-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface RunningAgent {
  agent: ControlAgent;
  address: string;
  logs: string[];
}

/** Starts an agent with `config` (JSON, merged over the defaults) on `listen`; closed when the test ends. */
export async function startAgent(
  t: { after(fn: () => Promise<void> | void): void },
  listen: string,
  config: unknown = {},
): Promise<RunningAgent> {
  const logs: string[] = [];
  const agent = new ControlAgent(resolveAgentConfig(config), { log: (l) => logs.push(l) });
  const address = await agent.listen(parseControlAddress(listen));
  t.after(() => agent.close());
  return { agent, address, logs };
}

/**
 * Sends raw bytes to a unix path or "host:port" and returns everything the server sends back before closing.
 * `halfClose` false imitates an old guest that writes and then only reads.
 */
export function rawExchange(where: string, bytes: Uint8Array | string, halfClose = true): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const m = /^(.*):(\d+)$/.exec(where);
    const sock: Socket = where.startsWith('/') ? connect(where) : connect({ host: m![1]!, port: Number(m![2]) });
    const chunks: Buffer[] = [];
    sock.on('connect', () => {
      if (halfClose) sock.end(bytes);
      else sock.write(bytes);
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => {
      sock.end();
      resolve(Buffer.concat(chunks));
    });
    sock.on('error', reject);
  });
}

export const HASH_RE = /^[0-9a-f]{64}$/;
