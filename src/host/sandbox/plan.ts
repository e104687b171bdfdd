/**
 * The host's side of the VM sandbox: which layers can be installed here (assessed once per configuration and
 * reported by `hostlink doctor`), and the spawn that puts a VM inside them. The order matters and is fixed:
 *
 *   host, before spawn:   per-VM cgroup (memory, tasks); the socket made reachable by the VM's uid only
 *   launcher, before exec: close inherited fds, death signal + parent re-check, join the cgroup, rlimits,
 *                          namespaces, drop to the VM uid (no groups, no capabilities), death signal again,
 *                          no_new_privs (native/hostlink_launch.c); with a pid namespace the cgroup join is done
 *                          by the launcher's relay for the VM's pid while Node starts, and the VM waits for it
 *   VM, after connecting:  the relay's word on fd 3 (pid namespace), close inherited fds again, lifeline thread,
 *                          seccomp on every thread (src/vm/sandbox.ts)
 *
 * Without the C compiler there is no launcher and no addon: util-linux (unshare, prlimit, setpriv, each exec'ing
 * the next in place) does the launcher's steps except the pid namespace and the parent re-check; the cgroup is
 * joined by the host right after spawn (before the event loop can accept the VM's connection, so before any
 * untrusted byte); inherited descriptors are closed by the VM itself. Without util-linux either, the uid comes
 * from spawn's uid/gid (which makes libuv fork the whole host instead of vfork) and a worker thread in the VM
 * watches its parent. Mode 'required' refuses all of that (no seccomp); 'best-effort' says once what is missing.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { HostlinkError } from '../../errors.js';
import type { HostAddress } from '../../transport/address.js';
import { SANDBOX_ENV, isSandboxMode, type SandboxMode } from '../../vm/sandbox.js';
import { launcherStatus, sandboxAddon } from '../../vm/sandbox-native.js';
import { cgroupSupport, createVmCgroup, type VmCgroup } from './cgroup.js';
import { resolveVmUser, type VmUser } from './users.js';
import { extend } from '../../extend.js';
import { MIN_VM_MEMORY_BYTES, MIN_VM_OPEN_FILES, MIN_VM_TASKS } from '../../protocol/bounds.generated.js';
import { checkInteger } from '../options.js';

export type { SandboxMode } from '../../vm/sandbox.js';

export interface SandboxConfig {
  mode: SandboxMode;
  /**
   * The account VMs run as when the host is root: a user name or ids. Default 'nobody'. 'root' keeps VMs
   * as root, which Hostlink does only when you say so here (or with mode 'off').
   */
  user?: string | { uid: number; gid: number };
  /**
   * Whole-process memory bound of one VM (cgroup), bytes: min_vm_memory_bytes (3 GiB) by default and at least.
   * Every call the protocol allows must fit in it, or whether a call returns would depend on the node.
   */
  memoryBytes?: number;
  /**
   * RLIMIT_NOFILE of a VM. Default 256. A running VM holds about 20 descriptors, but one started from the normal
   * entry (no start-up snapshot) loads ~115 module files, and Node's module loader opens them concurrently: with
   * 64, about one such start in 30 died of EMFILE. Once its seccomp filter is on a VM cannot open anything.
   */
  maxOpenFiles?: number;
  /** Threads + processes of one VM (cgroup pids.max). Default 64: Node starts about 11 threads. */
  maxTasks?: number;
  /** RLIMIT_NPROC: threads of all processes of the VM user together (the kernel counts per uid). Default 16384. */
  maxUserProcesses?: number;
}

export type SandboxSetting = SandboxMode | SandboxConfig;

export const SANDBOX_DEFAULTS = { user: 'nobody', memoryBytes: MIN_VM_MEMORY_BYTES, maxOpenFiles: MIN_VM_OPEN_FILES, maxTasks: 64, maxUserProcesses: 16384 } as const;

export type LayerName = 'descriptors' | 'environment' | 'uid' | 'no_new_privs' | 'seccomp' | 'namespaces' | 'memory' | 'limits' | 'parent_death';

export const LAYER_ORDER: readonly LayerName[] = ['descriptors', 'environment', 'uid', 'no_new_privs', 'seccomp', 'namespaces', 'memory', 'limits', 'parent_death'];

