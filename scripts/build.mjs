#!/usr/bin/env node
// Builds everything the product needs, skipping what is up to date:
//   1. TypeScript (tsc, incremental) into dist/, in a child process
//   2. meanwhile, every AssemblyScript contract under examples/*/, test/contracts/*/ and bench/contracts/*/ into
//      <dir>/build/<name>.wasm, in this process: one warm compiler for all of them costs about a third of the
//      CPU of one `asc` process per contract (the compiler's JIT warm-up dominates a small contract), and the two
//      steps use two cores. This is most of `npm install`'s own time in a clone.
//   3. the VM's start-up snapshot (scripts/build-vm-snapshot.mjs) from the compiled VM modules
// The native channel addon is built by scripts/build-native.mjs at `npm install` time.
// Generated sources are NOT rewritten here: `npm run codegen` does that, and a test fails when they are stale.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const log = (s) => { if (!quiet) process.stdout.write(`build: ${s}\n`); };
const require = createRequire(import.meta.url);
// Contracts' asc-flags.json name paths relative to the repository (e.g. the SDK's abort handler).
process.chdir(ROOT);

/** Runs a command in a child process; resolves with its exit status and (in quiet mode) its output. */
function start(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    let output = '';
    child.stdout?.on('data', (d) => (output += d));
    child.stderr?.on('data', (d) => (output += d));
    child.on('close', (status, signal) => resolve({ status, signal, output }));
  });
}

function fail(what, status, output) {
  if (quiet && output) process.stderr.write(output);
  process.stderr.write(`build: ${what} failed (exit ${status})\n`);
  process.exit(1);
}

function newestMtime(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = 0;
  for (const e of readdirSync(path)) if (e !== 'build' && e !== 'node_modules') m = Math.max(m, newestMtime(join(path, e)));
  return m;
}

log('compiling TypeScript');
const tsc = start(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json']);

// AssemblyScript contracts: a folder with assembly/index.ts is a contract named after the folder.
const ascDir = dirname(require.resolve('assemblyscript/package.json'));
let asc; // loaded on first use: a build with every contract up to date does not pay for it
const sdkMtime = newestMtime(join(ROOT, 'sdk/assemblyscript/assembly'));
let ascFailed = false;
for (const parent of ['examples', 'test/contracts', 'bench/contracts']) {
  const base = join(ROOT, parent);
  if (!existsSync(base)) continue;
  for (const name of readdirSync(base)) {
    const dir = join(base, name);
    const entry = join(dir, 'assembly', 'index.ts');
    if (!existsSync(entry)) continue;
    const out = join(dir, 'build', `${name}.wasm`);
    if (existsSync(out) && statSync(out).mtimeMs >= Math.max(newestMtime(join(dir, 'assembly')), sdkMtime)) continue;
    mkdirSync(join(dir, 'build'), { recursive: true });
    log(`compiling contract ${parent}/${name}`);
    asc ??= await import(pathToFileURL(join(ascDir, 'dist', 'asc.js')).href);
    // Deterministic, small output; the runtime is minimal and exports no start function.
    const extra = existsSync(join(dir, 'asc-flags.json')) ? JSON.parse(readFileSync(join(dir, 'asc-flags.json'), 'utf8')) : [];
    const { error, stdout, stderr } = await asc.main([entry, '-o', out, '--optimize', '--runtime', 'stub', '--noAssert', '--exportRuntime', ...extra], {});
    if (!quiet) process.stdout.write(stdout.toString());
    if (error) {
      process.stderr.write(stderr.toString());
      process.stderr.write(`build: asc ${name} failed (${error.message})\n`);
      ascFailed = true;
    } else if (!quiet) process.stderr.write(stderr.toString());
  }
}
const t = await tsc;
if (t.status !== 0) fail('tsc', t.status ?? t.signal, t.output);
if (ascFailed) process.exit(1);
// The VM's start-up snapshot from the compiled VM modules (skipped when up to date; a failure only costs speed).
log('VM start-up snapshot');
const snap = await start(process.execPath, [join(ROOT, 'scripts', 'build-vm-snapshot.mjs'), ...(quiet ? ['--quiet'] : [])]);
if (quiet && snap.output) process.stderr.write(snap.output);
log('done');
