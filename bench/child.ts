/**
 * Runs one bench measurement in a fresh Node process and hands its result back as JSON.
 *
 * A host measured inside the bench's own process shares its heap with whatever the earlier sections left:
 * after the state-root section that is ~400 MB of garbage (mpt's 100k-key trie, the stores' caches) that no
 * collection had reclaimed yet, and the host then paid for it, in scavenges that scan a grown old generation
 * and in a mark-compact that could pause it for seconds. The same steady pooled row read about half the
 * executions per second of a fresh process. A node's host process holds the node's own data, not a
 * benchmark's, so each executions row now runs in a process of its own, started as `node` with this
 * process's flags, like a node would be.
 *
 * The child (bench/child-main.ts: a module of its own, as the measured modules import this one) imports `module`, calls its export `name` with the JSON-decoded arguments and writes the JSON of
 * the awaited result to descriptor 3, so whatever the measurement prints on stdout or stderr passes through.
 * Arguments are JSON: null stands for undefined, so an optional argument can be left out in the middle.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** `nodeFlags` are added to this process's own flags on the child's command line. */
export async function inChild<T>(module: string, name: string, args: readonly unknown[], nodeFlags: readonly string[] = []): Promise<T> {
  const child = spawn(process.execPath, [...process.execArgv, ...nodeFlags, fileURLToPath(new URL('./child-main.js', import.meta.url)), module, name, JSON.stringify(args)], {
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
  });
  const chunks: Buffer[] = [];
  child.stdio[3]!.on('data', (c: Buffer) => chunks.push(c));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  });
  if (code !== 0) throw new Error(`bench child ${name}(${JSON.stringify(args)}) exited with code ${code}: its output is above`);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
}
