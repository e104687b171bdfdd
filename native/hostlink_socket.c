/*
 * The host's side of a VM's socket, read and written on Node's own event loop without Node's stream layer
 * (src/transport/polled-socket.ts). A host call is a few dozen bytes each way; through net.Socket each read and
 * each write also goes through a libuv stream request, its JavaScript objects and callbacks, which measured as
 * about a fifth of the host's round trip and of its CPU per request. Here libuv's uv_poll watches the socket, a
 * readable socket is read with one recv() into a buffer JavaScript owns, and one call into JavaScript delivers
 * the byte count; answers leave with one non-blocking send().
 *
 * Descriptor ownership: adopt() works on its own duplicate of the socket's descriptor (F_DUPFD_CLOEXEC), which
 * only close() closes, after the watcher has stopped. So the descriptor this addon polls and writes can never be
 * a number that something else closed and reused; closing the original (net.Socket's) is its owner's business
 * and only ends the connection once both are closed.
 *
 * counts() reports the bytes read and the bytes of a write still waiting, for the session's bounds tests.
 *
 * Events to JavaScript, onEvent(kind, n): 1 data (n bytes at the start of the read buffer, valid until the call
 * returns), 2 end of stream, 3 error (n = -errno), 4 drained (a write that had to wait has been sent whole).
 * Nothing is delivered after close().
 */
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { EV_DATA = 1, EV_END = 2, EV_ERROR = 3, EV_DRAINED = 4 };

typedef struct {
  uv_poll_t poll; /* first: the uv_handle_t* libuv hands back is this struct */
  napi_env env;
  napi_ref on_event, read_buffer, pending;
  napi_async_context async;
  char *rdata;
  size_t rcap;
  const char *wdata; /* the unsent rest of a write that had to wait (pending holds its buffer) */
  size_t wleft;
  double bytes_read; /* since adopt(): what counts() reports */
  int fd;
  bool reading, closed, eof;
} sock_t;

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "EINVAL", msg);
  return NULL;
}

