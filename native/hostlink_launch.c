/*
 * hostlink-launch: puts a VM process into its OS sandbox before it executes Node, so that no layer depends on
 * code running inside the (later untrusted) process and nothing races V8's threads.
 *
 *   hostlink-launch --parent PID [--uid N --gid N] [--unshare net,ipc,mnt,uts,pid] [--nofile N] [--nproc N]
 *                   [--cgroup DIR/cgroup.procs]... [--probe] -- PROGRAM ARGS...
 *
 * In order: close every descriptor above stderr (the host's LMDB file is not close-on-exec), die with the
 * parent (PR_SET_PDEATHSIG, then re-check getppid() against --parent to close the fork race), join the VM's
 * cgroups (while still allowed to write there), limits, new namespaces, drop to --uid/--gid with no
 * supplementary groups, set the death signal again (a uid change clears it), no_new_privs, exec.
 *
 * With a new pid namespace the launcher forks, still privileged: the child (pid 1 of the namespace) drops its
 * privileges and becomes the VM at once, and this process stays as a tiny relay under a seccomp filter of its
 * own that only waits, forwards a stop as SIGKILL, and exits with the VM's status. There the relay joins the
 * cgroups for the VM (its pid, then its own) while the VM starts Node, because a cgroup v1 attach waits for an
 * RCU grace period (4-10 ms) that need not be spent before exec. It then writes one byte "y" to descriptor 3 of
 * the VM (named in HOSTLINK_CGROUP_READY_FD, the one descriptor the VM inherits on purpose); the VM reads it and
 * closes it before it handles anything from the host (src/vm/sandbox.ts), so it is inside every bound before
 * its first job. If a join fails the relay names the cgroup on stderr, kills the VM (which reads end-of-file if
 * it gets that far) and exits 121. Node starts no process of its own before that read, so nothing escapes.
 *
 * --probe does everything except the exec and prints the layers it installed, one per line; the host runs it
 * once to learn what this kernel allows. Exit codes: 0 probe ok, 120 bad arguments, 121 a layer failed (the
 * message names it), 122 the parent died before the death signal was armed; otherwise the VM's own status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)
#define HL_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define HL_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "hostlink-launch supports x86_64 and aarch64 only"
#endif

static void fail(const char *what, int e) {
  fprintf(stderr, "hostlink-launch: %s: %s\n", what, strerror(e));
  _exit(121);
}

static void usage(const char *why) {
  fprintf(stderr, "hostlink-launch: %s\nusage: hostlink-launch --parent PID [--uid N --gid N] [--unshare LIST] "
                  "[--nofile N] [--nproc N] [--cgroup FILE]... [--probe] -- PROGRAM ARGS...\n", why);
  _exit(120);
}

static long number(const char *s, const char *flag) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s needs a non-negative integer, got '%s'", flag, s);
    usage(msg);
  }
  return v;
}

static void close_inherited(void) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
#endif
  long max = sysconf(_SC_OPEN_MAX);
  for (long fd = 3; fd < (max > 0 ? max : 65536); fd++) close((int)fd);
}

static void set_limit(int resource, long value, const char *name) {
  if (value < 0) return;
  struct rlimit r = { (rlim_t)value, (rlim_t)value };
  if (setrlimit(resource, &r) != 0) fail(name, errno);
}

/* Moves `pid` (0: the writing process) with all its threads into the cgroup; -1 with errno when refused. */
static int join_cgroup(const char *procs, pid_t pid) {
  char text[16];
  int len = snprintf(text, sizeof text, "%d", (int)pid);
  int fd = open(procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  if (write(fd, text, (size_t)len) != len) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  close(fd);
  return 0;
}

/* No supplementary groups, the VM's gid and uid, an empty capability bounding set (irreversible). */
static void drop_privileges(long uid, long gid, int ns) {
  if (uid < 0) return;
  if (setgroups(0, NULL) != 0 && !(ns & CLONE_NEWUSER)) fail("setgroups", errno);
  if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0) fail("setgid", errno);
  /* Empty the bounding set while we may: nothing executed later can regain a capability. */
  for (int cap = 0; cap <= 63; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL) break;
  }
  if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) fail("setuid", errno);
  if (uid != 0 && setuid(0) == 0) fail("dropping root", EPERM); /* must be irreversible */
}

/* The descriptor and variable that carry the relay's word to the VM (src/vm/sandbox.ts reads them). */
#define READY_FD 3
#define READY_FD_TEXT "3"
#define READY_ENV "HOSTLINK_CGROUP_READY_FD"