export interface SandboxLayer {
  name: LayerName;
  /** on: installed for every VM; off: missing (detail says why and how to fix); waived: not applicable or the operator's choice. */
  state: 'on' | 'off' | 'waived';
  detail: string;
  /** 'required' refuses to start a VM while an essential layer is off. */
  essential: boolean;
}

export interface SandboxAssessment {
  mode: SandboxMode;
  layers: SandboxLayer[];
  /** Essential layers that are off. */
  missing: SandboxLayer[];
}

/** The default mode of a Host: HOSTLINK_SANDBOX when set (validated), else the strict one. */
export function defaultSandboxMode(env: NodeJS.ProcessEnv = process.env): SandboxMode {
  const v = env[SANDBOX_ENV.mode];
  if (v === undefined || v === '') return 'required';
  if (!isSandboxMode(v)) throw new HostlinkError('usage', `${SANDBOX_ENV.mode}=${v} is not a sandbox mode: use required, best-effort or off`);
  return v;
}

export function normalizeSandbox(setting: SandboxSetting | undefined): SandboxConfig {
  if (setting === undefined) return { mode: defaultSandboxMode() };
  if (typeof setting === 'string') {
    if (!isSandboxMode(setting)) throw new HostlinkError('usage', `sandbox '${String(setting)}' is not a mode: use required, best-effort or off`);
    return { mode: setting };
  }
  if (!isSandboxMode(setting.mode)) throw new HostlinkError('usage', `sandbox mode '${String(setting.mode)}' is not a mode: use required, best-effort or off`);
  checkSandboxNumbers(setting);
  return setting;
}

/** The most a kernel lets RLIMIT_NOFILE, RLIMIT_NPROC or pids.max be (nr_open's and pid_max's ceilings). */
const MOST_PER_PROCESS = 4_194_304;

/**
 * The numbers of a sandbox object are integers in range; memoryBytes, maxTasks and maxOpenFiles may not go below
 * their floors (protocol/bounds.json), because a bound that kills calls other nodes complete makes those calls'
 * results the node's, not the message's.
 */
function checkSandboxNumbers(config: SandboxConfig): void {
  if (config.memoryBytes !== undefined) {
    if (typeof config.memoryBytes === 'number' && Number.isInteger(config.memoryBytes) && config.memoryBytes < MIN_VM_MEMORY_BYTES) {
      throw new HostlinkError(
        'usage',
        `sandbox.memoryBytes ${config.memoryBytes} is below min_vm_memory_bytes (${MIN_VM_MEMORY_BYTES}): a VM bound that small kills calls the protocol allows (max_memory_pages_limit of guest memory, nested instances, the code cache), so their results would depend on this node; give ${MIN_VM_MEMORY_BYTES} or more, or leave it unset`,
      );
    }
    checkInteger('sandbox.memoryBytes', config.memoryBytes, MIN_VM_MEMORY_BYTES, Number.MAX_SAFE_INTEGER);
  }
  // Below these a VM cannot start or run at all: every call would fail on this node alone.
  if (config.maxOpenFiles !== undefined) checkInteger('sandbox.maxOpenFiles (min_vm_open_files is the least)', config.maxOpenFiles, MIN_VM_OPEN_FILES, MOST_PER_PROCESS);
  if (config.maxTasks !== undefined) checkInteger('sandbox.maxTasks (min_vm_tasks is the least)', config.maxTasks, MIN_VM_TASKS, MOST_PER_PROCESS);
  if (config.maxUserProcesses !== undefined) checkInteger('sandbox.maxUserProcesses', config.maxUserProcesses, 1, MOST_PER_PROCESS);
}

interface Plan {
  assessment: SandboxAssessment;
  user?: VmUser;
  /**
   * What runs before Node: the native launcher (argv before the per-VM --cgroup flags and `--`) or a util-linux
   * chain ending in `--`; undefined: Node is spawned directly (with spawn's uid/gid).
   */
  launcher?: { kind: 'native' | 'util-linux'; argv: string[] };
  namespaces: boolean;
  useCgroup: boolean;
}

const plans = new Map<string, Plan>();

const isRoot = (): boolean => typeof process.geteuid === 'function' && process.geteuid() === 0;

