/**
 * A host in its own process, for the sandbox tests that must kill a host or run one from a copy of the
 * installation without the native parts: `node host-script.js MODE SANDBOX DATADIR HOLD_WASM [inspect]`.
 * It starts a call that never ends (hold.write_then_loop with unlimited gas), prints one JSON line with the VM's
 * processes, their descriptors and /proc status, then either exits (inspect) or waits to be killed.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Host, type ExecutionMode } from '../../src/host/host.js';
import { assessSandbox, vmProcessTree, type SandboxMode } from '../../src/host/sandbox/plan.js';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';

export interface VmView {
  pid: number;
  fds: string[];
  status: Record<string, string>;
  ns: Record<string, string>;
  cgroup: string;
}

/**
 * Waits until the VM's node process has connected to the host (a socket above stderr), then a little longer:
 * by then it has entered its sandbox and runs the wasm loop. Before that the launcher may still be preparing
 * the process (as root, before exec), which is not what the VM looks like to a contract.
 */
export async function waitConnected(pid: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const tree = vmProcessTree(pid);
    const node = tree[tree.length - 1]!;
    try {
      const isNode = readFileSync(`/proc/${node}/cmdline`, 'utf8').includes('hostlink.js');
      const fds = readdirSync(`/proc/${node}/fd`).filter((fd) => Number(fd) > 2);
      if (isNode && fds.some((fd) => readlinkSync(`/proc/${node}/fd/${fd}`).startsWith('socket:'))) break;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 300));
}

export function inspectVm(pid: number): VmView[] {
  return vmProcessTree(pid).map((p) => {
    const fds = readdirSync(`/proc/${p}/fd`).map((fd) => {
      try {
        return `${fd}=${readlinkSync(`/proc/${p}/fd/${fd}`)}`;
      } catch {
        return `${fd}=?`;
      }
    });
    const status: Record<string, string> = {};
    for (const line of readFileSync(`/proc/${p}/status`, 'utf8').split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) status[line.slice(0, i)] = line.slice(i + 1).trim();
    }
    const ns: Record<string, string> = {};
    for (const n of ['net', 'ipc', 'mnt', 'uts', 'pid']) ns[n] = readlinkSync(`/proc/${p}/ns/${n}`);
    return { pid: p, fds, status, ns, cgroup: readFileSync(`/proc/${p}/cgroup`, 'utf8') };
  });
}

async function main(): Promise<void> {
  const [mode, sandbox, dataDir, holdPath, inspect] = process.argv.slice(2) as [ExecutionMode, SandboxMode, string, string, string?];
  const host = await Host.open({ dataDir, mode, poolSize: 1, sandbox, killGraceMs: 100 });
  const hold = await host.deploy(Uint8Array.from(readFileSync(holdPath)));
  const call = host.call({ codeHash: hold, method: 'write_then_loop', contextId: new Uint8Array(32), deadlineMs: 60_000, gasLimit: 2n ** 62n });
  let pids: number[] = [];
  while (pids.length === 0) {
    await new Promise((r) => setTimeout(r, 20));
    pids = host.busyVmPids();
  }
  await waitConnected(pids[0]!);
  const layers = assessSandbox(sandbox, 'unix', HOSTLINK_BIN).layers.map((l) => `${l.name}:${l.state}`);
  process.stdout.write(JSON.stringify({ hostPid: process.pid, vms: inspectVm(pids[0]!), layers }) + '\n');
  if (inspect) {
    for (const p of pids) process.kill(p, 'SIGKILL');
    await call;
    await host.close();
    return;
  }
  await call; // never: the test kills this process
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) void main();
