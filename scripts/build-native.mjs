#!/usr/bin/env node
// Builds the native parts (native/: the VM's socket channel, the sandbox, its launcher, the state tree's SHA-256) with
// the node-gyp that npm bundles. A failure is not fatal: the channel and the state hash fall back to JavaScript, and
// `hostlink doctor` says what is missing (a required sandbox then refuses to start VMs, with that reason).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(ROOT, 'native');
if (!existsSync(join(nativeDir, 'binding.gyp'))) process.exit(0);

const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter((p) => p && existsSync(p));
if (candidates.length === 0) {
  process.stderr.write('hostlink: node-gyp not found; the native parts are not built (run `hostlink doctor` to see what falls back)\n');
  process.exit(0);
}
// Outside `npm install` (which passes ~/.npmrc's nodedir), point node-gyp at the installed headers instead of downloading them.
const prefix = join(dirname(process.execPath), '..');
const nodedir = !process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'common.gypi')) ? [`--nodedir=${prefix}`] : [];
const r = spawnSync(process.execPath, [candidates[0], 'rebuild', ...nodedir], { cwd: nativeDir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (r.status !== 0) {
  process.stderr.write(r.stdout + r.stderr);
  process.stderr.write('hostlink: building the native parts failed; run `hostlink doctor` to see what falls back or is unavailable\n');
}