static napi_value int_value(napi_env env, int v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static void on_poll(uv_poll_t *p, int status, int events);

/* Watches for what is wanted now: readable while reading and not at end of stream, writable while a write waits. */
static void update_events(sock_t *s) {
  if (s->closed) return;
  int events = (s->reading && !s->eof ? UV_READABLE : 0) | (s->wleft > 0 ? UV_WRITABLE : 0);
  if (events == 0) uv_poll_stop(&s->poll);
  else uv_poll_start(&s->poll, events, on_poll);
}

static void release_pending(sock_t *s) {
  if (s->pending != NULL) {
    napi_delete_reference(s->env, s->pending);
    s->pending = NULL;
  }
  s->wdata = NULL;
  s->wleft = 0;
}

static void emit(sock_t *s, int kind, int n) {
  if (s->closed) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, argv[2], result;
  napi_get_reference_value(env, s->on_event, &cb);
  napi_get_global(env, &recv); /* make_callback wants an object as the receiver */
  argv[0] = int_value(env, kind);
  argv[1] = int_value(env, n);
  /* make_callback, not call_function: the microtasks queued by the callback run after it, as after Node's own. */
  napi_make_callback(env, s->async, recv, cb, 2, argv, &result);
  napi_close_handle_scope(env, scope);
}

/* Sends what it can of the pending write; 1 when it is all gone, 0 when the socket is full, -errno on failure. */
static int send_some(sock_t *s) {
  while (s->wleft > 0) {
    ssize_t n = send(s->fd, s->wdata, s->wleft, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -errno;
    }
    s->wdata += n;
    s->wleft -= (size_t)n;
  }
  return 1;
}

static void on_poll(uv_poll_t *p, int status, int events) {
  sock_t *s = (sock_t *)p;
  if (s->closed) return;
  if (status < 0) {
    emit(s, EV_ERROR, status);
    return;
  }
  if ((events & UV_WRITABLE) && s->wleft > 0) {
    int r = send_some(s);
    if (r < 0) {
      release_pending(s);
      emit(s, EV_ERROR, r);
      return;
    }
    if (r == 1) {
      release_pending(s);
      update_events(s);
      emit(s, EV_DRAINED, 0);
      if (s->closed) return;
    }
  }
  if ((events & (UV_READABLE | UV_DISCONNECT)) && s->reading && !s->eof) {
    ssize_t n;
    do n = recv(s->fd, s->rdata, s->rcap, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
      s->bytes_read += (double)n;
      emit(s, EV_DATA, (int)n);
    }
    else if (n == 0) {
      s->eof = true;
      update_events(s);
      emit(s, EV_END, 0);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) emit(s, EV_ERROR, -errno);
  }
}

static sock_t *unwrap(napi_env env, napi_value handle) {
  sock_t *s = NULL;
  if (napi_unwrap(env, handle, (void **)&s) != napi_ok || s == NULL) {
    throw_type(env, "not a polled socket handle");
    return NULL;
  }
  return s;
}

/* The socket a call is about (its first argument) and its arguments in argv[0..n); NULL with an exception if none. */
static sock_t *sock_args(napi_env env, napi_callback_info info, napi_value *argv, size_t n) {
  size_t argc = n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return unwrap(env, argv[0]);
}

static void on_closed(uv_handle_t *h) {
  sock_t *s = (sock_t *)h;
  close(s->fd);
  free(s);
}

/* Stops the watcher, drops the references and closes the duplicate once libuv is done with it. Idempotent. */
static void close_sock(sock_t *s) {
  if (s->closed) return;
  s->closed = true;
  uv_poll_stop(&s->poll);
  release_pending(s);
  napi_delete_reference(s->env, s->on_event);
  napi_delete_reference(s->env, s->read_buffer);
  napi_async_destroy(s->env, s->async);
  uv_close((uv_handle_t *)&s->poll, on_closed);
}

/* The handle object was collected without close(): close now (a socket must not outlive every reference to it). */
static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  close_sock((sock_t *)data);
}

/* adopt(fd, readBuffer: ArrayBuffer, onEvent(kind, n)) -> handle. Reading starts at once. */
static napi_value adopt(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], handle, name;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return throw_type(env, "adopt(fd, readBuffer, onEvent)");
  int32_t fd;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return throw_type(env, "adopt: fd must be a descriptor number");
  bool is_ab;
  void *rdata;
  size_t rcap;
  if (napi_is_arraybuffer(env, argv[1], &is_ab) != napi_ok || !is_ab) return throw_type(env, "adopt: readBuffer must be an ArrayBuffer");
  napi_get_arraybuffer_info(env, argv[1], &rdata, &rcap);
  if (rcap == 0) return throw_type(env, "adopt: readBuffer is empty");
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  if (t != napi_function) return throw_type(env, "adopt: onEvent must be a function");

  int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (own < 0) {
    char msg[96];
    snprintf(msg, sizeof msg, "cannot duplicate the socket's descriptor: %s", strerror(errno));
    napi_throw_error(env, "EIO", msg);
    return NULL;
  }
  sock_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(own);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  s->env = env;
  s->fd = own;
  s->rdata = rdata;
  s->rcap = rcap;
  s->reading = true;
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  int r = uv_poll_init_socket(loop, &s->poll, own);
  if (r != 0) {
    close(own);
    free(s);
  } else if ((r = uv_poll_start(&s->poll, UV_READABLE, on_poll)) != 0) {
    s->closed = true;
    uv_close((uv_handle_t *)&s->poll, on_closed); /* initialized: libuv must let go of it before it is freed */
  }
  if (r != 0) {
    char msg[96];
    snprintf(msg, sizeof msg, "cannot watch the socket: %s", uv_strerror(r));
    napi_throw_error(env, "EIO", msg);
    return NULL;
  }
  napi_create_object(env, &handle);
  napi_wrap(env, handle, s, finalize, NULL, NULL);
  napi_create_reference(env, argv[2], 1, &s->on_event);
  napi_create_reference(env, argv[1], 1, &s->read_buffer);
  napi_create_string_utf8(env, "hostlink.socket", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, handle, name, &s->async);
  return handle;
}

