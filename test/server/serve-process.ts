/** Starts a real `hostlink serve` process for tests and waits for the URL it prints. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { readFileSync } from 'node:fs';
import { contractPath, exitAfterOutput } from '../helpers.js';

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** SIGTERM, then wait for the exit. */
  stop: () => Promise<number | string>;
}

/** `prefix`: run under a wrapper, e.g. a shell that lowers a limit first (`sh -c '…; exec "$0" "$@"'`). */
export function startServe(args: string[], env: Record<string, string> = {}, prefix: string[] = []): Promise<ServeProcess> {
  const argv = [...prefix, process.execPath, HOSTLINK_BIN, 'serve', '--listen', '127.0.0.1:0', ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = exitAfterOutput(child).then((s): number | string => s.code ?? s.signal ?? 'unknown');
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+\/)/.exec(out);
      if (m) {
        resolve({
          url: m[1]!,
          child,
          stderr: () => err,
          exited,
          stop: () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    void exited.then((code) => reject(new Error(`hostlink serve exited (${code}) before listening: ${err}`)));
  });
}

/** fetch + JSON, with the status. */
export async function api(url: string, init: RequestInit & { json?: unknown } = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const { json, ...rest } = init;
  const res = await fetch(url, json === undefined ? rest : { method: 'POST', ...rest, headers: { 'content-type': 'application/json', ...rest.headers }, body: JSON.stringify(json) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (metrics, studio)
  }
  return { status: res.status, body, headers: res.headers };
}

/**
 * Runs the hostlink CLI to its end without blocking this process (unlike spawnSync): a test that holds
 * keep-alive connections to a server must keep its event loop turning, or it misses the server closing them.
 */
export function runCli(args: string[], options: SpawnOptions = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HOSTLINK_BIN, ...args], { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Deploys the kv-store example to a running node; returns its code hash. */
export async function deployKvStore(node: ServeProcess): Promise<string> {
  const r = await api(`${node.url}api/codes`, { method: 'POST', headers: { 'content-type': 'application/wasm' }, body: readFileSync(contractPath('kv-store')) });
  if (r.status !== 201) throw new Error(`deploying kv-store answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.code_hash as string;
}