static void arm_death_signal(pid_t parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("prctl(PR_SET_PDEATHSIG)", errno);
  /* The parent may have died before the signal was armed: then we were re-parented and must not run. */
  if (parent > 0 && getppid() != parent) _exit(122);
}

/* The relay only waits for the VM and forwards a stop; anything else it tries is a kill. */
static int relay_filter(void) {
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, HL_AUDIT_ARCH, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
    ALLOW(__NR_wait4), ALLOW(__NR_kill), ALLOW(__NR_rt_sigreturn), ALLOW(__NR_rt_sigaction),
    ALLOW(__NR_rt_sigprocmask), ALLOW(__NR_exit_group), ALLOW(__NR_exit), ALLOW(__NR_getpid),
    ALLOW(__NR_gettid), ALLOW(__NR_tgkill), ALLOW(__NR_restart_syscall), ALLOW(__NR_write),
#undef ALLOW
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
  };
  struct sock_fprog prog = { (unsigned short)(sizeof f / sizeof f[0]), f };
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static volatile pid_t vm_child = 0;
static void forward_stop(int sig) {
  (void)sig;
  if (vm_child > 0) kill(vm_child, SIGKILL); /* pid 1 of a namespace ignores SIGTERM without a handler */
}

static void relay(pid_t child) {
  vm_child = child;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  if (relay_filter() != 0) {
    kill(child, SIGKILL);
    fail("seccomp (relay)", errno);
  }
  int status = 0;
  for (;;) {
    pid_t r = wait4(child, &status, 0, NULL);
    if (r == child) break;
    if (r < 0 && errno != EINTR) _exit(121);
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    signal(sig, SIG_DFL);
    kill(getpid(), sig);
    _exit(128 + sig);
  }
  _exit(WEXITSTATUS(status));
}

static int parse_unshare(const char *list) {
  int flags = 0;
  char buf[128];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (!strcmp(t, "net")) flags |= CLONE_NEWNET;
    else if (!strcmp(t, "ipc")) flags |= CLONE_NEWIPC;
    else if (!strcmp(t, "mnt")) flags |= CLONE_NEWNS;
    else if (!strcmp(t, "uts")) flags |= CLONE_NEWUTS;
    else if (!strcmp(t, "pid")) flags |= CLONE_NEWPID;
    else if (!strcmp(t, "user")) flags |= CLONE_NEWUSER;
    else usage("--unshare takes a comma list of net, ipc, mnt, uts, pid, user");
  }
  return flags;
}

