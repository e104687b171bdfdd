/**
 * The forbidden actions of `hostlink vm --sandbox-self-test`, each tried by a real VM process from JavaScript
 * after it entered its sandbox (`hostlink vm --sandbox-probe NAME`). A probe prints one JSON line on stdout:
 * whether the action went through. An action the seccomp filter kills prints nothing: the process ends by
 * SIGSYS, which the driver (src/host/sandbox/self-test.ts) counts as blocked.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { enterSandbox, SANDBOX_ENV } from './sandbox.js';
import { sandboxAddon, type SandboxAddon } from './sandbox-native.js';

export interface ProbeResult {
  /** 'blocked': the action failed; 'allowed': it went through; 'untested': it cannot be tried here. */
  outcome: 'blocked' | 'allowed' | 'untested';
  detail: string;
}

export interface ProbeContext {
  /** A unix socket and a TCP port the driver listens on: the VM must not reach them. */
  unixPath: string;
  tcpPort: number;
  hostPid: number;
}

type Probe = { title: string; expect: 'blocked' | 'allowed'; run: (ctx: ProbeContext) => ProbeResult | Promise<ProbeResult> };

const errCode = (e: unknown): string => String((e as { code?: unknown }).code ?? (e as Error).message);
const blockedBy = (e: unknown): ProbeResult => ({ outcome: 'blocked', detail: errCode(e) });

function syscall(name: Parameters<SandboxAddon['attempt']>[0], pid?: number): ProbeResult {
  const { addon } = sandboxAddon();
  if (!addon) return { outcome: 'untested', detail: 'JavaScript has no API for it and the sandbox addon is not built' };
  const errno = addon.attempt(name, pid);
  return errno === 0 ? { outcome: 'allowed', detail: 'the system call succeeded' } : { outcome: 'blocked', detail: `errno ${errno}` };
}

function connectTo(options: { path: string } | { host: string; port: number }): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = 'path' in options ? connect({ path: options.path }) : connect({ host: options.host, port: options.port });
    s.once('connect', () => {
      s.destroy();
      resolve({ outcome: 'allowed', detail: 'connected' });
    });
    s.once('error', (e) => resolve(blockedBy(e)));
  });
}

export const PROBES: Record<string, Probe> = {
  control: { title: 'run JavaScript and WebAssembly inside the sandbox', expect: 'allowed', run: () => {
    const m = new WebAssembly.Module(Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0]));
    void new WebAssembly.Instance(m);
    return { outcome: 'allowed', detail: 'ran' };
  } },
  run_as_root: { title: 'run as root', expect: 'blocked', run: () => {
    const uid = process.getuid?.() ?? -1;
    return uid === 0 ? { outcome: 'allowed', detail: 'uid 0' } : { outcome: 'blocked', detail: `uid ${uid}` };
  } },
  open_file: { title: 'open a file (/etc/passwd)', expect: 'blocked', run: () => {
    try {
      openSync('/etc/passwd', 'r');
      return { outcome: 'allowed', detail: 'opened' };
    } catch (e) {
      return blockedBy(e);
    }
  } },
  create_file: { title: 'create a file (/tmp)', expect: 'blocked', run: () => {
    // A name nobody can guess, created new and never through a link: with a guessable one (the pid) another
    // local user could plant a link there (an unsandboxed probe, as root, wrote through it) or a directory
    // (the write failed, and the self-test called that failure the sandbox's).
    const path = `/tmp/hostlink-probe-${process.pid}-${randomBytes(8).toString('hex')}`;
    let fd: number;
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      return blockedBy(e);
    }
    closeSync(fd);
    unlinkSync(path);
    return { outcome: 'allowed', detail: 'created' };
  } },
  inherited_fd: { title: "write to an inherited descriptor (the host's LMDB file)", expect: 'blocked', run: () => {
    for (let fd = 3; fd < 256; fd++) {
      try {
        const st = fstatSync(fd);
        if (!st.isFile() && !st.isDirectory()) continue;
      } catch {
        continue;
      }
      try {
        writeSync(fd, 'x');
        return { outcome: 'allowed', detail: `wrote to descriptor ${fd}` };
      } catch (e) {
        return { outcome: 'allowed', detail: `descriptor ${fd} is a file (${errCode(e)} on write)` };
      }
    }
    return { outcome: 'blocked', detail: 'no file descriptor inherited' };
  } },
  connect_unix: { title: 'connect a unix socket', expect: 'blocked', run: (ctx) => connectTo({ path: ctx.unixPath }) },
  connect_tcp: { title: 'connect a TCP socket (127.0.0.1)', expect: 'blocked', run: (ctx) => connectTo({ host: '127.0.0.1', port: ctx.tcpPort }) },
  spawn: { title: 'start a program (child_process.spawnSync)', expect: 'blocked', run: () => {
    const r = spawnSync('/bin/true');
    return r.error || r.status !== 0 ? { outcome: 'blocked', detail: r.error ? errCode(r.error) : `status ${r.status}` } : { outcome: 'allowed', detail: 'ran /bin/true' };
  } },
  fork: { title: 'fork a process', expect: 'blocked', run: () => syscall('fork') },
  execve: { title: 'execve /bin/true', expect: 'blocked', run: () => syscall('execve') },
  ptrace: { title: 'ptrace the host', expect: 'blocked', run: (ctx) => syscall('ptrace', ctx.hostPid) },
  raise_limit: { title: 'raise RLIMIT_NOFILE', expect: 'blocked', run: () => syscall('raise_nofile') },
  setuid_root: { title: 'setuid(0)', expect: 'blocked', run: () => syscall('setuid_root') },
  unshare: { title: 'create a namespace', expect: 'blocked', run: () => syscall('unshare_net') },
  signal_host: { title: 'signal the host', expect: 'blocked', run: (ctx) => {
    try {
      process.kill(ctx.hostPid, 0);
      return { outcome: 'allowed', detail: 'kill(host, 0) succeeded' };
    } catch (e) {
      return blockedBy(e);
    }
  } },
};

/** The probe process: enter the sandbox exactly as a VM does, try one action, print the result. */
export async function runProbe(name: string): Promise<number> {
  const probe = PROBES[name];
  if (!probe) {
    process.stderr.write(`hostlink vm: unknown probe '${name}': one of ${Object.keys(PROBES).join(', ')}\n`);
    return 2;
  }
  const ctx = JSON.parse(process.env.HOSTLINK_PROBE ?? '{}') as ProbeContext;
  ctx.hostPid = Number(process.env[SANDBOX_ENV.hostPid] ?? 0);
  try {
    enterSandbox();
  } catch (e) {
    process.stderr.write(`hostlink vm: ${(e as Error).message}\n`);
    return 5;
  }
  const result = await probe.run(ctx);
  process.stdout.write(JSON.stringify(result) + '\n');
  return 0;
}
