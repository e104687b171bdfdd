/** Shared test helpers for the command channel: temp dirs, a quiet agent, raw socket exchanges, an HTTP origin. */
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlAgent } from '../../src/control/agent.js';
import { parseControlAddress } from '../../src/control/address.js';
import { resolveAgentConfig } from '../../src/control/config.js';

type TestScope = { after(fn: () => Promise<void> | void): void };

/**
 * The agents each test started, as close-once functions. A test's after hooks run in the order they were
 * added and a test makes its temp dir before the agent that lives in it, so the dir's removal closes them
 * first: an agent still writing there (a staged download, a scheduled reboot command) would race the removal.
 */
const agentsOf = new WeakMap<TestScope, (() => Promise<void>)[]>();
function agentClosers(t: TestScope): (() => Promise<void>)[] {
  let list = agentsOf.get(t);
  if (list === undefined) agentsOf.set(t, (list = []));
  return list;
}

export async function tempDir(t: TestScope): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hostlink-control-test-'));
  t.after(async () => {
    await Promise.all(agentClosers(t).map((close) => close()));
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

export interface RunningAgent {
  agent: ControlAgent;
  address: string;
  logs: string[];
}

/** Starts an agent with `config` (JSON, merged over the defaults) on `listen`; closed when the test ends. */
export async function startAgent(
  t: TestScope,
  listen: string,
  config: unknown = {},
): Promise<RunningAgent> {
  const logs: string[] = [];
  const agent = new ControlAgent(resolveAgentConfig(config), { log: (l) => logs.push(l) });
  const address = await agent.listen(parseControlAddress(listen));
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= agent.close());
  agentClosers(t).push(close);
  t.after(close);
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

/**
 * An HTTP server on 127.0.0.1 serving `handler` (images for upgrades), closed after the test with every
 * connection it still holds; resolves with its base URL.
 */
export async function serveHttp(t: TestScope, handler: RequestListener): Promise<string> {
  const sockets = new Set<Socket>();
  const http = createHttpServer(handler);
  http.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => http.close(() => r()));
  });
  return `http://127.0.0.1:${(http.address() as { port: number }).port}`;
}
