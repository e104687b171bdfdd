#!/usr/bin/env node
// Builds the VM's start-up snapshot (src/vm/snapshot-main.ts; read by src/host/vm-entry.ts), in two steps:
//   1. bundle: the compiled VM entry and every module it imports, as one script (`node --build-snapshot` runs a
//      single script whose `require` knows only Node's built-ins). Each ES module is turned into a CommonJS
//      function by TypeScript's transpiler, so this step needs the dev dependency `typescript` (run by build.mjs).
//      The built-ins Node supports in user snapshots are loaded at build time; the others lazily, on first use
//      after deserialization, so the snapshot never holds their state.
//   2. blob: `node <VM flags> --snapshot-blob vm.blob --build-snapshot entry.cjs`, then vm.json with what the
//      host checks before using it (Node version, arch, flags, installation root, checksums of the blob and of
//      every source module, and each file's stamp taken as its content was checked, so hosts need not read them
//      again). Needs only Node (run again by `npm install` when the bundle exists).
// Either step is skipped when its output is up to date. A failure is not fatal: VMs start from `hostlink vm`.
// Usage: node scripts/build-vm-snapshot.mjs [--quiet] [--blob-only] [--force]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'dist', 'vm-snapshot');
const ENTRY = join(ROOT, 'dist', 'src', 'vm', 'snapshot-main.js');
/** A real contract the snapshot's instrumenter is exercised on at build time (src/vm/snapshot-main.ts). */
const WARM_UP = join(ROOT, 'examples', 'kv-store', 'build', 'kv-store.wasm');
const quiet = process.argv.includes('--quiet');
const force = process.argv.includes('--force');
const say = (s) => process.stderr.write(`build-vm-snapshot: ${s}\n`);
const sha256 = (data) => createHash('sha256').update(data).digest('hex');

/** Built-ins the VM's modules may load while the snapshot is built (the ones Node verified for user snapshots). */
const EAGER_BUILTINS = ['node:buffer', 'node:crypto', 'node:events', 'node:fs', 'node:net', 'node:os', 'node:path', 'node:url', 'node:util', 'node:v8'];

/** Bumped when the bundle's wrapper changes: a bundle written by an older version of this script is rebuilt. */
const BUNDLE_FORMAT = 2;

/** The ES module graph under dist/ reachable from `entry` by static imports, in a stable order. */
function moduleGraph(entry) {
  const seen = new Map();
  const walk = (file) => {
    if (seen.has(file)) return;
    const text = readFileSync(file, 'utf8');
    seen.set(file, text);
    for (const m of text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']+)'|^import\s+'(\.[^']+)'/gms)) {
      walk(resolve(dirname(file), m[1] ?? m[2]));
    }
  };
  walk(entry);
  return seen;
}

/**
 * The names the CommonJS form of a module refers to implicitly (its own exports as `exports.NAME`, its imports
 * through `require`, import.meta.url as the wrapper's `__hostlink_meta_url`) that `text` declares anywhere.
 */
function wrapperNamesDeclared(ts, fileName, text) {
  const reserved = new Set(['exports', 'require', '__hostlink_meta_url']);
  const found = [];
  const visit = (node) => {
    const name = node.name;
    const declares = ts.isVariableDeclaration(node) || ts.isParameter(node) || ts.isFunctionDeclaration(node) || ts.isClassDeclaration(node) || ts.isBindingElement(node);
    if (declares && name !== undefined && ts.isIdentifier(name) && reserved.has(name.text)) found.push(name.text);
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS));
  return found;
}

