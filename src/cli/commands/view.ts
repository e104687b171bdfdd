/** `hostlink view (FILE.wasm|HASH) METHOD`: run a method against the committed state and apply nothing. */
import { run as runCall, usage as callUsage } from './call.js';

export const usage = `usage: hostlink view (FILE.wasm|HASH) METHOD [--input JSON|@file] [--context ID] [options]

Same as hostlink call, but nothing is applied: the method reads the committed state and its writes, events
and follow-ups are discarded (the output says "not applied"; --json has "applied": false). The same as
hostlink call --view. Options:

${callUsage.split('\n').slice(2).join('\n')}`;

export async function run(argv: string[]): Promise<number> {
  return runCall(['--view', ...argv]);
}
