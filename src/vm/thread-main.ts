/**
 * A VM run as a worker thread of the host (launcher 'thread', src/host/thread-launcher.ts): the same VM loop as
 * `hostlink vm` (serveHost in process.ts) without what only a process may do. The secret arrives in workerData
 * (never argv or env), stdin is never read (fd 0 is the host's), and no sandbox is entered: seccomp and closing
 * descriptors would act on the host process itself. A spare thread (started before it is needed, so that a
 * one-shot call does not wait for the VM's modules to load) gets the same data in one message instead. The
 * thread ends with process.exit(code), which in a worker ends only the thread; the launcher reports that code
 * as the VM's exit code.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseAddress } from '../transport/address.js';
import { connectJs } from '../transport/js-channel.js';
import { HostClient } from './host-client.js';
import { serveHost, VM_EXIT } from './process.js';
import { THREAD_VM_SPARE, type ThreadVmData } from './thread-data.js';

async function main(data: ThreadVmData): Promise<number> {
  // The JS channel, not the native one: its socket is a libuv handle of this thread, closed when the thread is
  // terminated (deadline, stop). A native channel's descriptor would outlive a terminated thread in the host.
  let host: HostClient;
  try {
    host = new HostClient(await connectJs(parseAddress(data.host)));
  } catch (e) {
    process.stderr.write(`hostlink vm: ${(e as Error).message}\n`);
    return VM_EXIT.hostLost;
  }
  return serveHost(host, Uint8Array.from(data.secret));
}

if (isMainThread) {
  process.stderr.write('hostlink vm: thread-main runs only as a worker thread started by the host\n');
  process.exitCode = VM_EXIT.usage;
} else if (workerData === THREAD_VM_SPARE) {
  // Started ahead of need with its modules loaded: waits for its listener and secret over the parent port, which
  // only the host holds (like workerData, never argv or env).
  parentPort?.once('message', (data: ThreadVmData) => {
    void main(data).then((code) => process.exit(code));
  });
} else {
  process.exit(await main(workerData as ThreadVmData));
}