function bundle() {
  if (!existsSync(ENTRY)) return { skipped: `${relative(ROOT, ENTRY)} is not compiled (run npm run build)` };
  const graph = moduleGraph(ENTRY);
  const sources = {};
  for (const [file, text] of graph) sources[relative(ROOT, file).split('\\').join('/')] = sha256(text);
  const bundlePath = join(OUT, 'entry.cjs');
  const manifestPath = join(OUT, 'sources.json');
  if (!force && existsSync(bundlePath) && existsSync(manifestPath)) {
    try {
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
      if (manifest.format === BUNDLE_FORMAT && JSON.stringify(manifest.sources) === JSON.stringify(sources)) return { unchanged: true };
    } catch {
      // rebuild
    }
  }
  const require = createRequire(import.meta.url);
  let ts;
  try {
    ts = require('typescript');
  } catch {
    return { skipped: 'typescript is not installed (a dev dependency): keeping the existing bundle' };
  }
  const parts = [];
  const shadowed = [];
  for (const [file, text] of graph) {
    const rel = relative(ROOT, file).split('\\').join('/');
    for (const name of wrapperNamesDeclared(ts, rel, text)) shadowed.push(`${rel}: ${name}`);
    // import.meta.url: the module's URL at the installation root the snapshot is built for (checked at run time).
    const code = text.replace(/\bimport\.meta\.url\b/g, '__hostlink_meta_url').replace(/^\/\/# sourceMappingURL=.*$/m, '');
    const out = ts.transpileModule(code, {
      fileName: rel,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: false, sourceMap: false },
    }).outputText;
    parts.push(`defs[${JSON.stringify(rel)}] = function (exports, require, module, __hostlink_meta_url) {\n${out}\n};`);
  }
  // The CommonJS form reads a module's own exports as `exports.NAME`: a local named `exports` (or `require`, or
  // the wrapper's import.meta.url) in any scope would be read instead, silently (a local `exports` once turned two
  // instrumentation limits into undefined inside every VM started from the snapshot, and a check never fired).
  if (shadowed.length > 0) throw new Error(`the VM's modules declare names the snapshot bundle's wrapper uses; rename them:\n  ${shadowed.join('\n  ')}`);
  const entryRel = relative(ROOT, ENTRY).split('\\').join('/');
  const script = `// Generated by scripts/build-vm-snapshot.mjs: the VM's modules as one script for node --build-snapshot.
'use strict';
(function () {
  const builtin = require;
  // Compile every function of the VM's modules now, not at its first call: V8 keeps the bytecode of compiled
  // functions in the snapshot, and most of what a VM runs (channel, runner, host functions, codecs) never runs
  // at build time, so each VM compiled it again (~180 functions). Lazy compilation is back on before the snapshot
  // is written: a blob records the V8 flags it was built with, and VMs start with the default.
  const v8 = builtin('node:v8');
  v8.setFlagsFromString('--no-lazy');
  const { join, dirname, posix } = builtin('node:path');
  const { pathToFileURL } = builtin('node:url');
  const root = process.env.HOSTLINK_SNAPSHOT_ROOT;
  if (!root) throw new Error('HOSTLINK_SNAPSHOT_ROOT is not set');
  const defs = Object.create(null);
  const cache = Object.create(null);
  // Built-ins Node supports in a user snapshot are loaded now, so VMs do not compile them at start-up; the others
  // (Node warns that they are not verified there: child_process, tty, worker_threads, module...) are loaded on
  // first use, after deserialization, so the snapshot holds none of their state.
  const EAGER = new Set(${JSON.stringify(EAGER_BUILTINS)});
  const lazy = (name) => {
    if (EAGER.has(name)) return builtin(name);
    let real;
    const get = () => (real ??= builtin(name));
    return new Proxy(Object.create(null), {
      get: (_, k) => get()[k],
      has: (_, k) => k in get(),
      ownKeys: () => Reflect.ownKeys(get()),
      getOwnPropertyDescriptor: (_, k) => { const d = Reflect.getOwnPropertyDescriptor(get(), k); if (d) d.configurable = true; return d; },
    });
  };
  const load = (rel) => {
    if (cache[rel]) return cache[rel].exports;
    const def = defs[rel];
    if (!def) throw new Error(rel + ' is not part of the VM start-up snapshot: run it with \`hostlink vm\`');
    const module = { exports: {} };
    cache[rel] = module;
    const req = (spec) => (spec.startsWith('.') ? load(posix.join(posix.dirname(rel), spec)) : lazy(spec));
    def.call(module.exports, module.exports, req, module, pathToFileURL(join(root, rel)).href);
    return module.exports;
  };
${parts.join('\n')}
  try {
    load(${JSON.stringify(entryRel)});
  } finally {
    v8.setFlagsFromString('--lazy');
  }
})();
`;
  mkdirSync(OUT, { recursive: true });
  writeFileSync(bundlePath, script);
  writeFileSync(manifestPath, JSON.stringify({ format: BUNDLE_FORMAT, entry: entryRel, sources }, null, 1) + '\n');
  return { unchanged: false };
}

