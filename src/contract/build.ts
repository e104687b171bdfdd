/**
 * Building a contract project (`hostlink build`): compile its AssemblyScript entry with the flags every
 * Hostlink contract needs, embed the ABI, and run the deploy-time checks, so a build that succeeds is a module
 * the host accepts. Works out of tree: the compiler and the SDK are resolved from the project's node_modules.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';
import { HostlinkError } from '../errors.js';
import { deriveAbi, embedAbi, type ContractAbi } from './abi.js';
import { checkContract, type CheckFailure } from './check.js';

/** The compiler flags of every Hostlink contract (besides the abort alias, which depends on where the SDK is). */
export const ASC_FLAGS: readonly string[] = ['--optimize', '--runtime', 'stub', '--noAssert', '--exportRuntime'];

export interface BuildResult {
  /** Absolute path of the written module. */
  out: string;
  bytes: number;
  codeHash: string;
  abi: ContractAbi;
  /** Set when the module does not pass the deploy-time checks (the file is still written, for inspection). */
  failure?: CheckFailure;
}

export interface ProjectLayout {
  dir: string;
  name: string;
  entry: string;
  out: string;
}

/** The project's name (package.json, without scope; else the folder's), entry file and output path. */
export function projectLayout(dirArg: string, outArg?: string): ProjectLayout {
  const dir = resolve(dirArg);
  // A wrong folder is a wrong argument (exit 2), whichever way it is wrong.
  if (!existsSync(dir)) throw new HostlinkError('usage', `${dirArg} does not exist: give the contract project's folder (hostlink new NAME creates one)`);
  if (!statSync(dir).isDirectory()) throw new HostlinkError('usage', `${dirArg} is not a directory: give the contract project's folder`);
  let name = basename(dir);
  const pkgPath = join(dir, 'package.json');
  if (existsSync(pkgPath)) {
    try {
      const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { name?: unknown };
      if (typeof pkg.name === 'string' && pkg.name !== '') name = pkg.name.replace(/^@[^/]+\//, '');
    } catch (e) {
      throw new HostlinkError('usage', `${pkgPath} is not valid JSON (${(e as Error).message}): fix it and build again`);
    }
  }
  const entry = join(dir, 'assembly', 'index.ts');
  if (!existsSync(entry)) {
    throw new HostlinkError('usage', `${relative(process.cwd(), entry) || entry} does not exist: a contract project has its methods in assembly/index.ts (hostlink new NAME creates one)`);
  }
  return { dir, name, entry, out: outArg !== undefined ? resolve(outArg) : join(dir, 'build', `${name}.wasm`) };
}

/** Resolves a package from the project first, then from this installation (a clone has its own). */
function resolvePackage(dir: string, specifier: string): string | undefined {
  for (const base of [join(dir, 'package.json'), import.meta.url]) {
    try {
      return createRequire(base).resolve(specifier);
    } catch {
      // not there: try the next place
    }
  }
  return undefined;
}

/** The `--use abort=...` value: the SDK's panic, named by its path as the compiler sees it from the project. */
export function abortAlias(dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules', '@hostlink', 'sdk', 'assembly', 'panic.ts'))) return 'abort=~lib/@hostlink/sdk/assembly/panic/hostlinkAbort';
    if (dirname(d) === d) break;
  }
  throw new HostlinkError('not_found', `@hostlink/sdk is not installed for ${dir}: run npm install @hostlink/sdk there (contracts import it and need its panic handler)`);
}

function sourcesOf(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.ts')) out.push(readFileSync(join(d, e.name), 'utf8'));
    }
  };
  walk(join(dir, 'assembly'));
  return out;
}

/** The part of the AssemblyScript compiler's API (assemblyscript/asc) that a build uses. */
interface AscApi {
  main(argv: string[], options?: object): Promise<{ error: Error | null; stdout: { toString(): string }; stderr: { toString(): string } }>;
}

/**
 * Compiles, embeds the ABI, checks. The compiler runs in this process (loaded once: a watch rebuild reuses
 * its warm JIT). Compiler errors are a HostlinkError with the compiler's output.
 */
export async function buildContract(layout: ProjectLayout): Promise<BuildResult> {
  const ascPkg = resolvePackage(layout.dir, 'assemblyscript/package.json');
  if (ascPkg === undefined) {
    throw new HostlinkError('not_found', `the AssemblyScript compiler is not installed for ${layout.dir}: run npm install --save-dev assemblyscript@0.28.20 there`);
  }
  const asc = (await import(pathToFileURL(join(dirname(ascPkg), 'dist', 'asc.js')).href)) as AscApi;
  mkdirSync(dirname(layout.out), { recursive: true });
  const args = [relative(layout.dir, layout.entry), '-o', layout.out, '--baseDir', layout.dir, ...ASC_FLAGS, '--use', abortAlias(layout.dir), '--noColors'];
  const r = await asc.main(args, {});
  if (r.error) {
    const output = `${r.stdout.toString()}${r.stderr.toString()}`.trim();
    throw new HostlinkError('usage', `the AssemblyScript compiler failed (${r.error.message}):\n${output}`);
  }
  const compiled = Uint8Array.from(readFileSync(layout.out));
  const abi = deriveAbi(compiled, readFileSync(layout.entry, 'utf8'), sourcesOf(layout.dir), layout.name);
  const wasm = embedAbi(compiled, abi);
  writeFileSync(layout.out, wasm);
  const failure = checkContract(wasm);
  return {
    out: layout.out,
    bytes: wasm.length,
    codeHash: createHash('sha256').update(wasm).digest('hex'),
    abi,
    ...(failure ? { failure } : {}),
  };
}