int main(int argc, char **argv) {
  /* First, before anything can fail and print: nothing of the host's survives into the VM. */
  close_inherited();

  pid_t parent = 0;
  long uid = -1, gid = -1, nofile = -1, nproc = -1;
  int ns = 0, probe = 0, i = 1, n_cgroups = 0;
  const char *cgroups[4];
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--")) { i++; break; }
    if (!strcmp(a, "--probe")) { probe = 1; continue; }
    if (i + 1 >= argc) usage("missing value");
    const char *v = argv[++i];
    if (!strcmp(a, "--parent")) parent = (pid_t)number(v, a);
    else if (!strcmp(a, "--uid")) uid = number(v, a);
    else if (!strcmp(a, "--gid")) gid = number(v, a);
    else if (!strcmp(a, "--nofile")) nofile = number(v, a);
    else if (!strcmp(a, "--nproc")) nproc = number(v, a);
    else if (!strcmp(a, "--unshare")) ns = parse_unshare(v);
    else if (!strcmp(a, "--cgroup")) {
      if (n_cgroups == 4) usage("at most 4 --cgroup");
      cgroups[n_cgroups++] = v;
    }
    else usage("unknown option");
  }
  if (!probe && i >= argc) usage("no program to run after --");
  if ((uid < 0) != (gid < 0)) usage("--uid and --gid go together");

  arm_death_signal(parent);
  /* With a pid namespace the launcher forks anyway: then the cgroups are joined by the relay for the VM's pid
   * while the VM already starts Node (a cgroup v1 attach waits for an RCU grace period, 4-10 ms). The VM waits
   * for the relay's word on READY_FD before it handles anything from the host (src/vm/sandbox.ts). */
  int deferred = (ns & CLONE_NEWPID) && !probe && n_cgroups > 0;
  if (!deferred) {
    for (int c = 0; c < n_cgroups; c++) {
      if (join_cgroup(cgroups[c], 0) != 0) fail(cgroups[c], errno);
    }
  }
  set_limit(RLIMIT_CORE, 0, "setrlimit(RLIMIT_CORE)");
  set_limit(RLIMIT_NOFILE, nofile, "setrlimit(RLIMIT_NOFILE)");
  set_limit(RLIMIT_NPROC, nproc, "setrlimit(RLIMIT_NPROC)");

  if (ns) {
    if (unshare(ns) != 0) fail("unshare", errno);
    /* Mounts made later inside must not propagate back to the host (and the host's must not reach in). */
    if ((ns & CLONE_NEWNS) && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail("mount(MS_PRIVATE)", errno);
  }

  if (ns & CLONE_NEWPID) {
    /* ready: the relay's word that the VM is in its cgroups (first, so that its read end is READY_FD). */
    int ready[2] = { -1, -1 };
    if (deferred && pipe2(ready, O_CLOEXEC) != 0) fail("pipe2 (ready)", errno);
    if (deferred && ready[0] != READY_FD) usage("stdin, stdout and stderr must be open (the VM's ready descriptor is 3)");
    int lifeline[2];
    if (pipe2(lifeline, O_CLOEXEC) != 0) fail("pipe2", errno);
    /* Forked while still privileged: the relay must still be allowed to write to cgroup.procs. */
    pid_t child = fork();
    if (child < 0) fail("fork (pid namespace)", errno);
    if (child > 0) {
      close(lifeline[0]);
      if (deferred) {
        close(ready[0]);
        /* The VM first (threads move with their process), then the relay: both inside, as without the fork. */
        for (int c = 0; c < n_cgroups; c++) {
          int moved = join_cgroup(cgroups[c], child);
          /* ESRCH: the VM already ended (it failed before its first read); there is nothing left to bound and
           * the relay reports its status. */
          if (moved != 0 && errno == ESRCH) moved = 0;
          if (moved != 0 || join_cgroup(cgroups[c], 0) != 0) {
            int e = errno;
            fprintf(stderr, "hostlink-launch: joining the VM's cgroup %s: %s\n", cgroups[c], strerror(e));
            kill(child, SIGKILL);
            close(ready[1]); /* the VM reads end-of-file: no word, no work */
            while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
            _exit(121);
          }
        }
        /* EPIPE: the VM already ended without reading (it never handled anything); the relay reports its status. */
        signal(SIGPIPE, SIG_IGN);
        if (write(ready[1], "y", 1) != 1 && errno != EPIPE) { kill(child, SIGKILL); fail("write (ready)", errno); }
        close(ready[1]);
      }
      drop_privileges(uid, gid, ns);
      arm_death_signal(parent); /* a uid change clears the death signal */
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { kill(child, SIGKILL); fail("prctl(PR_SET_NO_NEW_PRIVS)", errno); }
      if (probe) {
        int st;
        while (waitpid(child, &st, 0) < 0 && errno == EINTR) {}
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) _exit(121);
      } else {
        relay(child);
      }
    } else {
      close(lifeline[1]);
      drop_privileges(uid, gid, ns);
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("prctl(PR_SET_PDEATHSIG)", errno);
      /* getppid() is 0 across the namespace boundary, so the race is closed with the pipe instead: it
       * reports a hang-up exactly when the relay is gone. */
      struct pollfd p = { lifeline[0], POLLIN, 0 };
      if (poll(&p, 1, 0) != 0) _exit(122);
      close(lifeline[0]);
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("prctl(PR_SET_NO_NEW_PRIVS)", errno);
      if (deferred) {
        close(ready[1]);
        /* The one descriptor the VM inherits on purpose: it reads one byte there and closes it. */
        if (fcntl(READY_FD, F_SETFD, 0) != 0) fail("fcntl (ready)", errno);
        if (setenv(READY_ENV, READY_FD_TEXT, 1) != 0) fail("setenv", errno);
      }
      if (probe) _exit(0);
    }
  } else {
    drop_privileges(uid, gid, ns);
    arm_death_signal(parent); /* a uid change clears the death signal */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("prctl(PR_SET_NO_NEW_PRIVS)", errno);
  }
  if (probe) { /* with a pid namespace only the relay gets here, after its probe child exited 0 */
    printf("ok\n");
    fflush(stdout);
    _exit(0);
  }
  execvp(argv[i], &argv[i]);
  fail(argv[i], errno);
  return 121;
}
