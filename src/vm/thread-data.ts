/**
 * What the host hands a VM thread (src/vm/thread-main.ts), shared with the thread launcher
 * (src/host/thread-launcher.ts). Its own module: importing thread-main would run the VM thread's entry code.
 */

/** The VM thread's listener and secret: in workerData, or for a spare thread in one message on its parent port. */
export interface ThreadVmData {
  /** The private listener's address (formatAddress). */
  host: string;
  /** The VM's secret, proved in hello. */
  secret: Uint8Array;
}

/** workerData of a thread started ahead of need (the launcher's spare): its ThreadVmData comes in one message. */
export const THREAD_VM_SPARE = 'spare';
