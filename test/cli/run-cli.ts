/**
 * Runs the real `hostlink` command in a folder, for CLI tests: `run(...args)` gives exit code and output,
 * `json(args)` adds --json, requires exit 0 and parses stdout.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cliIn(cwd: string): { run: (...args: string[]) => CliResult; json: <T>(args: string[]) => T } {
  const run = (...args: string[]): CliResult => {
    const r = spawnSync(process.execPath, [HOSTLINK_BIN, ...args], { encoding: 'utf8', cwd });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const json = <T>(args: string[]): T => {
    const r = run(...args, '--json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };
  return { run, json };
}
