/**
 * A Node echo server (bench only) on the host's socket addon (native/hostlink_socket.c): each readable event is one
 * `recv` and one call into JavaScript, where the same FrameReader as the session's parses the frames, and each
 * read's answers leave with one `send`. It is the session's I/O without the session: section 1 prints it as the
 * lower bound of that approach on the event loop, next to Node's stream echo and to the session itself.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { FrameReader, encodeFrame } from '../src/protocol/frame.js';
import { EV_DATA, EV_DRAINED, type SocketAddon } from '../src/transport/session-io.js';
import { listenFresh } from './bench-server.js';

/** The echo server: each frame read is answered with the same frame. */
export async function startPolledEchoServer(addon: SocketAddon, transport: 'unix' | 'tcp', sockPath: string): Promise<{ address: string; stop: () => Promise<void> }> {
  const conns = new Map<Socket, object>();
  const end = (sock: Socket): void => {
    const h = conns.get(sock);
    if (h !== undefined) addon.close(h);
    conns.delete(sock);
    sock.destroy();
  };
  const server: Server = createServer({ pauseOnConnect: true, noDelay: true }, (sock) => {
    const handle = (sock as unknown as { _handle?: { fd?: number; reading?: boolean; readStop?: () => number } })._handle;
    if (typeof handle?.fd !== 'number' || handle.fd < 0 || handle.readStop === undefined) return void sock.destroy();
    handle.reading = false;
    handle.readStop();
    const input = new ArrayBuffer(64 * 1024);
    const reader = new FrameReader();
    let watched: object | undefined;
    watched = addon.adopt(handle.fd, input, (kind, n) => {
      if (kind === EV_DRAINED) return;
      if (kind !== EV_DATA) return end(sock);
      const frames = reader.push(Buffer.from(input, 0, n)).map((body) => encodeFrame(body));
      // The client waits for each answer: a send the kernel does not take whole ends the connection (a bench row).
      if (frames.length > 0 && addon.send(watched!, Buffer.concat(frames)) !== 1) end(sock);
    });
    conns.set(sock, watched);
  });
  const address = await listenFresh(server, transport, sockPath);
  const stop = (): Promise<void> => {
    for (const sock of [...conns.keys()]) end(sock);
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { address, stop };
}