/** Whether `uid`/`gid` can read `file` (and search every directory above it), from the mode bits. */
function readableBy(file: string, uid: number, gid: number): boolean {
  let p = file;
  for (let first = true; ; first = false) {
    let st;
    try {
      st = statSync(p);
    } catch {
      return false;
    }
    const need = first ? 4 : 1; // r for the file, x for the directories
    const bits = st.uid === uid ? (st.mode >> 6) & 7 : st.gid === gid ? (st.mode >> 3) & 7 : st.mode & 7;
    if ((bits & need) === 0) return false;
    const up = dirname(p);
    if (up === p) return true;
    p = up;
  }
}

/** Overrides the VM user when the sandbox setting names none (a name, or `root`; docs/security.md). */
export const SANDBOX_USER_ENV = 'HOSTLINK_SANDBOX_USER';

/** The VM user when the setting names none: HOSTLINK_SANDBOX_USER, else nobody. */
export function defaultVmUser(env: NodeJS.ProcessEnv = process.env): string {
  const v = env[SANDBOX_USER_ENV];
  return v === undefined || v === '' ? SANDBOX_DEFAULTS.user : v;
}

function unreadableFor(user: VmUser, vmEntry: string): string | undefined {
  for (const f of [vmEntry, process.execPath]) {
    if (!readableBy(f, user.uid, user.gid)) {
      return `the VM user ${user.label} cannot read ${f}: install Hostlink where that account can read it (e.g. under /opt), or configure another user (sandbox.user, or ${SANDBOX_USER_ENV}; root runs VMs as root with the other layers on)`;
    }
  }
  return undefined;
}

/**
 * Why a root host's default VM user cannot run this installation (it cannot read `vmEntry` or Node), or
 * undefined when it can, when the host is not root, or when the user cannot be resolved (assess() reports that).
 */
export function defaultVmUserCannotRead(vmEntry: string): string | undefined {
  if (!isRoot()) return undefined;
  try {
    const user = resolveVmUser(defaultVmUser());
    return user.uid === 0 ? undefined : unreadableFor(user, vmEntry);
  } catch {
    return undefined;
  }
}

/** Set by fallBackToRootVms: why VMs run as root although nobody configured it (the uid layer's detail says so). */
let rootFallbackReason: string | undefined;

/**
 * For the tools, never the library: when the host is root and the default VM user cannot read the installation
 * (a checkout in a private folder), run VMs as root with the other layers on instead of failing every call, by
 * setting HOSTLINK_SANDBOX_USER=root. Returns why ("the VM user nobody cannot read FILE") the first time it does
 * so (the caller warns); undefined when nothing changed (the variable is set, or the default user can read it).
 */
export function fallBackToRootVms(vmEntry: string): string | undefined {
  if (process.env[SANDBOX_USER_ENV] !== undefined) return undefined;
  const why = defaultVmUserCannotRead(vmEntry);
  if (why === undefined) return undefined;
  process.env[SANDBOX_USER_ENV] = 'root';
  rootFallbackReason = why.replace(/: install Hostlink.*$/, '');
  return rootFallbackReason;
}

/** Why the uid layer is waived for user root: the setting, the variable, or the tools' fallback. */
function rootUserDetail(config: SandboxConfig): string {
  if (config.user === 'root') return 'VMs run as root because the operator configured user: root';
  if (rootFallbackReason !== undefined && process.env[SANDBOX_USER_ENV] === 'root') {
    return `VMs run as root with the other layers on, because ${rootFallbackReason} (install Hostlink where that account can read it, e.g. under /opt, to run them unprivileged)`;
  }
  return `VMs run as root because ${SANDBOX_USER_ENV}=root is set`;
}

