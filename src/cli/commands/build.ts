/** `hostlink build [DIR] [--watch]`: compile a contract project, embed its ABI, run the deploy-time checks. */
import { watch } from 'node:fs';
import { join, relative } from 'node:path';
import { HostlinkError } from '../../errors.js';
import { buildContract, projectLayout, type BuildResult, type ProjectLayout } from '../../contract/build.js';
import { parse } from '../common.js';
import { reportError } from '../main.js';

export const usage = `usage: hostlink build [DIR] [--out FILE] [--watch] [--json]

Compiles DIR/assembly/index.ts (DIR defaults to .) to DIR/build/NAME.wasm with the flags every Hostlink
contract needs (--optimize --runtime stub --noAssert --exportRuntime and the SDK's abort handler), embeds
the ABI (methods, @input/@output shapes, events) as the custom section hostlink.abi, and runs the checks a
host applies at deploy time. Exit 1 when compilation or a check fails (the module is still written).
The AssemblyScript compiler and @hostlink/sdk are taken from DIR's node_modules (or a parent's).

  --out FILE   where to write the module (default DIR/build/NAME.wasm, NAME from package.json)
  --watch      rebuild whenever a file under DIR/assembly changes (stop with Ctrl-C)
  --json       one JSON object per build`;

const OPTIONS = { out: { type: 'string' }, watch: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

function report(layout: ProjectLayout, r: BuildResult, json: boolean): number {
  const file = relative(process.cwd(), r.out) || r.out;
  if (json) {
    process.stdout.write(
      JSON.stringify({ out: r.out, bytes: r.bytes, code_hash: r.codeHash, methods: r.abi.methods.map((m) => m.name), ok: !r.failure, ...(r.failure ? { failure: r.failure } : {}) }) + '\n',
    );
  } else if (r.failure) {
    process.stderr.write(`hostlink: ${file} would be refused at deploy: ${r.failure.message}\n  fix: ${r.failure.hint}\n`);
  } else {
    process.stdout.write(`built ${file} (${r.bytes} bytes, code hash ${r.codeHash})\n  methods: ${r.abi.methods.map((m) => m.name).join(', ') || '(none)'}\n`);
  }
  void layout;
  return r.failure ? 1 : 0;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, usage);
  if (positionals.length > 1) throw new HostlinkError('usage', `expected at most one DIR\n${usage}`);
  const layout = projectLayout(positionals[0] ?? '.', values.out);
  const json = values.json === true;
  if (!values.watch) return report(layout, await buildContract(layout), json);

  // Watch mode: a failed build is reported and the watch goes on; builds never overlap.
  let building: Promise<void> = Promise.resolve();
  const once = (): void => {
    building = building.then(async () => {
      try {
        report(layout, await buildContract(layout), json);
      } catch (e) {
        reportError(e, false);
      }
    });
  };
  once();
  process.stderr.write(`watching ${relative(process.cwd(), join(layout.dir, 'assembly')) || 'assembly'} (Ctrl-C to stop)\n`);
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(join(layout.dir, 'assembly'), { recursive: true }, () => {
    clearTimeout(timer);
    timer = setTimeout(once, 100);
  });
  await new Promise<void>((done) => {
    const stop = (): void => {
      watcher.close();
      clearTimeout(timer);
      done();
      // The compiler (binaryen) may keep handles open; a stopped watch has nothing left to finish.
      void building.then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
