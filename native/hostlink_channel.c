/*
 * Blocking socket primitives for the VM's host channel. A WebAssembly import is synchronous, so the VM
 * must block in the kernel until the host answers; this addon does exactly that and nothing more.
 * Framing lives in TypeScript (src/transport/blocking-channel.ts). Errors are thrown as JS Errors whose
 * `code` is the errno name (ECONNRESET, ETIMEDOUT, ...) so TypeScript can map them to HostlinkErrors.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* Node ignores SIGPIPE anyway; this only matters for other embedders */
#endif

static const char *errno_name(int e) {
  switch (e) {
    case ECONNRESET: return "ECONNRESET";   case EPIPE: return "EPIPE";
    case ECONNREFUSED: return "ECONNREFUSED"; case ENOENT: return "ENOENT";
    case ETIMEDOUT: return "ETIMEDOUT";     case ENOTCONN: return "ENOTCONN";
    case EACCES: return "EACCES";           case ECONNABORTED: return "ECONNABORTED";
    case EHOSTUNREACH: return "EHOSTUNREACH"; case ENETUNREACH: return "ENETUNREACH";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL"; case ENOTSOCK: return "ENOTSOCK";
    case EBADF: return "EBADF";             case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return "EIO";
  }
}

/* Throws and returns NULL so callers can `return throw_errno(...)`. */
static napi_value throw_errno(napi_env env, const char *what, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  napi_throw_error(env, errno_name(e), msg);
  return NULL;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Waits for `events` on fd until the deadline (deadline < 0: no wait at all, the fd blocks by itself).
 * Returns 0 when ready, ETIMEDOUT, or an errno. */
static int wait_fd(int fd, short events, double deadline) {
  if (deadline < 0) return 0;
  for (;;) {
    double left = deadline - now_ms();
    if (left <= 0) return ETIMEDOUT;
    struct pollfd p = { fd, events, 0 };
    int r = poll(&p, 1, (int)(left + 0.999));
    if (r > 0) return 0; /* readable, writable, HUP or ERR: the next syscall reports which */
    if (r < 0 && errno != EINTR) return errno;
  }
}

/* Waits until fd is readable (or hung up, or in error) or the deadline passes (deadline < 0: no deadline).
 * Returns 0 when ready, ETIMEDOUT, or an errno. */
static int wait_readable(int fd, double deadline) {
  if (deadline >= 0) return wait_fd(fd, POLLIN, deadline);
  for (;;) {
    struct pollfd p = { fd, POLLIN, 0 };
    int r = poll(&p, 1, -1);
    if (r > 0) return 0;
    if (r < 0 && errno != EINTR) return errno;
  }
}

static double deadline_from(double timeout_ms) { return timeout_ms < 0 ? -1 : now_ms() + timeout_ms; }

/* Connects a fresh blocking, close-on-exec socket; non-blocking only while the connect is pending. */
static int connect_fd(const struct sockaddr *sa, socklen_t len, double timeout_ms, int *err) {
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) { *err = errno; return -1; }
  int e = 0;
  if (connect(fd, sa, len) < 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) e = errno;
    else if ((e = wait_fd(fd, POLLOUT, timeout_ms < 0 ? now_ms() + 30000 : deadline_from(timeout_ms))) == 0) {
      socklen_t sl = sizeof e;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0) e = errno;
    }
  }
  if (e == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) e = errno;
  if (e != 0) { close(fd); *err = e; return -1; }
  if (sa->sa_family != AF_UNIX) { int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }
  return fd;
}

static napi_value get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return NULL;
}

static napi_value num(napi_env env, double v) { napi_value r; napi_create_double(env, v, &r); return r; }
static double arg_num(napi_env env, napi_value v) { double d = 0; napi_get_value_double(env, v, &d); return d; }

/* connectUnix(path, timeoutMs) -> fd */
static napi_value connect_unix(napi_env env, napi_callback_info info) {
  napi_value argv[2]; get_args(env, info, 2, argv);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], sa.sun_path, sizeof sa.sun_path, &len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "path must be a string");
    return NULL;
  }
  if (len >= sizeof sa.sun_path - 1) return throw_errno(env, "connect", ENAMETOOLONG);
  int err = 0, fd = connect_fd((struct sockaddr *)&sa, sizeof sa, arg_num(env, argv[1]), &err);
  return fd < 0 ? throw_errno(env, "connect", err) : num(env, fd);
}