async function blob() {
  const bundlePath = join(OUT, 'entry.cjs');
  if (!existsSync(bundlePath) || !existsSync(join(OUT, 'sources.json'))) return { skipped: 'no bundle (run npm run build)' };
  const { VM_NODE_FLAGS } = await import(pathToFileURL(join(ROOT, 'dist', 'src', 'host', 'supervisor.js')).href);
  const { SNAPSHOT_FORMAT, verifiedStamps } = await import(pathToFileURL(join(ROOT, 'dist', 'src', 'host', 'vm-entry.js')).href);
  const manifest = JSON.parse(readFileSync(join(OUT, 'sources.json'), 'utf8'));
  const bundleSha = sha256(readFileSync(bundlePath));
  const metaPath = join(OUT, 'vm.json');
  const blobPath = join(OUT, 'vm.blob');
  const warmUp = existsSync(WARM_UP) ? sha256(readFileSync(WARM_UP)) : null;
  const want = { format: SNAPSHOT_FORMAT, node: process.version, arch: process.arch, platform: process.platform, flags: [...VM_NODE_FLAGS], root: ROOT, bundle: bundleSha, warmUp };
  // The stamps of the blob and the modules, taken as their content is checked, let hosts skip reading them
  // (src/host/vm-entry.ts); written again when only they changed (the modules rewritten with the same content).
  const describe = (meta, stamps = verifiedStamps(OUT, meta.blob, meta.sources)) => {
    const text = JSON.stringify({ ...meta, stamps }, null, 1) + '\n';
    const tmpMeta = `${metaPath}.${process.pid}.tmp`;
    writeFileSync(tmpMeta, text);
    renameSync(tmpMeta, metaPath);
  };
  if (!force && existsSync(metaPath) && existsSync(blobPath)) {
    try {
      const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
      if (Object.entries(want).every(([k, v]) => JSON.stringify(meta[k]) === JSON.stringify(v)) && meta.blob === sha256(readFileSync(blobPath))) {
        const stamps = verifiedStamps(OUT, meta.blob, meta.sources);
        if (JSON.stringify(stamps) !== JSON.stringify(meta.stamps)) describe(meta, stamps);
        return { unchanged: true };
      }
    } catch {
      // rebuild
    }
  }
  const tmp = `${blobPath}.${process.pid}.tmp`;
  const r = spawnSync(process.execPath, [...VM_NODE_FLAGS, '--snapshot-blob', tmp, '--build-snapshot', bundlePath], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOSTLINK_SNAPSHOT_ROOT: ROOT, ...(existsSync(WARM_UP) ? { HOSTLINK_SNAPSHOT_WARM_UP: WARM_UP } : {}) },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0) {
    // Leave nothing that describes another build: the host then uses `hostlink vm` and says why.
    for (const f of [tmp, metaPath, blobPath]) rmSync(f, { force: true });
    return { failed: `node --build-snapshot exited ${r.status ?? r.signal}: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(0, 3).join(' | ')}` };
  }
  // Node exits (code 14) at start-up on a blob whose recorded V8 flags differ from its own: start the new blob
  // once, as a VM would, before any host is told to use it.
  const smoke = spawnSync(process.execPath, [...VM_NODE_FLAGS, '--snapshot-blob', tmp, join(ROOT, 'bin', 'hostlink.js'), 'vm', '--help'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  });
  if (smoke.status !== 0 || !smoke.stdout.startsWith('usage: hostlink vm')) {
    for (const f of [tmp, metaPath, blobPath]) rmSync(f, { force: true });
    return { failed: `the built snapshot does not start (exit ${smoke.status ?? smoke.signal}: ${(smoke.stderr || smoke.error?.message || '').trim().split('\n').slice(0, 3).join(' | ')})` };
  }
  const blobSha = sha256(readFileSync(tmp));
  rmSync(metaPath, { force: true }); // never a new blob with an old description
  // Readable by the VM's unprivileged user whatever the umask: it holds code and constants only, never a secret.
  chmodSync(tmp, 0o644);
  chmodSync(OUT, 0o755);
  renameSync(tmp, blobPath);
  describe({ ...want, blob: blobSha, entry: manifest.entry, sources: manifest.sources });
  return { unchanged: false };
}

const b = process.argv.includes('--blob-only') ? { skipped: 'blob only' } : bundle();
if (b.skipped && !quiet && !b.skipped.startsWith('blob only')) say(b.skipped);
const s = await blob();
if (s.failed) say(`${s.failed}; VMs will start from hostlink vm (slower cold calls)`);
else if (s.skipped && !quiet) say(s.skipped);
else if (!quiet) say(s.unchanged ? 'up to date' : `built ${relative(ROOT, join(OUT, 'vm.blob'))}`);
