/**
 * What the executor needs from a VM, however it was started: a local child process (supervisor.ts), a process
 * that announced itself through the runtime handshake, or a slot on a remote worker. Every launcher hands back
 * a `VmHandle` whose connection has already proved the VM's secret (vm-gate.ts), so deadlines, crashes and
 * protocol errors are handled the same way for all of them, in one place.
 */
import type { Socket } from 'node:net';
import type { VmCrash } from './job.js';

export interface VmExit {
  exitCode: number | null;
  signal: string | null;
}

/** How a VM will be used, for events and for launchers that size themselves: a pool worker or one process per call. */
export type VmRole = 'pool' | 'oneshot';

export interface VmHandle {
  /** The VM's process id where the host knows it (a remote worker's VM: the id on that machine, 0 if unknown). */
  readonly pid: number;
  /**
   * The VM's connection once it proved its secret: paused, its hello unread (hand it to serveSession). Rejects
   * when the VM ends first.
   */
  readonly connection: Promise<Socket>;
  /** Resolves once the VM is gone (its process exited, or its remote slot closed). Never rejects. */
  readonly exited: Promise<VmExit>;
  readonly hasExited: boolean;
  /** What to report when the VM ended without a result. */
  crash(): VmCrash;
  /** The last lines the VM wrote to stderr (for start-up failures). */
  stderrTail(): string;
  /** SIGTERM (or its remote equivalent), then SIGKILL after `graceMs`. Resolves when the VM is gone. */
  stop(graceMs: number): Promise<VmExit>;
  /** Waits up to `graceMs` for the VM to end by itself, then stops it. */
  reap(graceMs: number): Promise<VmExit>;
}

/** Starts VMs of one kind. `launch` rejects with a HostlinkError when no VM could be started. */
export interface Launcher {
  readonly kind: 'process' | 'runtime' | 'remote' | 'thread';
  launch(role: VmRole): Promise<VmHandle>;
  /** Most VMs this launcher can run at once right now (remote: registered slots); undefined when unbounded. */
  capacity?(): number;
  close?(): Promise<void>;
}

/** `VmHandle.reap` for any handle: waits up to `graceMs` for the VM to end by itself, then stops it. */
export async function reapWithin(vm: Pick<VmHandle, 'exited' | 'stop'>, graceMs: number): Promise<VmExit> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), graceMs);
  });
  const first = await Promise.race([vm.exited, timedOut]);
  clearTimeout(timer);
  return first === 'timeout' ? vm.stop(graceMs) : first;
}
