/**
 * `hostlink agent`: the host side of the command channel. Per connection: read one request to EOF (or until it
 * is complete JSON, for guests that never half-close), at most 64 KiB, check the sender's CID, run the
 * command's handler, write one reply, close. Every failure short of a dead socket gets an Err reply, and one
 * connection's trouble never stops the listener.
 */
import { type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { rm, stat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { HostlinkError } from '../errors.js';
import { formatControlAddress, VSOCK_CID_ANY, type ControlAddress } from './address.js';
import { createBridgeFiles, listenArgs, MAX_PEER_HEADER, parsePeerHeader, type BridgeFiles } from './bridge.js';
import type { AgentConfig } from './config.js';
import type { AgentState, HandlerContext } from './handlers/context.js';
import { HANDLERS } from './handlers/index.js';
import { AGENT_STOPPING, CommandSlots, runCommand, STOPPING_REFUSAL } from './handlers/run.js';
import { ConnectionTable, type Slot } from './connections.js';
import { isJsonWhitespace, JsonObjectScanner } from './json-scan.js';
import { logText } from '../terminal-text.js';
import { socatErrors, socatStartError, spawnSocat } from './socat.js';
import {
  decodeRequest,
  encodeLegacyResponse,
  encodeResponse,
  MAX_MESSAGE_BYTES,
  WireError,
  type Command,
  type Payload,
  type RequestFormat,
  type Response,
} from './wire.js';
import { extend } from '../extend.js';

export interface AgentOptions {
  /** Where the agent reports each request and problem (default: stderr). */
  log?: (line: string) => void;
}

/** Who is on the other end of a connection. */
interface Peer {
  label: string;
  /** The peer's real CID when the transport knows it (vsock bridge, or `peerCid` for unix listeners). */
  cid?: number;
  /** A vsock-bridge connection: the first line is the peer header. */
  bridged: boolean;
  /** Whose connection this is for the per-peer limit: TCP address, unix listener, or vsock CID ('' until known). */
  key: string;
}

interface Outcome {
  format: RequestFormat;
  response: Response;
  /** For the log. */
  what: string;
}

export class ControlAgent {
  private readonly servers: Server[] = [];
  private readonly bridges: { child: ChildProcess; files: BridgeFiles }[] = [];
  /** Every open connection, served or being refused: close() ends those that outstay the grace period. */
  private readonly sockets = new Set<Socket>();
  private readonly connections: ConnectionTable;
  /** Connections being answered "no slot" (bounded, see refuse()). */
  private refusing = 0;
  private readonly background = new Set<Promise<unknown>>();
  /** Every request being handled, until its reply is on its way: close() stops them and waits for them. */
  private readonly inflight = new Set<Promise<void>>();
  private readonly closing = new AbortController();
  private readonly state: AgentState;
  private readonly log: (line: string) => void;

  constructor(
    readonly config: AgentConfig,
    options: AgentOptions = {},
  ) {
    const sink = options.log ?? ((line: string) => process.stderr.write(`hostlink agent: ${line}\n`));
    // Log lines carry guest text (commands, node ids, URLs): never let it drive the operator's terminal.
    this.log = (line) => sink(logText(line));
    // Each request being handled listens on it (handle()), as do pending notifications: bounded by
    // maxConnections and maxPending, so Node's "possible memory leak" warning at 10 listeners does not apply.
    setMaxListeners(0, this.closing.signal);
    this.connections = new ConnectionTable(config.maxConnections, Math.min(config.maxConnectionsPerPeer, config.maxConnections));
    this.state = {
      upgradeRunning: false,
      guestUpgradeVms: 0,
      rebootPending: false,
      notifiesPending: 0,
      commands: new CommandSlots(config.maxCommands),
      nodeIdTurn: new CommandSlots(1, 'the node id was not recorded: the request timed out while an earlier set-node-id was handled'),
    };
  }

  /** Starts listening; returns the address actually bound (with the real port for TCP port 0). */
  async listen(address: ControlAddress): Promise<string> {
    switch (address.kind) {
      case 'tcp': {
        const server = this.createServer((sock) => ({ label: 'tcp', key: `tcp:${sock.remoteAddress ?? '?'}`, bridged: false }));
        await listenOn(server, { host: address.host, port: address.port }).catch((e: unknown) => {
          throw wrapListen(e, formatControlAddress(address));
        });
        const a = server.address();
        const port = typeof a === 'object' && a !== null ? a.port : address.port;
        return formatControlAddress(extend(address, { port }));
      }
      case 'unix': {
        if (address.vsockPort !== undefined) {
          throw new HostlinkError('usage', `cannot listen on ${formatControlAddress(address)}: '?port=' is for connecting through a VMM's hybrid vsock socket; to take guest-initiated Firecracker connections listen on unix://<uds_path>_<port>`);
        }
        const cid = this.config.peerCid;
        // A unix socket does not tell who connected: the listener is the peer (one socket per VM under Firecracker).
        const key = `unix:${address.path}`;
        const server = this.createServer(() => ({ label: 'unix', key, bridged: false, ...(cid !== undefined ? { cid } : {}) }));
        await listenUnix(server, address.path);
        return formatControlAddress(address);
      }
      case 'vsock':
        return this.listenVsock(address);
    }
  }

  /**
   * The unix half of the vsock bridge, without socat: returns the files socat would use. `listen(vsock://...)`
   * calls this and then starts socat; tests call it to drive the bridge script directly.
   */
  async openBridge(): Promise<BridgeFiles> {
    const t = this.config.timeouts;
    const files = await createBridgeFiles(this.config.socatPath, (t.readMs + Math.max(t.requestMs, t.upgradeMs) + t.writeMs) / 1000);
    // The peer (its CID) is known once the bridge's header line has arrived.
    const server = this.createServer(() => ({ label: 'vsock', key: '', bridged: true }));
    try {
      await listenOn(server, files.socketPath);
    } catch (e) {
      await rm(files.dir, { recursive: true, force: true });
      throw e;
    }
    server.on('close', () => void rm(files.dir, { recursive: true, force: true }));
    return files;
  }

  private async listenVsock(address: ControlAddress & { kind: 'vsock' }): Promise<string> {
    if (address.cid !== VSOCK_CID_ANY) {
      throw new HostlinkError('usage', `the agent listens on every CID: use vsock://any:${address.port}, not vsock://${address.cid}:${address.port}`);
    }
    const files = await this.openBridge();
    const socatPath = this.config.socatPath;
    // On close() this socat stops accepting; children it forked finish the connections they carry.
    // As many bridged connections as the agent serves at once: beyond them the agent would only refuse.
    const child = spawnSocat(socatPath, listenArgs(address.port, files, this.config.maxConnections), { ...process.env, ...files.env });
    this.bridges.push({ child, files });
    await new Promise<void>((resolve, reject) => {
      let stderr = '';
      let up = false;
      child.on('error', (err: NodeJS.ErrnoException) => reject(socatStartError(socatPath, err)));
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (s: string) => {
        if (!up) {
          stderr += s;
          if (/ listening on /.test(stderr)) {
            up = true;
            resolve();
          }
        }
        for (const e of socatErrors(s)) this.log(`vsock bridge: ${e}`);
      });
      child.stdout!.resume();
      child.on('exit', (code) => {
        if (!up) {
          const why = socatErrors(stderr).join('; ') || `exit code ${code}`;
          reject(new HostlinkError('channel_closed', `cannot listen on vsock port ${address.port}: ${why}`));
        } else if (!this.closing.signal.aborted) {
          this.log(`vsock bridge (socat) exited with code ${code}: vsock requests are no longer served`);
        }
      });
    });
    return formatControlAddress(address);
  }

  private createServer(peerOf: (sock: Socket) => Peer): Server {
    const server = createServer({ allowHalfOpen: true }, (sock) => this.serve(sock, peerOf(sock)));
    // Errors before listening are listen failures, reported by listen(); later ones (accept failing with
    // EMFILE when the process is out of descriptors) are only logged: the listener keeps accepting.
    server.on('error', (e) => {
      if (server.listening) this.log(`listener error: ${e.message}`);
    });
    this.servers.push(server);
    return server;
  }

  /** Resolves when background work (notify writes, handlers still stopping after a timeout) has finished, without stopping anything. */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.all(this.background);
  }

  /**
   * Stops listening and stops every request in flight (their downloads and commands, as a timeout would),
   * waits (bounded) for their handlers, so nothing they started goes on behind a stopped agent, and for their
   * replies (briefly), then for background work such as a reboot already promised.
   */
  async close(): Promise<void> {
    this.closing.abort();
    for (const { child } of this.bridges) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const closed = this.servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    if (this.inflight.size > 0) {
      let bound: NodeJS.Timeout | undefined;
      const gaveUp = await Promise.race([
        Promise.all(this.inflight).then(() => false),
        new Promise<boolean>((r) => (bound = setTimeout(() => r(true), STOP_WAIT_MS))),
      ]);
      clearTimeout(bound);
      if (gaveUp) this.log(`${this.inflight.size} request(s) had not stopped ${STOP_WAIT_MS} ms after the agent began stopping; their connections are closed without a reply`);
    }
    // Then replies being written get a moment to go out.
    const grace = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, 2_000);
    await Promise.all(closed);
    clearTimeout(grace);
    // After the connections: a reboot is scheduled once its reply has been written.
    await this.idle();
    await Promise.all(this.bridges.map(({ files }) => rm(files.dir, { recursive: true, force: true })));
  }

  private serve(sock: Socket, peer: Peer): void {
    const t = this.config.timeouts;
    // First, so that no socket error (ECONNRESET, EPIPE...) is ever an unhandled 'error' event.
    sock.on('error', (e) => this.log(`${peer.label}: connection error: ${e.message}`));
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    let stage: 'header' | 'read' | 'handle' | 'write' = peer.bridged ? 'header' : 'read';
    let header = Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let size = 0;
    const scanner = new JsonObjectScanner();
    let early: NodeJS.Immediate | undefined;
    const after: (() => void)[] = [];
    let closed = false;
    const slot: Slot = {
      key: peer.key,
      waiting: true,
      received: 0,
      // The slot is given to the newcomer at once; this socket joins those being refused (bounded) for its reply.
      evict: (reason) => {
        if (this.lingers(sock)) finish(refusal('v1', reason));
        else sock.destroy();
      },
    };

    const admitted = this.connections.admit(slot);
    if (!admitted.ok) return this.refuse(sock, admitted.error);
    sock.on('close', () => this.connections.release(slot));

    let timer = setTimeout(() => finish(refusal('v1', `no complete request within ${t.readMs} ms: send one JSON request, then half-close the connection`)), t.readMs);
    // A connection that sends nothing for idleMs gives its slot back early.
    const idle = setTimeout(() => finish(refusal('v1', `no data for ${t.idleMs} ms: send one JSON request right after connecting, then half-close the connection`)), t.idleMs);

    const runAfter = (): void => {
      for (const fn of after.splice(0)) {
        try {
          fn();
        } catch (e) {
          this.log(`after-reply action failed: ${(e as Error).message}`);
        }
      }
    };
    const finish = (o: Outcome): void => {
      if (stage === 'write') return;
      stage = 'write';
      slot.waiting = false;
      clearTimeout(timer);
      clearTimeout(idle);
      if (early !== undefined) clearImmediate(early);
      this.log(`${peer.label}${peer.cid !== undefined ? ` cid ${peer.cid}` : ''}: ${o.what} -> ${o.response.ok ? 'ok' : `refused: ${o.response.error}`}`);
      if (closed) return runAfter(); // the guest left before the answer; a scheduled reboot still happens
      timer = setTimeout(() => sock.destroy(), t.writeMs);
      sock.end(o.format === 'legacy' ? encodeLegacyResponse(o.response) : encodeResponse(o.response));
    };
    const onRequest = (): void => {
      stage = 'handle';
      slot.waiting = false;
      clearTimeout(timer);
      clearTimeout(idle);
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const handling = this.handle(bytes, peer, (fn) => {
        if (stage === 'handle') after.push(fn);
        else this.log('an action meant for after the reply was dropped: the request had already been answered');
      }).then(finish, (e: unknown) => finish(refusal('v1', `internal error: ${(e as Error)?.message ?? String(e)}`)));
      this.inflight.add(handling);
      const done = (): void => void this.inflight.delete(handling);
      handling.then(done, done);
    };
    const onData = (chunk: Buffer): void => {
      idle.refresh();
      size += chunk.length;
      slot.received = size;
      // The limit is on bytes received, whatever the JSON inside them: a complete object followed by more
      // bytes is no smaller.
      if (size > MAX_MESSAGE_BYTES) return finish(refusal('v1', `request too large: more than ${MAX_MESSAGE_BYTES} bytes`));
      chunks.push(chunk);
      let rest = chunk;
      if (!scanner.complete) {
        const end = scanner.feed(chunk);
        if (end < 0) return; // still open (or not an object: EOF decides)
        rest = chunk.subarray(end);
      } else if (early !== undefined) {
        // More bytes after an object that ended a read: this guest does send more, so wait for its EOF.
        clearImmediate(early);
        early = undefined;
      }
      if (!rest.every(isJsonWhitespace)) return finish(refusal('v1', 'unable to parse client request: unexpected data after the request object'));
      if (rest.length > 0) return; // whitespace after the object: the guest will half-close; EOF decides
      // The object ends exactly where the bytes so far end: a guest that never half-closes (older reference
      // guests) waits here for the reply. Bytes that arrived in the same read are delivered before a
      // setImmediate callback runs, so a larger write is counted in full before anything is executed.
      early ??= setImmediate(() => {
        early = undefined;
        if (stage === 'read') onRequest();
      });
    };

    sock.on('data', (chunk: Buffer) => {
      if (stage === 'header') {
        header = Buffer.concat([header, chunk]); // at most MAX_PEER_HEADER bytes are ever kept
        const nl = header.indexOf(0x0a);
        if (nl < 0) {
          if (header.length > MAX_PEER_HEADER) sock.destroy();
          return;
        }
        const cid = parsePeerHeader(header.subarray(0, nl).toString('latin1'));
        if (cid === undefined) {
          this.log('vsock bridge sent no peer CID header; connection dropped');
          return void sock.destroy();
        }
        peer = extend(peer, { cid, key: `cid:${cid}` });
        stage = 'read';
        // Now that the peer is known, its own limit applies.
        const again = this.connections.rekey(slot, peer.key);
        if (!again.ok) {
          // No slot any more: answered from the bounded pool of refusals, like a connection refused at accept.
          if (this.lingers(sock)) return finish(refusal('v1', again.error));
          return void sock.destroy();
        }
        const rest = header.subarray(nl + 1);
        if (rest.length > 0) onData(rest);
        return;
      }
      if (stage === 'read') onData(chunk);
      // Later data (after an oversized or early-complete request) is read and dropped so the peer is not blocked.
    });
    sock.on('end', () => {
      if (stage === 'header') return void sock.destroy();
      if (stage === 'read') {
        if (size === 0) return finish(refusal('v1', 'empty request: send one JSON request, then half-close the connection'));
        onRequest();
      }
    });
    sock.on('finish', () => {
      // Reply written: the peer may still be sending (we answered early); give it writeMs to hang up.
      clearTimeout(timer);
      runAfter();
      if (!sock.readableEnded) timer = setTimeout(() => sock.destroy(), t.writeMs);
    });
    sock.on('close', () => {
      closed = true;
      clearTimeout(timer);
      clearTimeout(idle);
      if (early !== undefined) clearImmediate(early);
      // An action like a scheduled reboot still happens if the guest went away before reading the reply.
      runAfter();
    });
  }

  /**
   * Answers a connection that got no slot and closes it. Such sockets (and evicted ones) are counted too: at
   * most maxConnections at once, each for at most writeMs after its reply; beyond that a flood is cut off
   * without a reply rather than being allowed to use up the process's descriptors.
   */
  private refuse(sock: Socket, error: string): void {
    this.log(`connection refused: ${error}`);
    if (!this.lingers(sock)) return void sock.destroy();
    const timer = setTimeout(() => sock.destroy(), this.config.timeouts.writeMs);
    sock.on('close', () => clearTimeout(timer));
    sock.on('end', () => sock.destroy());
    sock.resume(); // drain what it sends so our reply is not lost to a reset
    sock.end(encodeResponse({ ok: false, error }));
  }

  /** Counts `sock` among the connections being sent a refusal; false when there are already too many. */
  private lingers(sock: Socket): boolean {
    if (this.refusing >= this.config.maxConnections) return false;
    this.refusing++;
    sock.once('close', () => this.refusing--);
    return true;
  }

  /** Decodes, checks and dispatches one request; never throws for a bad request, returns the refusal. */
  private async handle(bytes: Buffer, peer: Peer, afterReply: (fn: () => void) => void): Promise<Outcome> {
    let format: RequestFormat;
    let senderCid: number;
    let command: Command;
    try {
      ({ format, request: { senderCid, command } } = decodeRequest(bytes));
    } catch (e) {
      if (e instanceof WireError) return refusal(e.format ?? 'v1', e.message);
      throw e;
    }
    const what = `${format === 'legacy' ? 'legacy ' : ''}${command.type}`;
    const refuse = (error: string): Outcome => ({ format, what, response: { ok: false, error } });
    const allowed = this.config.allowedCids;
    if (!allowed.includes(senderCid)) {
      return refuse(`this host only accepts requests from guest CID ${allowed.join(', ') || '(none configured)'}; the request claims CID ${senderCid}`);
    }
    if (peer.cid !== undefined && peer.cid !== senderCid) {
      return refuse(`the sender's real CID (${peer.cid}) does not match the CID in the request (${senderCid})`);
    }
    if (!this.config.handlers[command.type].enabled) {
      return refuse(`the host has disabled '${command.type}' (handlers.${command.type}.enabled is false in the agent configuration)`);
    }
    // A request read to its end after close() began: start nothing the agent would not see through.
    if (this.closing.signal.aborted) return refuse(STOPPING_REFUSAL);

    const limit = command.type === 'upgrade' ? this.config.timeouts.upgradeMs : this.config.timeouts.requestMs;
    const abort = new AbortController();
    // Shutdown stops the request's work as its timeout does; the reason lets the reply say which it was.
    const stop = (): void => abort.abort(AGENT_STOPPING);
    this.closing.signal.addEventListener('abort', stop, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<Outcome>((resolve) => {
      timer = setTimeout(() => {
        abort.abort();
        resolve(refuse(`the host did not finish '${command.type}' within ${limit} ms`));
      }, limit);
    });
    const ctx: HandlerContext = {
      config: this.config,
      signal: abort.signal,
      closing: this.closing.signal,
      log: this.log,
      afterReply,
      track: (work) => {
        const p = work.catch(() => undefined).finally(() => this.background.delete(p));
        this.background.add(p);
      },
      run: async (argv) => {
        const release = await this.state.commands.acquire(abort.signal);
        try {
          await runCommand(argv, abort.signal);
        } finally {
          release();
        }
      },
      state: this.state,
    };
    const handler = HANDLERS[command.type] as (c: Command, ctx: HandlerContext) => Promise<Payload>;
    const run = handler(command, ctx).then(
      (payload): Outcome => ({ format, what, response: { ok: true, payload } }),
      (e: unknown): Outcome => refuse(e instanceof Error ? e.message : String(e)),
    );
    try {
      return await Promise.race([run, timedOut.then((o) => {
        // Answered at once, but the handler goes on until it has stopped its (aborted) work, e.g. a download
        // removing its partial file: idle() and close() wait for that, so nothing it does outlives them.
        ctx.track(run);
        return o;
      })]);
    } finally {
      clearTimeout(timer);
      this.closing.signal.removeEventListener('abort', stop);
    }
  }
}

