/**
 * PROTOTYPE (bench only): a Node echo server on the event loop whose socket is polled and read by a small addon
 * instead of Node's stream machinery. The addon watches the accepted socket's descriptor with libuv's `uv_poll`
 * on Node's own loop, reads what is ready with one `recv` into a buffer JavaScript owns, calls back into
 * JavaScript (`napi_make_callback`, which runs the microtasks as Node's own callbacks do), and writes an answer
 * with one non-blocking `send`. The frames are parsed in JavaScript by the same FrameReader the session uses.
 *
 * What it measures: how much of the event-loop session's round trip above the C floor is Node's stream layer
 * (the read and write requests, their JavaScript objects and callbacks) rather than the event loop itself, i.e.
 * whether the session could reach the floor without leaving the main thread. Compiled at bench time with `cc`
 * against the running Node's headers; without them the row is left out with a note.
 *
 * The host's sessions now run on the product's version of this (native/hostlink_socket.c, transport/session-io.ts:
 * its own descriptor, partial writes, back-pressure); this bare echo stays as the lower bound of the approach.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { FrameReader, encodeFrame } from '../src/protocol/frame.js';
import { listenFresh } from './bench-server.js';

const ADDON_C = String.raw`
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

typedef struct { uv_poll_t poll; napi_env env; napi_ref cb, buf, self; napi_async_context ctx; char *data; size_t cap; int fd; } watch_t;

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)events;
  watch_t *w = (watch_t *)p;
  ssize_t n = status < 0 ? status : recv(w->fd, w->data, w->cap, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  int arg_n = n < 0 ? -errno : (int)n;
  if (n <= 0) uv_poll_stop(p);
  napi_handle_scope scope;
  napi_open_handle_scope(w->env, &scope);
  napi_value cb, self, arg, result;
  napi_get_reference_value(w->env, w->cb, &cb);
  napi_get_reference_value(w->env, w->self, &self);
  napi_create_int32(w->env, arg_n, &arg);
  napi_make_callback(w->env, w->ctx, self, cb, 1, &arg, &result);
  napi_close_handle_scope(w->env, scope);
}

static void on_closed(uv_handle_t *h) { free(h); }

/* watch(fd, arrayBuffer, onRead(n)) -> handle object (n > 0: bytes read into the buffer; 0: end; < 0: -errno) */
static napi_value watch(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value a[3], self, name;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  watch_t *w = calloc(1, sizeof *w);
  void *data;
  napi_get_value_int32(env, a[0], &w->fd);
  napi_get_arraybuffer_info(env, a[1], &data, &w->cap);
  w->data = data; w->env = env;
  napi_create_object(env, &self);
  napi_wrap(env, self, w, NULL, NULL, NULL);
  napi_create_reference(env, a[1], 1, &w->buf);
  napi_create_reference(env, a[2], 1, &w->cb);
  napi_create_reference(env, self, 1, &w->self);
  napi_create_string_utf8(env, "hostlink-bench-poll", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &w->ctx);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  if (uv_poll_init(loop, &w->poll, w->fd) || uv_poll_start(&w->poll, UV_READABLE, on_poll)) {
    napi_throw_error(env, NULL, "uv_poll failed");
    return NULL;
  }
  return self;
}

/* stop(handle): no more callbacks; the watcher is freed once libuv has closed it (the descriptor is not closed). */
static napi_value stop(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value a[1];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  watch_t *w;
  if (napi_remove_wrap(env, a[0], (void **)&w) != napi_ok || w == NULL) return NULL;
  uv_poll_stop(&w->poll);
  napi_delete_reference(env, w->cb);
  napi_delete_reference(env, w->buf);
  napi_delete_reference(env, w->self);
  napi_async_destroy(env, w->ctx);
  uv_close((uv_handle_t *)&w->poll, on_closed);
  return NULL;
}

/* send(fd, arrayBuffer, length) -> bytes written or -errno, never blocks */
static napi_value do_send(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value a[3], r;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  int fd, len; void *data; size_t cap;
  napi_get_value_int32(env, a[0], &fd);
  napi_get_arraybuffer_info(env, a[1], &data, &cap);
  napi_get_value_int32(env, a[2], &len);
  ssize_t n = (size_t)len <= cap ? send(fd, data, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL) : -1;
  napi_create_int32(env, n < 0 ? -errno : (int)n, &r);
  return r;
}

NAPI_MODULE_INIT() {
  napi_value f;
  napi_create_function(env, "watch", NAPI_AUTO_LENGTH, watch, NULL, &f); napi_set_named_property(env, exports, "watch", f);
  napi_create_function(env, "stop", NAPI_AUTO_LENGTH, stop, NULL, &f); napi_set_named_property(env, exports, "stop", f);
  napi_create_function(env, "send", NAPI_AUTO_LENGTH, do_send, NULL, &f); napi_set_named_property(env, exports, "send", f);
  return exports;
}
`;

interface PollAddon {
  watch(fd: number, buffer: ArrayBuffer, onRead: (n: number) => void): object;
  stop(handle: object): void;
  send(fd: number, buffer: ArrayBuffer, length: number): number;
}

/** Builds the addon in `dir`; a reason instead when there is no compiler or no Node headers. */
export function buildPollAddon(dir: string): PollAddon | string {
  const include = join(dirname(process.execPath), '..', 'include', 'node');
  if (!existsSync(join(include, 'node_api.h')) || !existsSync(join(include, 'uv.h'))) return `no Node headers in ${include}`;
  const src = join(dir, 'poll_echo.c');
  const out = join(dir, 'poll_echo.node');
  writeFileSync(src, ADDON_C);
  const r = spawnSync('cc', ['-O2', '-shared', '-fPIC', '-DNAPI_VERSION=8', `-I${include}`, '-o', out, src], { encoding: 'utf8' });
  if (r.status !== 0) return `cc poll_echo.c failed: ${r.stderr.trim().split('\n')[0]}`;
  const mod = { exports: {} as PollAddon };
  process.dlopen(mod, out);
  return mod.exports;
}

/** The echo server: each frame read is answered with the same frame. */
export async function startPolledEchoServer(addon: PollAddon, transport: 'unix' | 'tcp', sockPath: string): Promise<{ address: string; stop: () => Promise<void> }> {
  const conns = new Map<Socket, object>();
  const server: Server = createServer({ pauseOnConnect: true, noDelay: true }, (sock) => {
    const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) {
      sock.destroy();
      return;
    }
    const input = new ArrayBuffer(64 * 1024);
    const output = new ArrayBuffer(64 * 1024);
    const outBytes = new Uint8Array(output);
    const reader = new FrameReader();
    const end = (): void => {
      const h = conns.get(sock);
      if (h !== undefined) addon.stop(h);
      conns.delete(sock);
      sock.destroy();
    };
    const handle = addon.watch(fd, input, (n) => {
      if (n <= 0) return end();
      let at = 0;
      for (const body of reader.push(Buffer.from(input, 0, n))) {
        const frame = encodeFrame(body);
        if (at + frame.length > outBytes.length) return end();
        outBytes.set(frame, at);
        at += frame.length;
      }
      // Small answers to a client that waits for each: the socket buffer always has room; anything else ends the row.
      if (at > 0 && addon.send(fd, output, at) !== at) end();
    });
    conns.set(sock, handle);
  });
  const address = await listenFresh(server, transport, sockPath);
  const stop = (): Promise<void> => {
    for (const [sock, h] of conns) {
      addon.stop(h);
      sock.destroy();
    }
    conns.clear();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { address, stop };
}
