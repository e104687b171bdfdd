/*
 * The in-process layer of the VM's sandbox: no_new_privs, a lifeline thread that ends the VM when the host's
 * end of a descriptor closes (the host died, even while the main thread is inside a wasm loop), and a seccomp-bpf
 * allow-list installed on EVERY thread at once (SECCOMP_FILTER_FLAG_TSYNC: V8 and libuv threads already exist
 * when JavaScript can call us). The VM installs it after connecting to the host and before it receives any
 * untrusted byte (src/vm/sandbox.ts). The list was found by measurement (strace of real executions; see
 * docs/security.md) and is kept minimal:
 *   - allowed: what Node/V8 need to run already-loaded code on already-open descriptors;
 *   - EACCES: file-system and socket creation (V8 lazily reads /proc/sys/vm/overcommit_memory and copes);
 *   - kill: actions that only a compromised VM attempts (exec, fork, ptrace, namespaces, mount, uid changes);
 *   - EPERM: everything else (an unmeasured runtime path gets an error it can handle, never new power).
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define HL_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define HL_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#define HL_NO_SECCOMP 1
#endif
#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif

#define MAX_INSNS 1024
static struct sock_filter prog[MAX_INSNS];
static unsigned n_insns;
static int overflow;

static void emit(struct sock_filter f) {
  if (n_insns < MAX_INSNS) prog[n_insns++] = f;
  else overflow = 1;
}
static void load_nr(void) { emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))); }
static void load_arg_lo(int i) { emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args) + 8 * i)); }
static void load_arg_hi(int i) { emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args) + 8 * i + 4)); }
static void ret(unsigned action) { emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action)); }
/* if (A == k) return action; */
static void when(unsigned k, unsigned action) {
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1));
  ret(action);
}

#define ALLOW SECCOMP_RET_ALLOW
#define KILL SECCOMP_RET_KILL_PROCESS
#define DENY(e) (SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))

/* The catalogue, also reported to JavaScript (doctor, self-test, docs). A negative nr is absent on this arch. */
struct rule { const char *name; long nr; unsigned action; };
#define R(name, action) { #name, __NR_##name, action }

