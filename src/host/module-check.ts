/**
 * The deploy check off the event loop: WebAssembly validation and instrumentation of a module run in one
 * worker thread, one module at a time (later deploys queue), so a large or hostile module never stalls the
 * calls the host is serving. The worker starts on first use, is unref'd while idle, and is restarted if it dies
 * (out of memory, for example); the deploy it was checking then fails with a named error.
 */
import { Worker } from 'node:worker_threads';
import { HostlinkError } from '../errors.js';
import type { FloatPolicy, VmLimits } from '../protocol/message.js';
import type { CheckAnswer, CheckRequest } from './module-check-worker.js';

/** Heap of the check worker: ample for a module at max_module_size, bounded so a bug cannot take the host's memory. */
const WORKER_HEAP_MB = 1024;

interface Pending {
  resolve: (a: CheckAnswer) => void;
  reject: (e: Error) => void;
}

export class ModuleChecker {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  /** Resolves when the module would run under these limits; rejects with HostlinkError('usage') naming the rule. */
  async check(code: Uint8Array, limits: VmLimits, floats: FloatPolicy, instrument = true): Promise<void> {
    const answer = await this.ask({ code, limits, floats, instrument });
    switch (answer.kind) {
      case 'ok':
        return;
      case 'invalid':
        throw new HostlinkError('usage', 'not a valid WebAssembly module: deploy the compiled contract (.wasm), not its source');
      case 'rejected':
        throw new HostlinkError('usage', `contract refused: ${answer.message.replace(/^module rejected: /, '')}`);
      case 'failed':
        throw new HostlinkError('internal', `the deploy check failed: ${answer.message}`);
    }
  }

  private ask(request: Omit<CheckRequest, 'id'>): Promise<CheckAnswer> {
    if (this.closed) return Promise.reject(new HostlinkError('usage', 'the host is closed'));
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<CheckAnswer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref(); // keep the process alive while a check is in flight
      worker.postMessage({ id, ...request } satisfies CheckRequest);
    });
  }

  private start(): Worker {
    if (this.worker !== null) return this.worker;
    const w = new Worker(new URL('./module-check-worker.js', import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
      // Not the embedding process's flags: a worker refuses some of them (`node --input-type=module -e ...`
      // would make every deploy fail), and what a deploy accepts must not depend on how the host was started.
      execArgv: [],
    });
    w.on('message', (a: CheckAnswer) => {
      const p = this.pending.get(a.id);
      this.pending.delete(a.id);
      if (this.pending.size === 0) w.unref();
      p?.resolve(a);
    });
    const fail = (why: string): void => {
      if (this.worker === w) this.worker = null;
      for (const p of this.pending.values()) p.reject(new HostlinkError('internal', `the deploy check stopped (${why}); nothing was stored`));
      this.pending.clear();
    };
    w.on('error', (e) => fail(e.message));
    w.on('exit', (code) => fail(`worker exit code ${code}`));
    w.unref();
    this.worker = w;
    return w;
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = null;
    if (w !== null) await w.terminate();
  }
}
