/** Runs a configured command (argv, no shell) and turns its failure into the text the guest sees. */
import { spawn } from 'node:child_process';

const MAX_CAPTURE = 4096;

/** Replaces `{name}` placeholders in every argument. */
export function fillPlaceholders(argv: readonly string[], values: Record<string, string>): string[] {
  return argv.map((a) => a.replace(/\{([a-z_]+)\}/g, (whole, name: string) => values[name] ?? whole));
}

export function describeCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** Resolves when the command exits 0; rejects with `command X failed (exit N): <stderr>` otherwise. */
export function runCommand(argv: readonly string[], signal?: AbortSignal): Promise<void> {
  const shown = describeCommand(argv);
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error(`command ${shown} was not started: the request timed out`));
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const keep = (s: string, chunk: Buffer): string => (s.length < MAX_CAPTURE ? s + chunk.toString('utf8') : s);
    child.stdout!.on('data', (c: Buffer) => (out = keep(out, c)));
    child.stderr!.on('data', (c: Buffer) => (err = keep(err, c)));
    const onAbort = (): void => {
      child.kill('SIGTERM');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new Error(`command ${shown} could not be started: ${e.code === 'ENOENT' ? 'program not found' : e.message}`));
    });
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (code === 0) return resolve();
      const text = (err.trim() || out.trim()).slice(0, MAX_CAPTURE);
      const how = signal?.aborted ? 'was stopped because the request timed out' : `failed (${code !== null ? `exit ${code}` : `signal ${sig}`})`;
      reject(new Error(`command ${shown} ${how}${text ? `: ${text}` : ''}`));
    });
  });
}
