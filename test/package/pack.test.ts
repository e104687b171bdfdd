/**
 * The published packages, as a new user gets them (SLOW: ~30-60 s; it packs, installs and builds). Packs the
 * root package and @hostlink/sdk, installs both tarballs OFFLINE into an empty project outside the clone, then:
 * `import { Host } from 'hostlink'` (and its types), `npx hostlink demo`, `hostlink new` + `npm test` of the
 * scaffold, deploy/call/view/inspect of the built contract. No network: `npm install --offline`, with the
 * tarballs' own dependencies (lmdb, prom-client, the gRPC packages, assemblyscript) copied from this clone's node_modules, which satisfy the
 * versions pinned in package.json so npm has nothing to fetch.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, tempDir } from '../helpers.js';

const npmCli = process.env.npm_execpath && existsSync(process.env.npm_execpath) ? [process.execPath, process.env.npm_execpath] : ['npm'];
const hasNpm = spawnSync(npmCli[0]!, [...npmCli.slice(1), '--version'], { encoding: 'utf8' }).status === 0;

const tmp = tempDir('hostlink-pack-');
// The installed package runs its VMs as the sandbox's unprivileged user (when the test runs as root): like any
// installation, it must be readable by that user, and mkdtemp makes the folder private.
chmodSync(tmp.path, 0o755);
const app = join(tmp.path, 'app');

function run(cmd: string[], cwd: string, timeout = 180_000): SpawnSyncReturns<string> {
  // NODE_TEST_CONTEXT would make the scaffold's own `node --test` report to this runner instead of printing.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  return spawnSync(cmd[0]!, cmd.slice(1), { cwd, encoding: 'utf8', timeout, env: { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });
}
function ok(cmd: string[], cwd: string): string {
  const r = run(cmd, cwd);
  assert.equal(r.status, 0, `${cmd.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
const npm = (args: string[], cwd: string): string => ok([...npmCli, ...args], cwd);

/** A package and everything it depends on (optional ones when installed), by folder under node_modules. */
function dependencyClosure(roots: string[]): string[] {
  const seen = new Set<string>();
  const visit = (name: string): void => {
    if (seen.has(name) || !existsSync(join(ROOT, 'node_modules', name, 'package.json'))) return;
    seen.add(name);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(dep);
  };
  roots.forEach(visit);
  return [...seen];
}

const typesNodeVersion = (): string => (JSON.parse(readFileSync(join(ROOT, 'node_modules', '@types', 'node', 'package.json'), 'utf8')) as { version: string }).version;

interface PackEntry {
  filename: string;
  files: { path: string }[];
}

