/**
 * The `hostlink` command: a thin dispatcher. Each command lives in src/cli/commands/<name>.ts and is loaded
 * only when used, so `hostlink vm` (started once per execution) pays for nothing else.
 */
import { refusalHint } from '../contract/hints.js';
import { HostlinkError } from '../errors.js';
import { consoleText } from '../terminal-text.js';

export interface CommandModule {
  /** Runs the command; returns the process exit code. */
  run(argv: string[]): Promise<number>;
  /** Help text; when present, `--help`/`-h` prints it here and the command does not run. */
  usage?: string;
}

interface CommandEntry {
  summary: string;
  load: () => Promise<CommandModule>;
}

/** Registry: add a command by adding a line here and a module in commands/. */
const COMMANDS: Record<string, CommandEntry> = {
  new: { summary: 'create a contract project: hostlink new NAME', load: () => import('./commands/new.js') },
  build: { summary: 'compile a contract project, embed its ABI, run the deploy checks: hostlink build [DIR] [--watch]', load: () => import('./commands/build.js') },
  check: { summary: 'run the deploy-time checks on a module and say how to fix it: hostlink check FILE.wasm', load: () => import('./commands/check.js') },
  inspect: { summary: "print a contract's methods, shapes and events: hostlink inspect (FILE.wasm|HASH)", load: () => import('./commands/inspect.js') },
  demo: { summary: 'deploy the kv-store example and call it through real VM processes', load: () => import('./commands/demo.js') },
  deploy: { summary: 'store a contract: hostlink deploy FILE.wasm', load: () => import('./commands/deploy.js') },
  call: { summary: 'run a contract method: hostlink call (FILE.wasm|HASH) METHOD [--input JSON|@file]', load: () => import('./commands/call.js') },
  view: { summary: 'run a contract method without applying anything: hostlink view (FILE.wasm|HASH) METHOD', load: () => import('./commands/view.js') },
  state: { summary: "show a context's keys, values and state root: hostlink state CONTEXT", load: () => import('./commands/state.js') },
  serve: { summary: 'run a node with an HTTP API, /metrics and the studio: hostlink serve [--listen HOST:PORT]', load: () => import('./commands/serve.js') },
  contexts: { summary: 'list the contexts with state, their size and root: hostlink contexts', load: () => import('./commands/contexts.js') },
  verify: { summary: 'read the whole store and check every code and state root against its hashes: hostlink verify', load: () => import('./commands/verify.js') },
  codes: { summary: 'list the deployed contracts: hostlink codes', load: () => import('./commands/codes.js') },
  id: { summary: 'print the id a name stands for: hostlink id NAME', load: () => import('./commands/id.js') },
  doctor: { summary: 'check this installation (channel, Node, socat) and say what is missing', load: () => import('./commands/doctor.js') },
  vm: { summary: 'the VM process (started by the host): hostlink vm --host ADDR [--message JSON]', load: () => import('./commands/vm.js') },
  guest: { summary: 'ask the host OS for a privileged operation: hostlink guest COMMAND', load: () => import('./commands/guest.js') },
  worker: { summary: 'run VM slots for a node on another machine: hostlink worker --runtime HOST:PORT --slots N', load: () => import('./commands/worker.js') },
  agent: { summary: 'serve guest requests on the host: hostlink agent [--listen ADDR] [--config FILE]', load: () => import('./commands/agent.js') },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'usage: hostlink <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    'Run `hostlink <command> --help` for a command\'s options. Add --verbose to see stack traces.',
  ].join('\n');
}

/**
 * A reader that goes away (`hostlink state --json | head`) closes our stdout: stop quietly, as Unix tools do,
 * instead of dying on an unhandled EPIPE with a stack trace.
 */
function exitQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
}

export async function main(argv: string[]): Promise<number> {
  exitQuietlyOnClosedPipe();
  const verbose = argv.includes('--verbose');
  const args = argv.filter((a) => a !== '--verbose');
  const name = args[0];
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    const { HOSTLINK_VERSION } = await import('../version.js');
    process.stdout.write(HOSTLINK_VERSION + '\n');
    return 0;
  }
  // Own names only: `constructor`, `toString` and the rest of Object.prototype are not commands.
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    process.stderr.write(`hostlink: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  try {
    const mod = await entry.load();
    const rest = args.slice(1);
    if (mod.usage !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
      process.stdout.write(mod.usage + '\n');
      return 0;
    }
    return await mod.run(rest);
  } catch (err) {
    return reportError(err, verbose);
  }
}

/**
 * One clear line on stderr (a stack trace only with --verbose); exit 2 for usage errors, 1 otherwise. Messages
 * may quote a contract, a VM or a worker: their control characters are dropped.
 */
export function reportError(err: unknown, verbose: boolean): number {
  if (err instanceof HostlinkError) {
    const hint = refusalHint(err.message);
    process.stderr.write(`hostlink: ${consoleText(err.message)}${hint ? `\n  fix: ${hint}` : ''}\n`);
    if (verbose && err.stack) process.stderr.write(consoleText(err.stack) + '\n');
    return err.code === 'usage' || err.code === 'invalid_message' ? 2 : 1;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  process.stderr.write(`hostlink: ${consoleText(e.message)}${verbose ? '' : ' (run with --verbose for details)'}\n`);
  if (verbose && e.stack) process.stderr.write(consoleText(e.stack) + '\n');
  return 1;
}
