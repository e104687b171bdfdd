#!/usr/bin/env node
// Builds everything the product needs, skipping what is up to date:
//   1. TypeScript (tsc, incremental) into dist/
//   2. every AssemblyScript contract under examples/*/ and test/contracts/*/ into <dir>/build/<name>.wasm
// The native channel addon is built by scripts/build-native.mjs at `npm install` time.
// Generated sources are NOT rewritten here: `npm run codegen` does that, and a test fails when they are stale.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const log = (s) => { if (!quiet) process.stdout.write(`build: ${s}\n`); };
const require = createRequire(import.meta.url);

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit', encoding: 'utf8' });
  if (r.status !== 0) {
    if (quiet) process.stderr.write((r.stdout ?? '') + (r.stderr ?? ''));
    process.stderr.write(`build: ${what} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(1);
  }
}

function newestMtime(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = 0;
  for (const e of readdirSync(path)) if (e !== 'build' && e !== 'node_modules') m = Math.max(m, newestMtime(join(path, e)));
  return m;
}

log('compiling TypeScript');
run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], 'tsc');

// AssemblyScript contracts: a folder with assembly/index.ts is a contract named after the folder.
const asc = join(dirname(require.resolve('assemblyscript/package.json')), 'bin', 'asc.js');
const sdkMtime = newestMtime(join(ROOT, 'sdk/assemblyscript/assembly'));
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
    // Deterministic, small output; the runtime is minimal and exports no start function.
    const extra = existsSync(join(dir, 'asc-flags.json')) ? JSON.parse((await import('node:fs')).readFileSync(join(dir, 'asc-flags.json'), 'utf8')) : [];
    run(process.execPath, [asc, entry, '-o', out, '--optimize', '--runtime', 'stub', '--noAssert', '--exportRuntime', ...extra], `asc ${name}`);
  }
}
log('done');