static const struct rule rules[] = {
  /* allowed: measured after connect over real executions (pool and one-shot, traps, deep recursion, logs) */
  R(read, ALLOW), R(write, ALLOW), R(close, ALLOW), R(fstat, ALLOW), R(lseek, ALLOW),
  R(readv, ALLOW), R(writev, ALLOW), R(pread64, ALLOW), R(pwrite64, ALLOW),
  R(brk, ALLOW), R(mmap, ALLOW), R(munmap, ALLOW), R(mprotect, ALLOW), R(mremap, ALLOW), R(madvise, ALLOW),
  R(pkey_mprotect, ALLOW), R(pkey_alloc, ALLOW), R(pkey_free, ALLOW), R(membarrier, ALLOW),
  R(futex, ALLOW), R(sched_yield, ALLOW), R(sched_getaffinity, ALLOW), R(set_robust_list, ALLOW), R(rseq, ALLOW),
  R(getpid, ALLOW), R(gettid, ALLOW), R(getppid, ALLOW), R(getuid, ALLOW), R(geteuid, ALLOW), R(getgid, ALLOW),
  R(getegid, ALLOW), R(getrusage, ALLOW), R(getrlimit, ALLOW),
  R(rt_sigaction, ALLOW), R(rt_sigprocmask, ALLOW), R(rt_sigreturn, ALLOW), R(sigaltstack, ALLOW),
  R(restart_syscall, ALLOW), R(exit, ALLOW), R(exit_group, ALLOW),
  R(epoll_ctl, ALLOW), R(epoll_pwait, ALLOW),
#ifdef __NR_epoll_wait
  R(epoll_wait, ALLOW),
#endif
#ifdef __NR_poll
  R(poll, ALLOW),
#endif
  R(ppoll, ALLOW), R(sendto, ALLOW), R(recvfrom, ALLOW), R(getsockopt, ALLOW), R(getsockname, ALLOW),
  R(getpeername, ALLOW), R(shutdown, ALLOW),
  R(clock_gettime, ALLOW), R(clock_getres, ALLOW), R(clock_nanosleep, ALLOW), R(nanosleep, ALLOW),
  R(gettimeofday, ALLOW), R(getrandom, ALLOW),
  /* file system and new sockets: EACCES, which V8 and libuv handle */
#ifdef __NR_open
  R(open, DENY(EACCES)), R(creat, DENY(EACCES)), R(stat, DENY(EACCES)), R(lstat, DENY(EACCES)),
  R(access, DENY(EACCES)), R(readlink, DENY(EACCES)), R(mkdir, DENY(EACCES)), R(unlink, DENY(EACCES)),
  R(rename, DENY(EACCES)), R(link, DENY(EACCES)), R(symlink, DENY(EACCES)), R(chmod, DENY(EACCES)),
  R(chown, DENY(EACCES)), R(rmdir, DENY(EACCES)),
#endif
  R(openat, DENY(EACCES)), R(openat2, DENY(EACCES)), R(newfstatat, DENY(EACCES)), R(statx, DENY(EACCES)),
  R(faccessat, DENY(EACCES)), R(faccessat2, DENY(EACCES)), R(readlinkat, DENY(EACCES)), R(mkdirat, DENY(EACCES)),
  R(unlinkat, DENY(EACCES)), R(renameat2, DENY(EACCES)), R(linkat, DENY(EACCES)), R(symlinkat, DENY(EACCES)),
  R(fchmodat, DENY(EACCES)), R(fchownat, DENY(EACCES)), R(truncate, DENY(EACCES)), R(getdents64, DENY(EACCES)),
  R(socket, DENY(EACCES)), R(socketpair, DENY(EACCES)), R(connect, DENY(EACCES)), R(bind, DENY(EACCES)),
  R(listen, DENY(EACCES)), R(accept, DENY(EACCES)), R(accept4, DENY(EACCES)), R(sendmsg, DENY(EACCES)),
  R(recvmsg, DENY(EACCES)),
  /* limits and signals to others: EPERM */
  R(setrlimit, DENY(EPERM)), R(kill, DENY(EPERM)),
  /* only a compromised VM does these: kill the whole process */
  R(execve, KILL), R(execveat, KILL), R(ptrace, KILL), R(process_vm_readv, KILL), R(process_vm_writev, KILL),
#ifdef __NR_fork
  R(fork, KILL), R(vfork, KILL),
#endif
  R(unshare, KILL), R(setns, KILL), R(mount, KILL), R(umount2, KILL), R(pivot_root, KILL), R(chroot, KILL),
  R(bpf, KILL), R(perf_event_open, KILL), R(userfaultfd, KILL), R(init_module, KILL), R(finit_module, KILL),
  R(delete_module, KILL), R(kexec_load, KILL), R(reboot, KILL), R(swapon, KILL), R(swapoff, KILL),
  R(setuid, KILL), R(setgid, KILL), R(setreuid, KILL), R(setregid, KILL), R(setresuid, KILL), R(setresgid, KILL),
  R(setgroups, KILL), R(capset, KILL), R(keyctl, KILL), R(add_key, KILL), R(request_key, KILL),
  R(io_uring_setup, KILL), R(process_madvise, KILL), R(pidfd_open, KILL), R(pidfd_getfd, KILL),
};
#define N_RULES (sizeof rules / sizeof rules[0])

/* Syscalls allowed only with particular arguments (reported with their condition). */
static const char *const conditional[] = {
  "clone (only with CLONE_THREAD: new threads, never processes; else kill)",
  "clone3 (ENOSYS, so that libc falls back to clone, whose flags a filter can see)",
  "ioctl (only FIONBIO, FIOCLEX, FIONCLEX, FIONREAD; else EPERM: no TIOCSTI on a terminal)",
  "prctl (only PR_SET_NAME, PR_GET_NAME, PR_SET_VMA; else EPERM)",
  "tgkill (only to this process; else EPERM)",
  "prlimit64 (only reading a limit; else EPERM)",
  "fcntl (only F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC; else EPERM)",
};

