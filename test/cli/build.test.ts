/**
 * `hostlink new` and `hostlink build` as a contract author runs them (separate processes, the real compiler):
 * a scaffold that builds with the SDK imported by package name, the embedded ABI, compile errors, --watch.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HOSTLINK_BIN } from '../../src/host/supervisor.js';
import { readAbi } from '../../src/contract/abi.js';
import { ROOT, tempDir } from '../helpers.js';

const dir = tempDir('hostlink-build-');

/** A folder whose node_modules has the SDK and the compiler, as after npm install: projects inside find them. */
function workspace(): string {
  const ws = join(dir.path, 'ws');
  if (!existsSync(ws)) {
    mkdirSync(join(ws, 'node_modules', '@hostlink'), { recursive: true });
    symlinkSync(join(ROOT, 'sdk', 'assemblyscript'), join(ws, 'node_modules', '@hostlink', 'sdk'));
    symlinkSync(join(ROOT, 'node_modules', 'assemblyscript'), join(ws, 'node_modules', 'assemblyscript'));
  }
  return ws;
}

describe('hostlink new and build', () => {
  after(() => dir.remove());

  test('new + build: a project that builds with the SDK imported by package name, an embedded ABI, a check', () => {
    const ws = workspace();
    const r = spawnSync(process.execPath, [HOSTLINK_BIN, 'new', 'counter'], { cwd: ws, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(readFileSync(join(ws, 'counter', 'assembly', 'index.ts'), 'utf8'), /from "@hostlink\/sdk"/);
    const again = spawnSync(process.execPath, [HOSTLINK_BIN, 'new', 'counter'], { cwd: ws, encoding: 'utf8' });
    assert.equal(again.status, 2);
    assert.match(again.stderr, /already exists and is not empty/);
    assert.equal(spawnSync(process.execPath, [HOSTLINK_BIN, 'new', 'Bad Name'], { cwd: ws, encoding: 'utf8' }).status, 2);

    const built = spawnSync(process.execPath, [HOSTLINK_BIN, 'build', 'counter', '--json'], { cwd: ws, encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr + built.stdout);
    const out = JSON.parse(built.stdout) as { out: string; ok: boolean; methods: string[] };
    assert.deepEqual([out.ok, out.methods], [true, ['increment', 'count', 'set_greeting', 'greet']]);
    const { abi, embedded } = readAbi(Uint8Array.from(readFileSync(out.out)));
    assert.equal(embedded, true);
    assert.deepEqual(abi.methods.find((m) => m.name === 'set_greeting'), {
      name: 'set_greeting',
      doc: 'Sets the greeting; an empty one is refused with {"kind":"InvalidInput"}.',
      input: { greeting: 'string' },
      output: null,
    });
    assert.equal(abi.methods.find((m) => m.name === 'count')?.view, true);
    assert.deepEqual(abi.events, [{ kind: 'incremented', data: { count: 'number', by: 'hex account id' } }]);
    const shown = spawnSync(process.execPath, [HOSTLINK_BIN, 'inspect', out.out], { cwd: ws, encoding: 'utf8' });
    assert.match(shown.stdout, /\n {2}set_greeting {2}input \{"greeting":"string"\} {2}-> null\n/);
    assert.equal(spawnSync(process.execPath, [HOSTLINK_BIN, 'check', out.out], { cwd: ws }).status, 0);

    // A compile error is reported with the compiler's message, and the exit code says so.
    writeFileSync(join(ws, 'counter', 'assembly', 'index.ts'), 'export function broken(): void { let x: i32 = "no"; }\n');
    const failed = spawnSync(process.execPath, [HOSTLINK_BIN, 'build', 'counter'], { cwd: ws, encoding: 'utf8' });
    assert.equal(failed.status, 2);
    assert.match(failed.stderr, /^hostlink: the AssemblyScript compiler failed/);
    assert.match(failed.stderr, /TS2322/);
    const noProject = spawnSync(process.execPath, [HOSTLINK_BIN, 'build', ws], { cwd: ws, encoding: 'utf8' });
    assert.match(noProject.stderr, /assembly\/index\.ts does not exist: a contract project has its methods in assembly\/index\.ts/);
    assert.equal(noProject.status, 2, 'a folder that is not a contract project is a wrong argument');
  });

  test('a build reports every import that is not a host function, each with its fix', () => {
    const ws = workspace();
    assert.equal(spawnSync(process.execPath, [HOSTLINK_BIN, 'new', 'imports'], { cwd: ws, encoding: 'utf8' }).status, 0);
    writeFileSync(
      join(ws, 'imports', 'assembly', 'index.ts'),
      'import { log } from "@hostlink/sdk";\nexport function m(): void {\n  log("l");\n  trace("t");\n  console.log("c");\n  if (Math.random() > 2.0) unreachable();\n}\n',
    );
    const r = spawnSync(process.execPath, [HOSTLINK_BIN, 'build', 'imports'], { cwd: ws, encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /would be refused at deploy: import_not_allowed: 3 imports are not host functions: /);
    for (const name of ['env.trace', 'env.console.log', 'env.seed']) assert.ok(r.stderr.includes(`${name}: `), `${name} reported: ${r.stderr}`);
    assert.match(r.stderr, /fix: .*trace\(\) imports env\.trace: use log\(\) from @hostlink\/sdk/);
    assert.match(r.stderr, /console\.log imports env\.console\.log: use log\(\) from @hostlink\/sdk/);
    assert.match(r.stderr, /Math\.random imports env\.seed: use randomBytes\(\) from @hostlink\/sdk/);
  });

  test('a new project runs every test file in test/, and its README\'s comments line up whatever the name', () => {
    const ws = workspace();
    for (const name of ['ab', 'a-much-longer-contract-name']) {
      assert.equal(spawnSync(process.execPath, [HOSTLINK_BIN, 'new', name], { cwd: ws, encoding: 'utf8' }).status, 0);
      const pkg = JSON.parse(readFileSync(join(ws, name, 'package.json'), 'utf8')) as { scripts: { test: string } };
      assert.equal(pkg.scripts.test, 'hostlink build && node --test');
      const block = /```sh\n([\s\S]*?)```/.exec(readFileSync(join(ws, name, 'README.md'), 'utf8'))![1]!;
      const columns = new Set(block.split('\n').filter((l) => l.includes('# ')).map((l) => l.indexOf('# ')));
      assert.equal(columns.size, 1, `one comment column for ${name}:\n${block}`);
    }
  });

  test('build --watch rebuilds after a change, reports a broken file and goes on, and stops on SIGINT', async () => {
    const ws = workspace();
    assert.equal(spawnSync(process.execPath, [HOSTLINK_BIN, 'new', 'watched'], { cwd: ws }).status, 0);
    const index = join(ws, 'watched', 'assembly', 'index.ts');
    const child = spawn(process.execPath, [HOSTLINK_BIN, 'build', 'watched', '--watch', '--json'], { cwd: ws, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    // Waits (without a time limit of its own: the runner's timeout bounds the test) until `cond` holds.
    const until = async (cond: () => boolean): Promise<void> => {
      while (!cond()) await new Promise((r) => setTimeout(r, 100));
    };
    const builds = (): { methods: string[] }[] => stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { methods: string[] });
    try {
      await until(() => builds().length === 1);
      writeFileSync(index, readFileSync(index, 'utf8') + '\n/** @view */\nexport function extra(): void {}\n');
      await until(() => builds().length === 2);
      assert.deepEqual(builds()[1]!.methods, ['increment', 'count', 'set_greeting', 'greet', 'extra']);
      writeFileSync(index, readFileSync(index, 'utf8') + 'export function broken(): void { let x: i32 = "no"; }\n');
      await until(() => /the AssemblyScript compiler failed/.test(stderr));
      child.kill('SIGINT');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