function probeLauncher(path: string, args: string[]): { ok: true } | { ok: false; reason: string } {
  const r = spawnSync(path, [...args, '--probe'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  if (r.status === 0 && r.stdout.trim() === 'ok') return { ok: true };
  const why = (r.stderr || r.error?.message || `exit ${r.status ?? r.signal}`).trim().split('\n')[0]!;
  return { ok: false, reason: why.replace(/^hostlink-launch: /, '') };
}

function assess(config: SandboxConfig, transport: 'unix' | 'tcp', vmEntry: string): Plan {
  const layers: SandboxLayer[] = [];
  const add = (name: LayerName, state: SandboxLayer['state'], detail: string, essential: boolean): void => {
    layers.push({ name, state, detail, essential });
  };
  const off = config.mode === 'off';
  const plan: Plan = { assessment: { mode: config.mode, layers, missing: [] }, namespaces: false, useCgroup: false };
  const launcher = launcherStatus();
  const addon = sandboxAddon();
  const limits = {
    nofile: config.maxOpenFiles ?? SANDBOX_DEFAULTS.maxOpenFiles,
    nproc: config.maxUserProcesses ?? SANDBOX_DEFAULTS.maxUserProcesses,
    tasks: config.maxTasks ?? SANDBOX_DEFAULTS.maxTasks,
    memory: config.memoryBytes ?? SANDBOX_DEFAULTS.memoryBytes,
  };

  // uid
  const wanted = config.user ?? defaultVmUser();
  let uidProblem: string | undefined;
  if (off) add('uid', 'waived', 'sandbox off: VMs run as the host user', true);
  else if (!isRoot()) add('uid', 'waived', `the host is not root: VMs run as uid ${process.getuid?.() ?? '?'} without capabilities`, true);
  else if (wanted === 'root') add('uid', 'waived', rootUserDetail(config), true);
  else {
    try {
      const user = resolveVmUser(wanted);
      if (user.uid === 0) throw new Error(`the VM user ${user.label} is root: configure an unprivileged account, or user: 'root' to run VMs as root`);
      const unreadable = unreadableFor(user, vmEntry);
      if (unreadable !== undefined) throw new Error(unreadable);
      plan.user = user;
      add('uid', 'on', `VMs run as ${user.label}, no supplementary groups`, true);
    } catch (e) {
      uidProblem = (e as Error).message;
      add('uid', 'off', uidProblem, true);
    }
  }

  // The native launcher: probe namespaces, then without them.
  let nsDetail = launcher.reason ?? 'needs the launcher';
  if (!off && uidProblem === undefined && launcher.reason === undefined) {
    const base = ['--parent', String(process.pid), '--nofile', String(limits.nofile), '--nproc', String(limits.nproc)];
    if (plan.user) base.push('--uid', String(plan.user.uid), '--gid', String(plan.user.gid));
    const wantNs = ['ipc', 'mnt', 'uts', 'pid', ...(transport === 'unix' ? ['net'] : []), ...(isRoot() ? [] : ['user'])];
    const withNs = [...base, '--unshare', wantNs.join(',')];
    const probe = probeLauncher(launcher.path, withNs);
    if (probe.ok) {
      plan.launcher = { kind: 'native', argv: [launcher.path, ...withNs] };
      nsDetail = `new ${wantNs.filter((n) => n !== 'user').join(', ')} namespaces${tcpNote(transport)}`;
      plan.namespaces = true;
    } else {
      const plain = probeLauncher(launcher.path, base);
      if (plain.ok) plan.launcher = { kind: 'native', argv: [launcher.path, ...base] };
      nsDetail = plain.ok ? `the kernel refused new namespaces (${probe.reason}); VMs share the host's` : `the launcher failed: ${plain.reason}`;
    }
  }
  // Without the compiler: the same steps from util-linux (unshare, prlimit, setpriv), each exec'ing the next in
  // place (same pid), when they are installed and work here. No pid namespace (it would need a fork).
  if (!off && uidProblem === undefined && !plan.launcher) {
    const tools = utilLinux();
    if (tools.setpriv && tools.prlimit) {
      const setpriv = [tools.setpriv, ...(plan.user ? [`--reuid=${plan.user.uid}`, `--regid=${plan.user.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'] : []), '--no-new-privs', '--pdeathsig=KILL', '--'];
      const prlimit = [tools.prlimit, `--nofile=${limits.nofile}:${limits.nofile}`, `--nproc=${limits.nproc}:${limits.nproc}`, '--core=0:0', '--'];
      const wantNs = ['--ipc', '--uts', '--mount', ...(transport === 'unix' ? ['--net'] : [])];
      const withNs = tools.unshare && isRoot() ? [tools.unshare, ...wantNs, '--', ...prlimit, ...setpriv] : undefined;
      if (withNs && probeChain(withNs)) {
        plan.launcher = { kind: 'util-linux', argv: withNs };
        plan.namespaces = true;
        nsDetail = `new ${wantNs.map((n) => n.slice(2)).join(', ')} namespaces from util-linux unshare (no pid namespace without the launcher)${tcpNote(transport)}`;
      } else if (probeChain([...prlimit, ...setpriv])) {
        plan.launcher = { kind: 'util-linux', argv: [...prlimit, ...setpriv] };
        nsDetail = `${launcher.reason ?? 'no launcher'}; util-linux unshare ${tools.unshare ? 'cannot create namespaces here' : 'is not installed'}`;
      }
    }
  }
  const native = plan.launcher?.kind === 'native';
  const launcherWhy = launcher.reason ?? 'the launcher failed its probe';
  const noLauncher = `${launcherWhy}; util-linux setpriv/prlimit are not usable either`;
  // With a pid namespace the launcher's relay joins the VM's cgroups while Node starts (native/hostlink_launch.c).
  const relayJoins = native && plan.namespaces && !off && (cgroupSupport().memory !== undefined || cgroupSupport().pids !== undefined);

  add(
    'descriptors',
    'on',
    native
      ? `launcher close_range()s everything above stderr${relayJoins ? ' (then gives the VM one pipe, fd 3, for its cgroup word; the VM closes it once read)' : ''}; the VM closes any inherited descriptor again at start-up`
      : 'the VM closes every inherited (not close-on-exec) descriptor above stderr at start-up',
    true,
  );
  add('environment', 'on', off ? 'environment scrubbed (PATH and the sandbox variables only)' : 'environment scrubbed (PATH and the sandbox variables only), empty read-only working directory', true);
  if (off) {
    for (const n of ['no_new_privs', 'seccomp', 'namespaces', 'memory', 'limits', 'parent_death'] as const) add(n, 'off', 'sandbox off', false);
    return plan;
  }
  add(
    'no_new_privs',
    plan.launcher || addon.addon ? 'on' : 'off',
    native ? 'set by the launcher before exec' : plan.launcher ? 'set by util-linux setpriv before exec' : addon.addon ? 'set by the VM before its seccomp filter' : `${noLauncher}; ${addon.reason}`,
    true,
  );
  let seccomp = addon.addon ? 'allow-list on every thread (TSYNC), installed after connect, before any untrusted byte' : addon.reason;
  if (addon.addon && !['x64', 'arm64'].includes(process.arch)) seccomp = `no filter for ${process.arch} (x64 and arm64 only)`;
  add('seccomp', addon.addon && ['x64', 'arm64'].includes(process.arch) ? 'on' : 'off', seccomp, true);
  add('namespaces', plan.namespaces ? 'on' : 'off', nsDetail, false);

  const cg = cgroupSupport();
  plan.useCgroup = cg.memory !== undefined || cg.pids !== undefined;
  add(
    'memory',
    cg.memory ? 'on' : 'off',
    cg.memory
      ? `cgroup v${cg.memory.version} memory limit ${limits.memory} bytes per VM (under ${cg.memory.base})`
      : `${cg.reasons.memory}; fallback: the V8 heap limit (--max-old-space-size) and the instrumenter's wasm memory cap`,
    false,
  );
  const lim: string[] = [];
  if (plan.launcher) lim.push(`RLIMIT_NOFILE ${limits.nofile}`, `RLIMIT_NPROC ${limits.nproc} (per uid)`, 'RLIMIT_CORE 0');
  if (cg.pids) lim.push(`cgroup v${cg.pids.version} pids.max ${limits.tasks}`);
  add('limits', plan.launcher ? 'on' : 'off', plan.launcher ? lim.join(', ') + (native ? '' : ' (util-linux prlimit)') : `${noLauncher}${lim.length ? `; only ${lim.join(', ')}` : ''}`, true);
  const death: string[] = [];
  if (native) death.push('PR_SET_PDEATHSIG(SIGKILL) set after the uid change, parent re-checked');
  else if (plan.launcher) death.push('PR_SET_PDEATHSIG(SIGKILL) from util-linux setpriv (no re-check of the parent)');
  if (addon.addon) death.push('a lifeline thread ends the VM when the host end of its stderr closes');
  else if (!plan.launcher) death.push('a worker thread ends the VM when its parent changes');
  add('parent_death', 'on', death.join('; '), true);
  return plan;
}

const tcpNote = (transport: 'unix' | 'tcp'): string => (transport === 'tcp' ? " (not net: the tcp transport needs the host's loopback; use unix)" : '');

/** util-linux tools, looked up in the system directories only (never the caller's PATH). */
function utilLinux(): { unshare?: string; prlimit?: string; setpriv?: string } {
  const out: { unshare?: string; prlimit?: string; setpriv?: string } = {};
  for (const tool of ['unshare', 'prlimit', 'setpriv'] as const) {
    for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
      try {
        accessSync(join(dir, tool), constants.X_OK);
        out[tool] = join(dir, tool);
        break;
      } catch {
        // not here
      }
    }
  }
  return out;
}

/** Whether a util-linux chain starts Node here (the same way it will start VMs). */
function probeChain(chain: string[]): boolean {
  const r = spawnSync(chain[0]!, [...chain.slice(1), process.execPath, '-e', '0'], { stdio: 'ignore', timeout: 10_000, cwd: emptyCwd() });
  return r.status === 0;
}

function planFor(config: SandboxConfig, transport: 'unix' | 'tcp', vmEntry: string): Plan {
  const key = JSON.stringify([config, transport, vmEntry]);
  let plan = plans.get(key);
  if (!plan) {
    plan = assess(config, transport, vmEntry);
    plan.assessment.layers.sort((a, b) => LAYER_ORDER.indexOf(a.name) - LAYER_ORDER.indexOf(b.name));
    plan.assessment.missing = plan.assessment.layers.filter((l) => l.essential && l.state === 'off');
    plans.set(key, plan);
  }
  return plan;
}

/** What the sandbox does here with this configuration (for doctor and the self-test). */
export function assessSandbox(setting: SandboxSetting | undefined, transport: 'unix' | 'tcp', vmEntry: string): SandboxAssessment {
  return planFor(normalizeSandbox(setting), transport, vmEntry).assessment;
}

let emptyDir: string | undefined;
/** An empty, read-only directory to be the VM's working directory. */
function emptyCwd(): string {
  if (emptyDir === undefined) {
    emptyDir = mkdtempSync(join(tmpdir(), 'hostlink-vm-cwd-'));
    chmodSync(emptyDir, 0o555);
    const dir = emptyDir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return emptyDir;
}

const warned = new Set<string>();

/** VM cgroups not yet removed; whatever is left goes when the host exits. */
const liveCgroups = new Set<VmCgroup>();
process.once('exit', () => {
  for (const c of liveCgroups) c.remove();
});

/** A sandbox ready to spawn VMs: refuses (required) or warns (best-effort) about missing layers up front. */
export class PreparedSandbox {
  constructor(
    private readonly config: SandboxConfig,
    private readonly plan: Plan,
  ) {}

  get assessment(): SandboxAssessment {
    return this.plan.assessment;
  }

  /** Lets the VM's uid (and nobody else but root) connect to its unix socket. */
  grantSocket(address: HostAddress): void {
    if (address.kind !== 'unix' || !this.plan.user) return;
    chmodSync(dirname(address.path), 0o711); // search only: the names in it are not listed
    chownSync(address.path, this.plan.user.uid, this.plan.user.gid);
    chmodSync(address.path, 0o600);
  }

  /**
   * Makes `dir` the VM's own: owned by its uid, mode 0700 (the host, root, still reaches it). A VM that serves
   * (the runtime handshake, src/runtime/launcher.ts) creates its socket there.
   */
  grantDir(dir: string): void {
    if (this.plan.user) {
      chmodSync(dirname(dir), 0o711); // search only, as grantSocket: the names in it are not listed
      chownSync(dir, this.plan.user.uid, this.plan.user.gid);
    }
    chmodSync(dir, 0o700);
  }

  /** Spawns `file args` inside the sandbox. The caller's env is kept (it is already scrubbed) plus the sandbox's. */
  spawn(file: string, args: readonly string[], options: SpawnOptions & { env: Record<string, string> }): ChildProcess {
    const env: Record<string, string> = extend(options.env, { [SANDBOX_ENV.mode]: this.config.mode, [SANDBOX_ENV.hostPid]: String(process.pid) });
    const stdio = options.stdio;
    if (Array.isArray(stdio) && stdio[2] === 'pipe') env[SANDBOX_ENV.lifelineFd] = '2';
    if (this.config.mode === 'off') return spawn(file, args, extend(options, { env }));
    env.PATH = '/usr/bin:/bin'; // the host's PATH says where its tools live; the VM runs nothing by name
    const limits = { memoryBytes: this.config.memoryBytes ?? SANDBOX_DEFAULTS.memoryBytes, maxTasks: this.config.maxTasks ?? SANDBOX_DEFAULTS.maxTasks };
    const cgroup: VmCgroup | undefined = this.plan.useCgroup ? createVmCgroup(limits) : undefined;
    let child: ChildProcess;
    try {
      const launcher = this.plan.launcher;
      if (launcher) env[SANDBOX_ENV.deathSignal] = '1'; // the VM need not watch its parent itself
      if (launcher?.kind === 'native') {
        const [path, ...pre] = launcher.argv;
        const joins = cgroup ? cgroup.procsFiles.flatMap((f) => ['--cgroup', f]) : [];
        child = spawn(path!, [...pre, ...joins, '--', file, ...args], extend(options, { env, cwd: emptyCwd() }));
      } else {
        const ids = !launcher && this.plan.user ? { uid: this.plan.user.uid, gid: this.plan.user.gid } : {};
        const [path, ...pre] = launcher ? [...launcher.argv, file] : [file];
        child = spawn(path!, [...pre, ...args], extend({ ...options, ...ids }, { env, cwd: emptyCwd() }));
        // Synchronously, before this turn of the event loop ends: the VM cannot have received anything yet.
        // (The util-linux tools exec in place, so this pid is the VM's.)
        if (cgroup && child.pid !== undefined) {
          try {
            cgroup.attach(child.pid);
          } catch {
            // it already exited: nothing to bound
          }
        }
      }
    } catch (e) {
      cgroup?.remove();
      throw e;
    }
    if (cgroup) {
      liveCgroups.add(cgroup);
      child.once('exit', () => {
        cgroup.remove();
        // a cgroup can stay busy for a moment after the exit
        setTimeout(() => (cgroup.remove(), liveCgroups.delete(cgroup)), 1000).unref();
      });
    }
    return child;
  }
}

/**
 * The sandbox for the VMs of one launch: throws HostlinkError('sandbox_unavailable') when mode 'required' lacks
 * an essential layer, or when the host is root and the VM user cannot be used (never a silent fallback to root).
 */
export function prepareSandbox(setting: SandboxSetting | undefined, transport: 'unix' | 'tcp', vmEntry: string): PreparedSandbox {
  const config = normalizeSandbox(setting);
  const plan = planFor(config, transport, vmEntry);
  const { missing } = plan.assessment;
  const uid = plan.assessment.layers.find((l) => l.name === 'uid');
  if (config.mode !== 'off' && uid?.state === 'off') {
    throw new HostlinkError('sandbox_unavailable', `refusing to run contracts as root: ${uid.detail}`);
  }
  if (missing.length > 0) {
    const what = missing.map((l) => `${l.name} (${l.detail})`).join('; ');
    if (config.mode === 'required') {
      throw new HostlinkError(
        'sandbox_unavailable',
        `sandbox 'required' but these layers cannot be installed here: ${what}. Fix that, or choose sandbox 'best-effort' (--sandbox best-effort) to run with a weaker sandbox`,
      );
    }
    const key = what;
    if (!warned.has(key)) {
      warned.add(key);
      process.stderr.write(`hostlink: warning: sandbox best-effort, VMs run without ${missing.map((l) => l.name).join(', ')}: ${what}\n`);
    }
  }
  return new PreparedSandbox(config, plan);
}

/**
 * The processes of a VM: the spawned one and its descendants (with a pid namespace the launcher stays as a relay
 * and the VM is its child). For tests and tools that inspect /proc.
 */
export function vmProcessTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      const children = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim();
      if (children) out.push(...children.split(/\s+/).map(Number));
    } catch {
      // gone, or a kernel without /proc/PID/task/TID/children
    }
  }
  return out;
}
