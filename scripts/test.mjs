#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner. Fixtures and helpers
// compiled next to the tests are not test files and are not run. Extra arguments go to `node --test`
// (e.g. `npm test -- --test-name-pattern=kv`); a path argument narrows the run to files under it.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'dist', 'test');
const args = process.argv.slice(2);
const paths = args.filter((a) => !a.startsWith('-')).map((p) => resolve(p));
const flags = args.filter((a) => a.startsWith('-'));

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'contracts' && name !== 'fixtures') out.push(...find(p));
    } else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = find(root).filter((f) => paths.length === 0 || paths.some((p) => f.startsWith(p)));
if (files.length === 0) {
  process.stderr.write(`no test files under ${root}: run npm run build first\n`);
  process.exit(1);
}
// Host.open defaults to sandbox 'required', which needs the native launcher and addon. Without a C compiler they
// are not built: then the suite runs VMs in 'best-effort' (uid, cgroup, closed descriptors, death watchdog; no
// seccomp, no_new_privs, rlimits or namespaces) and the tests of the native layers skip with the reason.
const nativeBuilt = ['hostlink_sandbox.node', 'hostlink-launch'].every((f) => existsSync(join(root, '..', '..', 'native', 'build', 'Release', f)));
const env = { ...process.env };
if (!nativeBuilt && env.HOSTLINK_SANDBOX === undefined) {
  env.HOSTLINK_SANDBOX = 'best-effort';
  process.stderr.write('note: the native sandbox parts are not built (no C compiler?): tests run VMs with HOSTLINK_SANDBOX=best-effort\n');
}
// A hung test must fail, not stall CI: no single test may take 2 minutes.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=120000', ...flags, ...files], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
