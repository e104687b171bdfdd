/**
 * Shared pieces of the remote-worker tests: start a real `hostlink worker` process, wait for conditions, read
 * a process's parent chain (to find which worker runs a given VM), and kv-store call checks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TlsFiles } from '../../src/worker/tls.js';
import { exitAfterOutput, ROOT } from '../helpers.js';

export const HOSTLINK = join(ROOT, 'bin', 'hostlink.js');

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything it wrote to stderr so far. */
  output(): string;
  /** Its exit code (null when killed by a signal). */
  exit: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface WorkerArgs {
  runtime: string;
  slots: number;
  listen: string;
  tls: TlsFiles;
  token?: string;
  extra?: string[];
  /** Runs the worker under this prefix (e.g. `ip netns exec NAME`). */
  prefix?: string[];
}

export function startWorkerProcess(a: WorkerArgs): WorkerProcess {
  const args = [
    HOSTLINK, 'worker', '--runtime', a.runtime, '--slots', String(a.slots), '--listen', a.listen,
    '--cert', a.tls.cert, '--key', a.tls.key, '--ca', a.tls.ca,
    ...(a.token !== undefined ? ['--token-file', a.token] : []),
    ...(a.extra ?? []),
  ];
  const command = a.prefix !== undefined ? [...a.prefix, process.execPath, ...args] : [process.execPath, ...args];
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr!.on('data', (c: Buffer) => {
    text += c.toString('utf8');
  });
  const exit = exitAfterOutput(child).then((s) => s.code);
  return {
    child,
    output: () => text,
    exit,
    kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exit;
    },
  };
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A TCP port that was free a moment ago (for a worker that must come back on the same address). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** pid, its parent, its parent's parent... (Linux /proc). */
export function ancestors(pid: number): number[] {
  const out: number[] = [];
  let p = pid;
  for (let i = 0; i < 32 && p > 1; i++) {
    out.push(p);
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return out;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
