/**
 * A cgroup per VM process: a whole-process memory bound that WebAssembly still works under (unlike RLIMIT_AS,
 * which breaks V8's wasm memory reservation) and a bound on its threads/processes. cgroup v2 (memory.max,
 * pids.max) where the controller is enabled for us, else cgroup v1 (memory.limit_in_bytes, pids.max). The VM's
 * cgroup is created under the host's own, so a container's or a systemd unit's limits still apply above it.
 * When the host may not create one, the layer is reported missing with the reason (docs/security.md has the
 * fallback).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Controller = 'memory' | 'pids';

interface Hierarchy {
  /** The host's cgroup directory in this hierarchy: VM cgroups are created below it. */
  base: string;
  version: 1 | 2;
}

export interface CgroupSupport {
  memory?: Hierarchy;
  pids?: Hierarchy;
  /** Why a controller is unavailable. */
  reasons: Partial<Record<Controller, string>>;
}

export interface CgroupLimits {
  memoryBytes: number;
  maxTasks: number;
}

interface Mount {
  root: string;
  point: string;
  type: string;
  options: string[];
}

function mounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const f = left.split(' ');
    const r = right.split(' ');
    if (r[0] === 'cgroup' || r[0] === 'cgroup2') out.push({ root: f[3]!, point: f[4]!, type: r[0], options: (r[2] ?? '').split(',') });
  }
  return out;
}

/** The host's cgroup path in the hierarchy of `controller` (v1) or in the unified hierarchy ('' key, v2). */
function ownPaths(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const parts = line.split(':');
    if (parts.length < 3) continue;
    const path = parts.slice(2).join(':');
    for (const c of parts[1]!.split(',')) m.set(c, path);
  }
  return m;
}

function dirOf(mount: Mount, path: string): string {
  const rel = mount.root === '/' ? path : path.startsWith(mount.root) ? path.slice(mount.root.length) : path;
  return join(mount.point, rel);
}

/**
 * Removes VM cgroups left by hosts that no longer run (a host killed with SIGKILL cannot clean up after itself).
 * Only empty ones can go; a cgroup that still holds a process stays.
 */
function sweepStale(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^hostlink-(\d+)-vm-\d+$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !running(Number(m[1]))) safeRmdir(join(base, name));
  }
}

/** A process that exists and is not a zombie (a killed host its parent has not reaped yet is gone for us). */
function running(pid: number): boolean {
  const status = safeRead(`/proc/${pid}/status`);
  return status !== undefined && !/^State:\s+Z/m.test(status);
}

function canCreateChild(base: string): string | undefined {
  sweepStale(base);
  const probe = join(base, `hostlink-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return undefined;
  } catch (e) {
    return `cannot create a cgroup under ${base} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
}

let support: CgroupSupport | undefined;

/** Which controllers the host can give its VMs here (probed once: it creates and removes a test cgroup). */
export function cgroupSupport(): CgroupSupport {
  if (support) return support;
  const s: CgroupSupport = { reasons: {} };
  if (process.platform !== 'linux') {
    s.reasons = { memory: 'cgroups exist on Linux only', pids: 'cgroups exist on Linux only' };
    return (support = s);
  }
  let all: Mount[];
  let own: Map<string, string>;
  try {
    all = mounts();
    own = ownPaths();
  } catch (e) {
    s.reasons = { memory: `cannot read /proc: ${(e as Error).message}`, pids: `cannot read /proc: ${(e as Error).message}` };
    return (support = s);
  }
  for (const c of ['memory', 'pids'] as const) {
    const v2 = all.find((m) => m.type === 'cgroup2');
    const v2Path = own.get('');
    if (v2 && v2Path !== undefined) {
      const base = dirOf(v2, v2Path);
      const controllers = safeRead(join(base, 'cgroup.controllers'));
      if (controllers?.split(/\s+/).includes(c)) {
        const enabled = safeRead(join(base, 'cgroup.subtree_control'))?.split(/\s+/).includes(c);
        if (!enabled) {
          try {
            writeFileSync(join(base, 'cgroup.subtree_control'), `+${c}`);
          } catch (e) {
            s.reasons[c] =
              `cgroup v2 ${c} controller cannot be enabled below ${base} (${(e as NodeJS.ErrnoException).code ?? 'error'}: ` +
              'run the node in a leaf cgroup with delegation, e.g. systemd Delegate=yes)';
            continue;
          }
        }
        const why = canCreateChild(base);
        if (why) s.reasons[c] = why;
        else s[c] = { base, version: 2 };
        continue;
      }
    }
    const v1 = all.find((m) => m.type === 'cgroup' && m.options.includes(c));
    const v1Path = own.get(c);
    if (!v1 || v1Path === undefined) {
      s.reasons[c] = `no cgroup ${c} controller is mounted for this process`;
      continue;
    }
    const base = dirOf(v1, v1Path);
    const why = canCreateChild(base);
    if (why) s.reasons[c] = why;
    else s[c] = { base, version: 1 };
  }
  return (support = s);
}

function safeRead(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

let counter = 0;

/** One VM's cgroups: join them (write a pid to `procsFiles`), remove them when the VM has exited. */
export interface VmCgroup {
  /** cgroup.procs of each hierarchy; writing "0" there moves the writer (the launcher does that). */
  procsFiles: string[];
  /** Moves a process in (when there is no launcher). */
  attach(pid: number): void;
  remove(): void;
}

/** Creates the VM's cgroups with their limits; undefined when no controller is available. */
export function createVmCgroup(limits: CgroupLimits): VmCgroup | undefined {
  const s = cgroupSupport();
  if (!s.memory && !s.pids) return undefined;
  const name = `hostlink-${process.pid}-vm-${++counter}`;
  const dirs: string[] = [];
  const create = (h: Hierarchy): string => {
    const dir = join(h.base, name);
    if (!dirs.includes(dir)) {
      mkdirSync(dir);
      dirs.push(dir);
    }
    return dir;
  };
  try {
    if (s.memory) {
      const dir = create(s.memory);
      if (s.memory.version === 2) {
        writeFileSync(join(dir, 'memory.max'), String(limits.memoryBytes));
        if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
      } else {
        writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limits.memoryBytes));
        // With swap accounting the bound must cover swap too, or the VM swaps instead of stopping.
        if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(dir, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
      }
    }
    if (s.pids) writeFileSync(join(create(s.pids), 'pids.max'), String(limits.maxTasks));
  } catch (e) {
    for (const d of dirs) safeRmdir(d);
    throw e;
  }
  const procsFiles = dirs.map((d) => join(d, 'cgroup.procs'));
  return {
    procsFiles,
    attach(pid: number) {
      for (const f of procsFiles) writeFileSync(f, String(pid));
    },
    remove() {
      for (const d of dirs) safeRmdir(d);
    },
  };
}

function safeRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // still busy (a process is exiting) or already gone; the next attempt or the OS cleans it up
  }
}
