/**
 * CPU time per execution on both sides, from the OS: the host process from process.cpuUsage() (every thread,
 * so lmdb's writer thread too), the VM processes from /proc/<pid>/stat (utime + stime, in clock ticks). Read
 * before and after a measured interval; a VM that starts during it counts from zero, a VM that exits during it
 * is not counted (the pool in these runs keeps its VMs).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { vmProcessTree } from '../src/host/sandbox/plan.js';

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    ticksPerSecond = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/** utime + stime of a process in microseconds, or undefined when it is gone or /proc is unavailable. */
export function processCpuUs(pid: number): number | undefined {
  const t = processTimesUs(pid);
  return t === undefined ? undefined : t.user + t.sys;
}

/** utime and stime of a process in microseconds, or undefined when it is gone or /proc is unavailable. */
export function processTimesUs(pid: number): { user: number; sys: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return { user: (utime / clockTicks()) * 1e6, sys: (stime / clockTicks()) * 1e6 };
  } catch {
    return undefined;
  }
}

/**
 * A process's threads from /proc/<pid>/task: CPU of its main thread (tid = pid) and of the others (Node's
 * libuv pool, where lmdb commits; V8's GC and compiler helpers), in microseconds, and its context switches
 * (voluntary: it blocked, each a sleep and a wake-up; involuntary: preempted). Zeros when /proc is unavailable.
 */
export interface ThreadTimes {
  mainUs: number;
  otherUs: number;
  voluntary: number;
  involuntary: number;
  /**
   * The main thread's time runnable but not running (woken or preempted, waiting for a CPU), from
   * /proc/<pid>/task/<pid>/schedstat; with mainUs and the wall time it splits the main thread's time into on a
   * CPU, waiting for one, and blocked (asleep until a socket, timer or lock wakes it). 0 where schedstat is absent.
   */
  mainWaitUs: number;
}

/** The main thread's run-queue wait in microseconds (schedstat's second field, nanoseconds), or 0. */
function runQueueWaitUs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(' ');
    const ns = Number(f[1]);
    return Number.isFinite(ns) ? ns / 1000 : 0;
  } catch {
    return 0;
  }
}

export function threadTimes(pid: number): ThreadTimes {
  const t: ThreadTimes = { mainUs: 0, otherUs: 0, voluntary: 0, involuntary: 0, mainWaitUs: runQueueWaitUs(pid) };
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return t;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const us = ((Number(rest[11]) + Number(rest[12])) / clockTicks()) * 1e6;
      if (Number(tid) === pid) t.mainUs += us;
      else t.otherUs += us;
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      t.voluntary += Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1] ?? 0);
      t.involuntary += Number(/^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1] ?? 0);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return t;
}

/** Applies `f` field by field (the four fields are alike: sums, differences, per-execution shares). */
const eachTime = (a: ThreadTimes, b: ThreadTimes, f: (x: number, y: number) => number): ThreadTimes => ({
  mainUs: f(a.mainUs, b.mainUs),
  otherUs: f(a.otherUs, b.otherUs),
  voluntary: f(a.voluntary, b.voluntary),
  involuntary: f(a.involuntary, b.involuntary),
  mainWaitUs: f(a.mainWaitUs, b.mainWaitUs),
});
const addTimes = (a: ThreadTimes, b: ThreadTimes, sign = 1): ThreadTimes => eachTime(a, b, (x, y) => x + sign * y);

/** `t` divided by `n` executions. */
export const timesPer = (t: ThreadTimes, n: number): ThreadTimes => eachTime(t, t, (x) => x / n);

export interface CpuSnapshot {
  host: NodeJS.CpuUsage;
  /** This process's threads; `vmThreads` the same per VM process (relays included: they do nothing). */
  hostThreads: ThreadTimes;
  vmThreads: Map<number, ThreadTimes>;
  vms: Map<number, number>;
  /** The kernel's share (stime) of `vms`. */
  vmSys: Map<number, number>;
  /** VMs launched and alive (their relays and children are in `vms` too, so that map counts processes, not VMs). */
  launched: number;
}

export function cpuSnapshot(vmPids: readonly number[]): CpuSnapshot {
  const vms = new Map<number, number>();
  const vmSys = new Map<number, number>();
  let launched = 0;
  // With the sandbox's pid namespace the launched process is a relay and the VM is its child: count the tree.
  for (const root of vmPids) {
    if (processTimesUs(root) !== undefined) launched++;
  }
  const vmThreads = new Map<number, ThreadTimes>();
  for (const pid of vmPids.flatMap((p) => vmProcessTree(p))) {
    const t = processTimesUs(pid);
    if (t !== undefined) {
      vms.set(pid, t.user + t.sys);
      vmSys.set(pid, t.sys);
      vmThreads.set(pid, threadTimes(pid));
    }
  }
  return { host: process.cpuUsage(), hostThreads: threadTimes(process.pid), vmThreads, vms, vmSys, launched };
}

/** Thread CPU and context switches between two snapshots: the host's, and the VMs' summed. */
export function threadsSpent(before: CpuSnapshot, after: CpuSnapshot): { host: ThreadTimes; vms: ThreadTimes } {
  let vms: ThreadTimes = { mainUs: 0, otherUs: 0, voluntary: 0, involuntary: 0, mainWaitUs: 0 };
  for (const [pid, t] of after.vmThreads) {
    const b = before.vmThreads.get(pid);
    vms = addTimes(vms, b === undefined ? t : addTimes(t, b, -1));
  }
  return { host: addTimes(after.hostThreads, before.hostThreads, -1), vms };
}

/** Host and VM CPU (user + sys, microseconds) spent between two snapshots, and the kernel's (sys) part of each. */
export function cpuSpent(before: CpuSnapshot, after: CpuSnapshot): { hostUs: number; vmUs: number; hostSysUs: number; vmSysUs: number; vms: number } {
  let vmUs = 0;
  let vmSysUs = 0;
  for (const [pid, us] of after.vms) vmUs += us - (before.vms.get(pid) ?? 0);
  for (const [pid, us] of after.vmSys) vmSysUs += us - (before.vmSys.get(pid) ?? 0);
  return {
    hostUs: after.host.user + after.host.system - before.host.user - before.host.system,
    vmUs,
    hostSysUs: after.host.system - before.host.system,
    vmSysUs,
    // VMs, not processes: under the sandbox each VM is a relay and its child, and counting both read as a pool
    // running twice the VMs it has.
    vms: after.launched,
  };
}
