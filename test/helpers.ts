/** Shared test helpers: paths, example contracts, an in-memory session backend, temp dirs, a socket pair. */
import { createHash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SessionBackend } from '../src/host/methods.js';
import { buildMessage, type MessageInit } from '../src/protocol/message.js';

/** The repository root (tests run from dist/test/). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function contractPath(name: string): string {
  for (const dir of ['examples', 'test/contracts', 'bench/contracts']) {
    const p = join(ROOT, dir, name, 'build', `${name}.wasm`);
    try {
      readFileSync(p);
      return p;
    } catch {
      // try the next folder
    }
  }
  throw new Error(`contract ${name} is not built: run npm run build`);
}

export function contract(name: string): Uint8Array {
  return Uint8Array.from(readFileSync(contractPath(name)));
}

export const sha256 = (b: Uint8Array): Uint8Array => Uint8Array.from(createHash('sha256').update(b).digest());
export const utf8 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'utf8'));
export const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
export const id32 = (name: string): Uint8Array => sha256(utf8(name));

/**
 * In-memory backend for unit tests of the VM/session path. The real one (LMDB through Host) is exercised by
 * test/host/*.test.ts with the same contracts.
 */
export class MemoryBackend implements SessionBackend {
  readonly code = new Map<string, Uint8Array>();
  readonly state = new Map<string, Uint8Array>();
  reads = 0;

  deploy(bytes: Uint8Array): Uint8Array {
    const hash = sha256(bytes);
    this.code.set(Buffer.from(hash).toString('hex'), bytes);
    return hash;
  }
  getCode(hash: Uint8Array): Uint8Array | undefined {
    return this.code.get(Buffer.from(hash).toString('hex'));
  }
  private key(ctx: Uint8Array, key: Uint8Array): string {
    return Buffer.from(ctx).toString('hex') + ':' + Buffer.from(key).toString('hex');
  }
  readState(ctx: Uint8Array, key: Uint8Array): Uint8Array | undefined {
    this.reads++;
    return this.state.get(this.key(ctx, key));
  }
  /** Like the LMDB store's: counted in `reads` only when it hands the value over. */
  readStateWithin(ctx: Uint8Array, key: Uint8Array, most: number): Uint8Array | number | undefined {
    const v = this.state.get(this.key(ctx, key));
    if (v === undefined || v.length > most) return v?.length;
    this.reads++;
    return v;
  }
  apply(ctx: Uint8Array, writes: [Uint8Array, Uint8Array | null][]): void {
    for (const [k, v] of writes) {
      if (v === null) this.state.delete(this.key(ctx, k));
      else this.state.set(this.key(ctx, k), v);
    }
  }
}

export function message(init: Partial<MessageInit> & { codeHash: Uint8Array; method: string }): string {
  return buildMessage({ contextId: id32('test-context'), executorId: id32('test-executor'), ...init });
}

export function tempDir(prefix = 'hostlink-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * A connected unix socket pair: `server` as the host accepts it (paused, as the gate hands it on), `client` the
 * dialling side. `close` destroys both and removes the socket's folder.
 */
export async function unixSocketPair(): Promise<{ server: Socket; client: Socket; close: () => void }> {
  const dir = tempDir('hostlink-sockets-');
  const path = join(dir.path, 's.sock');
  const listener: Server = createServer({ pauseOnConnect: true });
  await new Promise<void>((r) => listener.listen(path, r));
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const client = connect({ path });
  await once(client, 'connect');
  const [server] = await accepted;
  return {
    server,
    client,
    close: () => {
      client.destroy();
      server.destroy();
      listener.close();
      dir.remove();
    },
  };
}

/**
 * The exit code (or signal name) of `child`, once it has exited AND its piped stdout/stderr have been read to the end:
 * 'exit' can come before the last output is read, and a test that then matches the output raced the pipe. A
 * grandchild still holding a pipe open cannot hold this up longer than `graceMs` after the exit.
 */
export function exitAfterOutput(child: ChildProcess, graceMs = 5_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const ended = (s: NodeJS.ReadableStream | null): Promise<unknown> =>
    s === null || (s as { readableEnded?: boolean }).readableEnded === true ? Promise.resolve() : new Promise((r) => s.once('end', r).once('close', r));
  const streams = Promise.all([ended(child.stdout), ended(child.stderr)]);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return exited.then(async (status) => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([streams, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    return status;
  });
}

/** Waits until a VM of `host` runs a call, then SIGKILLs it; returns its pid. */
export async function killBusyVm(host: { busyVmPids(): number[] }): Promise<number> {
  let pids: number[] = [];
  while (pids.length === 0) {
    await new Promise((r) => setTimeout(r, 20));
    pids = host.busyVmPids();
  }
  process.kill(pids[0]!, 'SIGKILL');
  return pids[0]!;
}

/** xorshift32: a small deterministic generator for property tests (never Math.random: failures reproduce). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  u32(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return this.u32() % n;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
  shuffle<T>(items: T[]): T[] {
    const a = [...items];
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }
}
