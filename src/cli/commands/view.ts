/** `hostlink view (FILE.wasm|HASH) METHOD`: run a method against the committed state and apply nothing. */
import { HOST_OPTIONS_HELP, ID_HELP, parse } from '../common.js';
import { LOCAL_RUN_OPTIONS_HELP, OPTIONS as CALL_OPTIONS, RUN_OPTIONS_HELP, run as runCall } from './call.js';

export const usage = `usage: hostlink view (FILE.wasm|HASH) METHOD [--input JSON|@file] [--context ID] [--executor ID] [--gas N]

Runs METHOD of a contract in a VM process against the context's committed state and applies nothing: its
writes, events and follow-ups are discarded (the output says "not applied"; --json has "applied": false).
A FILE.wasm is deployed first. Exit code 0 when the method returned, 1 when it failed.

${RUN_OPTIONS_HELP}
${LOCAL_RUN_OPTIONS_HELP}
  (--fetch-allow, --datetime and --seed run on this machine: not with --server)

${ID_HELP}

${HOST_OPTIONS_HELP}`;

/** call's options without the ones that apply a call (--validators) or select a view (this command is one). */
const { validators: _validators, view: _view, ...OPTIONS } = CALL_OPTIONS;

export async function run(argv: string[]): Promise<number> {
  parse(argv, OPTIONS, usage); // refuses call's own options in view's words
  return runCall(['--view', ...argv]);
}
