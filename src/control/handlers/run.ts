/**
 * Runs a configured command (argv, no shell) and turns its failure into the text the guest sees. At most
 * `maxCommands` run at once (CommandSlots); a spawn that fails, even for lack of descriptors (EMFILE), is an
 * error for that request, never an unhandled 'error' event that would end the agent.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const MAX_CAPTURE = 4096;

/** The abort reason of a request's signal when the agent shuts down; a timeout aborts without one. */
export const AGENT_STOPPING = 'the agent is stopping';

/** The reply to a request the agent will not carry out because it is shutting down. */
export const STOPPING_REFUSAL = `${AGENT_STOPPING}: the request was not carried out; retry when the host's agent is running again`;

/** Why `signal` stopped a request's work, as the reply says it: the agent shutting down, else the time limit. */
export function whyStopped(signal: AbortSignal | undefined): string {
  return signal?.reason === AGENT_STOPPING ? AGENT_STOPPING : 'the request timed out';
}

/** Replaces `{name}` placeholders in every argument. */
export function fillPlaceholders(argv: readonly string[], values: Record<string, string>): string[] {
  return argv.map((a) => a.replace(/\{([a-z_]+)\}/g, (whole, name: string) => values[name] ?? whole));
}

export function describeCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/**
 * A counting semaphore for commands. Waiters are requests holding a connection, so their number is bounded by
 * the connection limits; a waiter whose request times out leaves the queue.
 */
export class CommandSlots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly max: number,
    /** What a waiter that times out was refused for. */
    private readonly timedOut = `the command was not started: the request timed out while ${max} commands (maxCommands) were running`,
  ) {}

  async acquire(signal: AbortSignal): Promise<() => void> {
    if (this.running >= this.max) {
      await new Promise<void>((resolve, reject) => {
        const go = (): void => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = this.waiting.indexOf(go);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new Error(signal.reason === AGENT_STOPPING ? STOPPING_REFUSAL : this.timedOut));
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(go);
      });
    } else {
      this.running++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.running--;
    };
  }
}

/** How long a stopped command has between SIGTERM and SIGKILL, and its leftovers between exit and SIGKILL. */
const KILL_GRACE_MS = 2000;

/**
 * Resolves when the command exits 0; rejects with `command X failed (exit N): <stderr>` otherwise. The command
 * runs in a process group of its own: when the request times out the group gets SIGTERM, then SIGKILL a grace
 * later, and once the command exits whatever it left running in its group is killed. A command that ignored
 * SIGTERM, or that left a child holding its output, used to hold its slot (maxCommands) until that process ended.
 */
export function runCommand(argv: readonly string[], signal?: AbortSignal): Promise<void> {
  const shown = describeCommand(argv);
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error(`command ${shown} was not started: ${whyStopped(signal)}`));
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (e) {
      return reject(new Error(`command ${shown} could not be started: ${(e as Error).message}`));
    }
    const group = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // ESRCH: the group is gone already.
      }
    };
    let killer: NodeJS.Timeout | undefined;
    const killLater = (): void => {
      killer ??= setTimeout(() => {
        group('SIGKILL');
        // A process that left the group may still hold the pipes: stop reading them, so the request ends.
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, KILL_GRACE_MS);
      killer.unref();
    };
    // Listen for 'error' before anything else: with EMFILE, Node returns a child without stdio and emits
    // 'error' on the next tick.
    const onAbort = (): void => {
      group('SIGTERM');
      killLater();
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort);
      const why =
        e.code === 'ENOENT'
          ? 'program not found'
          : e.code === 'EMFILE' || e.code === 'ENFILE' || e.code === 'EAGAIN'
            ? `the host is out of processes or file descriptors (${e.code}); retry later`
            : e.code ?? e.message;
      reject(new Error(`command ${shown} could not be started: ${why}`));
    });
    let out = '';
    let err = '';
    const keep = (s: string, chunk: Buffer): string => (s.length < MAX_CAPTURE ? s + chunk.toString('utf8') : s);
    child.stdout?.on('data', (c: Buffer) => (out = keep(out, c))).on('error', () => undefined);
    child.stderr?.on('data', (c: Buffer) => (err = keep(err, c))).on('error', () => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    // The command itself ended: what it left in its group is stopped, so its pipes close and the request ends.
    child.on('exit', () => {
      group('SIGKILL');
      killLater();
    });
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (killer !== undefined) clearTimeout(killer);
      if (code === 0) return resolve();
      const text = (err.trim() || out.trim()).slice(0, MAX_CAPTURE);
      const how = signal?.aborted ? `was stopped because ${whyStopped(signal)}` : `failed (${code !== null ? `exit ${code}` : `signal ${sig}`})`;
      reject(new Error(`command ${shown} ${how}${text ? `: ${text}` : ''}`));
    });
  });
}
