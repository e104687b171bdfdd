#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner. Fixtures and helpers
// compiled next to the tests are not test files and are not run. Extra arguments go to `node --test`
// (e.g. `npm test -- --test-name-pattern=kv`); a path argument narrows the run to files under it.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

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
// Run as root, VMs drop to the user nobody, which must be able to read the checkout. A checkout in a private
// folder (mktemp -d, /root) is not readable: the suite then runs VMs as root with every other layer on, and the
// tests of the uid layer skip with the reason (docs/security.md).
if (env.HOSTLINK_SANDBOX_USER === undefined) {
  const dist = join(root, '..', 'src');
  const { defaultVmUserCannotRead } = await import(pathToFileURL(join(dist, 'host', 'sandbox', 'plan.js')).href);
  const { HOSTLINK_BIN } = await import(pathToFileURL(join(dist, 'host', 'supervisor.js')).href);
  const why = defaultVmUserCannotRead(HOSTLINK_BIN);
  if (why !== undefined) {
    env.HOSTLINK_SANDBOX_USER = 'root';
    process.stderr.write(`note: ${why}: tests run VMs with HOSTLINK_SANDBOX_USER=root\n`);
  }
}
// A hung test must fail, not stall CI: no single test may take 2 minutes. Node's runner applies the same
// limit to each FILE as a whole, so a file that is slow by nature gets its own limit here, and runs in its
// own pass after the others (alone, so that it does not load the machine under the rest of the suite).
const TIMEOUT_MS = 120_000;
const SLOW = new Map([
  // Packs, installs offline and builds a scaffold: ~30 s on a quiet 2-core machine, up to ~110 s loaded.
  [join('package', 'pack.test.js'), 600_000],
]);
const slowLimit = (f) => SLOW.get(f.slice(root.length + 1));
const passes = [{ files: files.filter((f) => slowLimit(f) === undefined), timeout: TIMEOUT_MS }];
for (const f of files) if (slowLimit(f) !== undefined) passes.push({ files: [f], timeout: slowLimit(f) });
let status = 0;
for (const pass of passes) {
  if (pass.files.length === 0) continue;
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', `--test-timeout=${pass.timeout}`, ...flags, ...pass.files], { stdio: 'inherit', env });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