/* connectTcp(host, port, timeoutMs) -> fd; host is numeric or a name (getaddrinfo, e.g. "localhost"). */
static napi_value connect_tcp(napi_env env, napi_callback_info info) {
  napi_value argv[3]; get_args(env, info, 3, argv);
  char host[256], port[16];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "host must be a string");
    return NULL;
  }
  snprintf(port, sizeof port, "%u", (unsigned)arg_num(env, argv[1]));
  struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *res;
  int g = getaddrinfo(host, port, &hints, &res);
  if (g != 0) {
    char msg[300];
    snprintf(msg, sizeof msg, "getaddrinfo %s: %s", host, gai_strerror(g));
    napi_throw_error(env, "ENOTFOUND", msg);
    return NULL;
  }
  int err = ECONNREFUSED, fd = -1;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next)
    fd = connect_fd(a->ai_addr, a->ai_addrlen, arg_num(env, argv[2]), &err);
  freeaddrinfo(res);
  return fd < 0 ? throw_errno(env, "connect", err) : num(env, fd);
}

static int get_bytes(napi_env env, napi_value v, unsigned char **data, size_t *len) {
  napi_typedarray_type t;
  void *p;
  if (napi_get_typedarray_info(env, v, &t, len, &p, NULL, NULL) != napi_ok || t != napi_uint8_array) {
    napi_throw_type_error(env, "EINVAL", "expected a Uint8Array");
    return -1;
  }
  *data = p;
  return 0;
}

/* write(fd, bytes, offset, length, timeoutMs): writes all of bytes[offset..offset+length). */
static napi_value write_all(napi_env env, napi_callback_info info) {
  napi_value argv[5]; get_args(env, info, 5, argv);
  int fd = (int)arg_num(env, argv[0]);
  unsigned char *p; size_t cap;
  if (get_bytes(env, argv[1], &p, &cap) < 0) return NULL;
  size_t off = (size_t)arg_num(env, argv[2]), len = (size_t)arg_num(env, argv[3]);
  if (off > cap || len > cap - off) {
    napi_throw_range_error(env, "ERANGE", "write range outside the buffer");
    return NULL;
  }
  p += off;
  double deadline = deadline_from(arg_num(env, argv[4]));
  size_t done = 0;
  while (done < len) {
    int e = wait_fd(fd, POLLOUT, deadline);
    if (e) return throw_errno(env, "write", e);
    ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);
    if (n >= 0) done += (size_t)n;
    else if (errno != EINTR && errno != EAGAIN) return throw_errno(env, "write", errno);
  }
  return NULL;
}

/* read(fd, buf, offset, length, minBytes, timeoutMs) -> bytes read into buf[offset..offset+length).
 * Blocks until at least minBytes arrived; returns fewer only at end of stream. */
static napi_value read_min(napi_env env, napi_callback_info info) {
  napi_value argv[6]; get_args(env, info, 6, argv);
  int fd = (int)arg_num(env, argv[0]);
  unsigned char *p; size_t cap;
  if (get_bytes(env, argv[1], &p, &cap) < 0) return NULL;
  size_t off = (size_t)arg_num(env, argv[2]), len = (size_t)arg_num(env, argv[3]), min = (size_t)arg_num(env, argv[4]);
  if (off > cap || len > cap - off || min > len) {
    napi_throw_range_error(env, "ERANGE", "read range outside the buffer");
    return NULL;
  }
  double deadline = deadline_from(arg_num(env, argv[5]));
  size_t got = 0;
  while (got < min || (got == 0 && len > 0)) {
    /* Never sleep inside recv: a task asleep in a unix socket's recv is woken by every wake-up of that socket,
     * including the "space to write again" one the host's kernel sends each time the host reads this VM's
     * request, so the VM woke once per request for nothing (a context switch here, a cross-CPU wake-up on the
     * host's side). poll() sleeps only until the socket is readable. */
    ssize_t n = recv(fd, p + off + got, len - got, MSG_DONTWAIT);
    if (n > 0) got += (size_t)n;
    else if (n == 0) break; /* end of stream */
    else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int e = wait_readable(fd, deadline);
      if (e) return throw_errno(env, "read", e);
    } else if (errno != EINTR) return throw_errno(env, "read", errno);
  }
  return num(env, (double)got);
}

/* close(fd) */
static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1]; get_args(env, info, 1, argv);
  close((int)arg_num(env, argv[0]));
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "connectUnix", NULL, connect_unix, NULL, NULL, NULL, napi_enumerable, NULL },
    { "connectTcp", NULL, connect_tcp, NULL, NULL, NULL, napi_enumerable, NULL },
    { "write", NULL, write_all, NULL, NULL, NULL, napi_enumerable, NULL },
    { "read", NULL, read_min, NULL, NULL, NULL, napi_enumerable, NULL },
    { "close", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