/* reading(handle, on): starts or stops reading (writes go on). */
static napi_value set_reading(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  sock_t *s = sock_args(env, info, argv, 2);
  if (s == NULL) return NULL;
  bool on;
  if (napi_get_value_bool(env, argv[1], &on) != napi_ok) return throw_type(env, "reading(handle, on): on must be a boolean");
  if (s->closed || s->reading == on) return NULL;
  s->reading = on;
  update_events(s);
  return NULL;
}

/*
 * send(handle, bytes: Uint8Array) -> 1 when the kernel took it all, 0 when the rest waits for the socket to drain
 * (the buffer is held until then and `drained` follows), -errno on failure. One write at a time: -EBUSY while
 * one waits.
 */
static napi_value do_send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  sock_t *s = sock_args(env, info, argv, 2);
  if (s == NULL) return NULL;
  bool is;
  napi_typedarray_type type;
  size_t len, off;
  void *data;
  napi_value ab;
  if (napi_is_typedarray(env, argv[1], &is) != napi_ok || !is) return throw_type(env, "send: expected a Uint8Array");
  napi_get_typedarray_info(env, argv[1], &type, &len, &data, &ab, &off);
  if (type != napi_uint8_array) return throw_type(env, "send: expected a Uint8Array");
  if (s->closed) return int_value(env, -EBADF);
  if (s->wleft > 0) return int_value(env, -EBUSY);
  s->wdata = data;
  s->wleft = len;
  int r = send_some(s);
  if (r < 0) {
    s->wdata = NULL;
    s->wleft = 0;
    return int_value(env, r);
  }
  if (r == 1) return int_value(env, 1);
  napi_create_reference(env, argv[1], 1, &s->pending);
  update_events(s);
  return int_value(env, 0);
}

/* shutdownWrite(handle) -> 0 or -errno: no more bytes will be sent (the peer reads end of stream after them). */
static napi_value shutdown_write(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  sock_t *s = sock_args(env, info, argv, 1);
  if (s == NULL) return NULL;
  if (s->closed) return int_value(env, -EBADF);
  return int_value(env, shutdown(s->fd, SHUT_WR) == 0 ? 0 : -errno);
}

/* counts(handle) -> [bytes read since adopt(), bytes of a write still waiting to be sent] */
static napi_value counts(napi_env env, napi_callback_info info) {
  napi_value argv[1], out, v;
  sock_t *s = sock_args(env, info, argv, 1);
  if (s == NULL) return NULL;
  napi_create_array_with_length(env, 2, &out);
  napi_create_double(env, s->bytes_read, &v);
  napi_set_element(env, out, 0, v);
  napi_create_double(env, (double)s->wleft, &v);
  napi_set_element(env, out, 1, v);
  return out;
}

static napi_value do_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  sock_t *s = NULL;
  /* Unwrapped for good: the finalizer will not run for a socket already closed (libuv frees it). */
  if (napi_remove_wrap(env, argv[0], (void **)&s) != napi_ok || s == NULL) return NULL;
  close_sock(s);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"adopt", NULL, adopt, NULL, NULL, NULL, napi_default, NULL},
    {"reading", NULL, set_reading, NULL, NULL, NULL, napi_default, NULL},
    {"send", NULL, do_send, NULL, NULL, NULL, napi_default, NULL},
    {"shutdownWrite", NULL, shutdown_write, NULL, NULL, NULL, napi_default, NULL},
    {"counts", NULL, counts, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, do_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