static void build(pid_t self) {
  n_insns = 0;
  overflow = 0;
  emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, HL_AUDIT_ARCH, 1, 0));
  ret(KILL); /* another ABI (i386 via int 0x80) sees different numbers: nothing is allowed there */
  load_nr();
#if defined(__x86_64__)
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000U /* __X32_SYSCALL_BIT */, 0, 1));
  ret(KILL); /* x32 is allowed nothing */
#endif
  for (unsigned i = 0; i < N_RULES; i++) when((unsigned)rules[i].nr, rules[i].action);

  /* clone: threads only. */
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4));
  load_arg_lo(0);
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1));
  ret(ALLOW);
  ret(KILL);
  when(__NR_clone3, DENY(ENOSYS));
  /* ioctl: the few requests libuv makes on its own descriptors. */
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 10));
  load_arg_lo(1);
  when(FIONBIO, ALLOW);
  when(FIOCLEX, ALLOW);
  when(FIONCLEX, ALLOW);
  when(FIONREAD, ALLOW);
  ret(DENY(EPERM));
  /* prctl: thread and mapping names. */
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_prctl, 0, 8));
  load_arg_lo(0);
  when(PR_SET_NAME, ALLOW);
  when(PR_GET_NAME, ALLOW);
  when(PR_SET_VMA, ALLOW);
  ret(DENY(EPERM));
  /* tgkill: V8 and libuv signal their own threads; nobody else. */
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_tgkill, 0, 4));
  load_arg_lo(0);
  when((unsigned)self, ALLOW);
  ret(DENY(EPERM));
  /* prlimit64(pid, resource, new, old): reading is fine, setting is not. */
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_prlimit64, 0, 7));
  load_arg_lo(2);
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3));
  load_arg_hi(2);
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1));
  ret(ALLOW);
  ret(DENY(EPERM));
  /* fcntl: descriptor flags only (no F_SETOWN/F_SETSIG: no signals aimed at other processes). */
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fcntl, 0, 12));
  load_arg_lo(1);
  when(F_GETFD, ALLOW);
  when(F_SETFD, ALLOW);
  when(F_GETFL, ALLOW);
  when(F_SETFL, ALLOW);
  when(F_DUPFD_CLOEXEC, ALLOW);
  ret(DENY(EPERM));
  ret(DENY(EPERM)); /* everything not listed */
}

/* ---- lifeline ---- */

static int lifeline_fd = -1;
static void *lifeline_main(void *arg) {
  (void)arg;
  for (;;) {
    struct pollfd p = { lifeline_fd, 0, 0 }; /* only hang-up and error, which are always reported */
    int r = poll(&p, 1, -1);
    if (r > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) _exit(4); /* the host is gone: VM_EXIT.hostLost */
  }
  return NULL;
}

/* ---- N-API ---- */

static napi_value throw_errno(napi_env env, const char *what, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  napi_throw_error(env, "ESANDBOX", msg);
  return NULL;
}

static napi_value str(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

/* install(lifelineFd): no_new_privs, optional lifeline thread, then the filter on every thread. */
static napi_value install(napi_env env, napi_callback_info info) {
#ifdef HL_NO_SECCOMP
  (void)info;
  return throw_errno(env, "seccomp filter (this CPU architecture is not supported)", ENOSYS);
#else
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  if (argc >= 1) napi_get_value_int32(env, argv[0], &fd);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return throw_errno(env, "prctl(PR_SET_NO_NEW_PRIVS)", errno);
  if (fd >= 0 && lifeline_fd < 0) {
    lifeline_fd = fd;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 * 1024);
    int e = pthread_create(&t, &a, lifeline_main, NULL);
    pthread_attr_destroy(&a);
    if (e != 0) return throw_errno(env, "lifeline thread", e);
  }
  build(getpid());
  if (overflow) return throw_errno(env, "seccomp filter too long", E2BIG);
  struct sock_fprog fp = { (unsigned short)n_insns, prog };
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fp);
  if (r != 0) return throw_errno(env, r > 0 ? "seccomp TSYNC (a thread could not be synchronised)" : "seccomp", r > 0 ? EAGAIN : errno);
  return NULL;
