/**
 * The gate in front of a VM's listener: only a connection that proves the VM's secret gets through.
 *
 * Every launcher that hands a VM a secret (src/host/supervisor.ts for local processes, and any later one)
 * puts its listener behind `admitVm`. Each incoming connection must send, as its first frame, a hello whose
 * proof checks under the secret (src/protocol/hello-proof.ts). Until then the host answers nothing. A
 * connection that sends something else, a wrong proof, an oversized frame, or nothing within
 * `helloTimeoutMs` is closed, and the listener keeps accepting: an intruder that connects first does not stop
 * the real VM from connecting. At most `maxPending` unauthenticated connections are held at once; a new one
 * over the cap evicts the oldest. Evicting the oldest (rather than refusing the newest) is what keeps an
 * intruder that parks silent connections from locking the real VM out: the real VM says hello as soon as it
 * has connected, so it is never the oldest for long. The first authenticated connection wins; the listener
 * then closes and every other pending connection is dropped.
 *
 * Connections the host opens itself (to a VM that serves) pass the same check through `proveConnection`.
 *
 * The authenticated socket is handed over paused with the hello frame pushed back (unshift), so the session
 * reads and answers that hello like any other request.
 */
import type { Server, Socket } from 'node:net';
import { HostlinkError } from '../errors.js';
import { FrameReader } from '../protocol/frame.js';
import { checkHelloProof } from '../protocol/hello-proof.js';

export interface GateOptions {
  /** How long a connection may take to send its hello. Default 5000 ms. */
  helloTimeoutMs?: number;
  /** Unauthenticated connections held at once; a new one over the cap evicts the oldest. Default 16. */
  maxPending?: number;
}

/** A hello is a few dozen bytes; a longer first frame is refused without being buffered. */
const MAX_HELLO_FRAME_BYTES = 1024;
const DEFAULT_HELLO_TIMEOUT_MS = 5000;
const DEFAULT_MAX_PENDING = 16;

export interface Gate {
  /** The authenticated connection (paused, hello unread). Rejects when the gate is closed first. */
  readonly connection: Promise<Socket>;
  /** Connections closed because they did not prove the secret (or came over the cap, or too late). */
  readonly refused: number;
  /** Stops accepting, drops pending connections and rejects `connection` if nobody got in. */
  close(reason: HostlinkError): void;
}

export function admitVm(server: Server, secret: Uint8Array, options: GateOptions = {}): Gate {
  const helloTimeoutMs = options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
  const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
  const pending = new Map<Socket, NodeJS.Timeout>();
  let refused = 0;
  let settled = false;
  let admit!: (socket: Socket) => void;
  let fail!: (reason: HostlinkError) => void;
  const connection = new Promise<Socket>((resolve, reject) => {
    admit = resolve;
    fail = reject;
  });
  connection.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection

  const drop = (socket: Socket): void => {
    const timer = pending.get(socket);
    if (timer !== undefined) clearTimeout(timer);
    pending.delete(socket);
    socket.destroy();
    refused++;
  };
  const stop = (): void => {
    settled = true;
    server.off('connection', onConnection);
    server.close();
    for (const socket of [...pending.keys()]) drop(socket);
  };

  function onConnection(socket: Socket): void {
    socket.on('error', () => undefined); // a reset intruder is just closed
    if (settled) {
      socket.destroy();
      refused++;
      return;
    }
    if (pending.size >= maxPending) drop(pending.keys().next().value!); // the oldest: Map keeps insertion order
    pending.set(socket, setTimeout(() => drop(socket), helloTimeoutMs));
    readHello(socket, (hello) => {
      if (hello === null || settled || !checkHelloProof(secret, hello)) {
        drop(socket);
        return;
      }
      clearTimeout(pending.get(socket));
      pending.delete(socket);
      stop();
      admit(socket);
    });
  }

  server.on('connection', onConnection);
  return {
    connection,
    get refused() {
      return refused;
    },
    close(reason) {
      if (settled) return;
      stop();
      fail(reason);
    },
  };
}

/**
 * Reads a connection's first frame without answering it, then hands the socket back paused with every byte
 * pushed back (the session reads the hello itself). `null` when the first frame is over the hello size limit.
 */
function readHello(socket: Socket, then: (hello: Buffer | null) => void): void {
  const reader = new FrameReader(MAX_HELLO_FRAME_BYTES);
  const seen: Buffer[] = [];
  const onData = (chunk: Buffer): void => {
    seen.push(chunk);
    let frames: Buffer[];
    try {
      frames = reader.push(chunk);
    } catch {
      socket.off('data', onData);
      then(null); // oversized first frame
      return;
    }
    if (frames.length === 0) return;
    socket.pause();
    socket.off('data', onData);
    socket.setNoDelay(true);
    socket.unshift(Buffer.concat(seen));
    then(frames[0]!);
  };
  socket.on('data', onData);
}

/**
 * The same proof for a connection the host opened itself (a VM that serves, reached through the runtime
 * handshake or a remote worker): resolves with the socket, paused with its hello unread, once the first frame
 * proves `secret`; rejects and destroys the socket on anything else, on close, or after `helloTimeoutMs`.
 */
export function proveConnection(socket: Socket, secret: Uint8Array, options: Pick<GateOptions, 'helloTimeoutMs'> = {}): Promise<Socket> {
  const helloTimeoutMs = options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let done = false;
    const refuse = (why: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new HostlinkError('protocol', `the VM connection was refused: ${why}`));
    };
    const timer = setTimeout(() => refuse(`no hello within ${helloTimeoutMs} ms`), helloTimeoutMs);
    const onClose = (): void => refuse('closed before its hello');
    socket.on('error', () => undefined);
    socket.once('close', onClose);
    readHello(socket, (hello) => {
      if (done) return;
      if (hello === null) return refuse('its first frame is larger than a hello');
      if (!checkHelloProof(secret, hello)) return refuse('its hello does not prove the VM secret');
      done = true;
      clearTimeout(timer);
      socket.off('close', onClose);
      resolve(socket);
    });
  });
}