/**
 * How long close() waits for requests in flight once it has stopped them: a stopped command gets SIGKILL
 * KILL_GRACE_MS after SIGTERM, so this is reached only by a handler that ignores its signal.
 */
const STOP_WAIT_MS = 10_000;

function refusal(format: RequestFormat, error: string): Outcome {
  return { format, what: 'bad request', response: { ok: false, error } };
}

function listenOn(server: Server, where: string | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (typeof where === 'string') server.listen(where, done);
    else server.listen(where.port, where.host, done);
  });
}

/** Listens on a unix path, replacing a stale socket file left by a dead agent but never a live one. */
async function listenUnix(server: Server, path: string): Promise<void> {
  try {
    await listenOn(server, path);
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw wrapListen(e, `unix://${path}`);
  }
  const st = await stat(path).catch(() => undefined);
  const alive = st?.isSocket()
    ? await new Promise<boolean>((resolve) => {
        const probe = connect(path, () => {
          probe.destroy();
          resolve(true);
        });
        probe.on('error', () => resolve(false));
      })
    : true;
  if (alive) throw new HostlinkError('usage', `cannot listen on unix://${path}: ${st?.isSocket() ? 'another process is serving it' : 'the path exists and is not a socket'}`);
  await unlink(path);
  await listenOn(server, path).catch((e: unknown) => {
    throw wrapListen(e, `unix://${path}`);
  });
}

/** A listen failure is about the address the operator gave: a usage error (exit 2). */
function wrapListen(e: unknown, where: string): HostlinkError {
  return new HostlinkError('usage', `cannot listen on ${where}: ${(e as Error).message}`);
}