#endif
}

/* rules(): { allow: [...], eacces: [...], eperm: [...], kill: [...], conditional: [...] } for this arch. */
static napi_value list_rules(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out, lists[4];
  const char *keys[4] = { "allow", "eacces", "eperm", "kill" };
  napi_create_object(env, &out);
  uint32_t counts[4] = { 0, 0, 0, 0 };
  for (int k = 0; k < 4; k++) napi_create_array(env, &lists[k]);
  for (unsigned i = 0; i < N_RULES; i++) {
    unsigned a = rules[i].action;
    int k = a == ALLOW ? 0 : a == DENY(EACCES) ? 1 : a == DENY(EPERM) ? 2 : 3;
    napi_set_element(env, lists[k], counts[k]++, str(env, rules[i].name));
  }
  for (int k = 0; k < 4; k++) napi_set_named_property(env, out, keys[k], lists[k]);
  napi_value cond;
  napi_create_array(env, &cond);
  for (uint32_t i = 0; i < sizeof conditional / sizeof conditional[0]; i++) napi_set_element(env, cond, i, str(env, conditional[i]));
  napi_set_named_property(env, out, "conditional", cond);
  napi_set_named_property(env, out, "otherwise", str(env, "EPERM"));
  return out;
}

/*
 * attempt(name, pid): makes one raw system call that JavaScript has no API for, for `hostlink vm
 * --sandbox-self-test`. Returns 0 when the call succeeded (the sandbox did NOT stop it) or the errno; a call
 * the filter kills never returns.
 */
static napi_value attempt(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[32] = { 0 };
  size_t len = 0;
  int32_t pid = 0;
  if (argc >= 1) napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len);
  if (argc >= 2) napi_get_value_int32(env, argv[1], &pid);
  long r;
  errno = 0;
  // PTRACE_SEIZE makes the same permission check as PTRACE_ATTACH without stopping the target: with the sandbox
  // off and the VM as root the attach succeeds, and an attach would have left the host (the self-test) stopped.
  if (!strcmp(name, "ptrace")) {
    r = ptrace(PTRACE_SEIZE, (pid_t)pid, NULL, NULL);
    if (r == 0) {
      // Detach at once: interrupt (a seized tracee is detached only from a stop), wait for the stop, detach.
      ptrace(PTRACE_INTERRUPT, (pid_t)pid, NULL, NULL);
      waitpid((pid_t)pid, NULL, __WALL);
      ptrace(PTRACE_DETACH, (pid_t)pid, NULL, NULL);
    }
  }
  else if (!strcmp(name, "raise_nofile")) {
    struct rlimit l;
    getrlimit(RLIMIT_NOFILE, &l);
    l.rlim_max = l.rlim_max + 1024;
    l.rlim_cur = l.rlim_max;
    r = syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &l, NULL);
  } else if (!strcmp(name, "setuid_root")) r = syscall(SYS_setuid, 0);
  else if (!strcmp(name, "unshare_net")) r = syscall(SYS_unshare, CLONE_NEWNET);
  else if (!strcmp(name, "fork")) {
    r = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); /* a process, not a thread */
    if (r == 0) _exit(0);
  } else if (!strcmp(name, "execve")) {
    char *const args[] = { "/bin/true", NULL };
    r = syscall(SYS_execve, "/bin/true", args, NULL);
  } else return throw_errno(env, "unknown attempt", EINVAL);
  napi_value v;
  napi_create_int32(env, r < 0 ? errno : 0, &v);
  return v;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "install", NULL, install, NULL, NULL, NULL, napi_enumerable, NULL },
    { "rules", NULL, list_rules, NULL, NULL, NULL, napi_enumerable, NULL },
    { "attempt", NULL, attempt, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