describe('npm packages (slow: packs and installs offline)', { skip: hasNpm ? false : 'npm is not on PATH' }, () => {
  let root: PackEntry;
  let sdk: PackEntry;

  before(() => {
    // @types/node is what a TypeScript user of a Node library has; it is copied for the type check below.
    // --ignore-scripts: `prepare` would rebuild; the suite's pretest has built dist/ and the examples already.
    root = (JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp.path], ROOT)) as PackEntry[])[0]!;
    sdk = (JSON.parse(npm(['pack', '--json', '--pack-destination', tmp.path], join(ROOT, 'sdk', 'assemblyscript'))) as PackEntry[])[0]!;
    mkdirSync(join(app, 'node_modules'), { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module', devDependencies: { assemblyscript: '0.28.20', '@types/node': typesNodeVersion() } }));
    for (const dep of dependencyClosure(['lmdb', 'prom-client', '@grpc/grpc-js', '@grpc/proto-loader', 'assemblyscript', '@types/node'])) {
      cpSync(join(ROOT, 'node_modules', dep), join(app, 'node_modules', dep), { recursive: true });
    }
    npm(['install', '--offline', '--no-audit', '--no-fund', join(tmp.path, root.filename), join(tmp.path, sdk.filename)], app);
  });
  after(() => tmp.remove());

  test('the tarballs hold the built library, its types, the CLI, the examples and the license; not the tests', () => {
    const files = root.files.map((f) => f.path);
    for (const f of ['bin/hostlink.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/testing/index.js', 'dist/src/testing/index.d.ts', 'dist/src/cli/main.js', 'examples/kv-store/build/kv-store.wasm', 'native/hostlink_channel.c', 'native/hostlink_state.c', 'native/binding.gyp', 'scripts/build-native.mjs', 'LICENSE', 'README.md', 'docs/testing.md', 'docs/embedding.md', 'studio/index.html', 'studio/studio.js', 'native/hostlink_launch.c', 'native/hostlink_sandbox.c', 'proto/runtime.proto', 'scripts/build-vm-snapshot.mjs', 'dist/vm-snapshot/entry.cjs', 'dist/vm-snapshot/sources.json', 'examples/kv-store/assembly/index.ts', 'examples/collab/assembly/index.ts']) {
      assert.ok(files.includes(f), `${f} is in the package`);
    }
    for (const f of files) assert.doesNotMatch(f, /^(test|bench|\.ci|src|dist\/test|dist\/bench)\/|\.map$|tsbuildinfo/, `${f} should not be published`);
    const sdkFiles = sdk.files.map((f) => f.path);
    for (const f of ['index.ts', 'assembly/index.ts', 'assembly/panic.ts', 'README.md', 'LICENSE', 'package.json']) assert.ok(sdkFiles.includes(f), `${f} is in @hostlink/sdk`);
    assert.match(readFileSync(join(app, 'node_modules', 'hostlink', 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0/);
  });

  test("import { Host } from 'hostlink' runs a contract, and the types resolve for TypeScript users", () => {
    const script = `
      import { readFileSync } from 'node:fs';
      import { Host } from 'hostlink';
      import { TestHost } from 'hostlink/testing';
      const host = await Host.open({});
      const codeHash = await host.deploy(readFileSync('node_modules/hostlink/examples/kv-store/build/kv-store.wasm'));
      const contextId = new Uint8Array(32);
      const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
      await host.call({ codeHash, method: 'set', input: enc({ key: 'a', value: 'b' }), contextId });
      const got = await host.call({ codeHash, method: 'get', input: enc({ key: 'a' }), contextId });
      await host.close();
      console.log(new TextDecoder().decode(got.result.value), typeof TestHost.open);`;
    assert.equal(ok([process.execPath, '--input-type=module', '-e', script], app), '"b" function\n');

    writeFileSync(join(app, 'check.ts'), `import { Host, type Outcome } from 'hostlink';\nimport { TestHost, type CallResult } from 'hostlink/testing';\nexport const f = (h: Host, o: Outcome, t: TestHost, r: CallResult): unknown => [h.deploy, o.applied, t.account('a').hex, r.expectOk];\n`);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, types: ['node'], skipLibCheck: true, lib: ['ES2022'] }, files: ['check.ts'] }));
    const tsc = run([process.execPath, join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  });

  test('npm install built the VM start-up snapshot for this Node, and the installed package uses it', () => {
    // The blob is not in the tarball (it is only valid for the Node that builds it): the install script makes it.
    assert.ok(!root.files.some((f) => f.path.endsWith('vm.blob')), 'no blob in the tarball');
    const doctor = JSON.parse(ok([process.execPath, join(app, 'node_modules', '.bin', 'hostlink'), 'doctor', '--json', '--sandbox', 'best-effort'], app)) as { checks: { name: string; ok: boolean; detail: string }[] };
    const snap = doctor.checks.find((c) => c.name === 'VM start-up snapshot');
    assert.ok(snap?.ok, JSON.stringify(snap));
    assert.ok(snap!.detail.includes(join(app, 'node_modules', 'hostlink', 'dist', 'vm-snapshot')), snap!.detail);
  });

  test('npx hostlink demo works from the installed package', () => {
    const out = npmExec(['hostlink', 'demo']);
    assert.match(out, /deployed kv-store\.wasm as [0-9a-f]{64}/);
    assert.match(out, /get greeting \(persisted\)\s+-> "hello"/);
  });

  test('a scaffolded contract builds, passes its own tests, deploys, runs, views and is inspected', () => {
    npmExec(['hostlink', 'new', 'counter']);
    const project = join(app, 'counter');
    // A second test file of the author's own: npm test runs it too.
    writeFileSync(join(project, 'test', 'more.test.js'), "import { test } from 'node:test';\ntest('another file', () => {});\n");
    const tested = npm(['test'], project);
    assert.match(tested, /built build\/counter\.wasm/);
    assert.match(tested, /# pass 4\n# fail 0/);
    // The installed command itself (what npx runs) for the rest: npm's own start-up adds nothing to check.
    const hostlink = (...args: string[]): string => ok([process.execPath, join(app, 'node_modules', '.bin', 'hostlink'), ...args], project);
    const hash = hostlink('deploy', 'build/counter.wasm').trim();
    assert.match(hash, /^[0-9a-f]{64}$/);
    assert.equal(hostlink('call', hash, 'increment', '--input', '{}', '--executor', 'name:alice'), '1\n');
    assert.equal(hostlink('view', hash, 'increment'), '2\n');
    assert.equal(hostlink('view', hash, 'count'), '1\n');
    const abi = JSON.parse(hostlink('inspect', hash, '--json')) as { name: string; embedded: boolean; methods: { name: string; view?: boolean }[] };
    assert.deepEqual([abi.name, abi.embedded, abi.methods.map((m) => m.name)], ['counter', true, ['increment', 'count', 'set_greeting', 'greet']]);
  });

  function npmExec(args: string[], cwd = app): string {
    return npm(['exec', '--offline', '--', ...args], cwd);
  }
});
