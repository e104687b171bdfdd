// Every contract the VM runs (examples/, test/contracts/) may import only host functions
// from the catalogue (protocol/host-functions.json), each with exactly the catalogue's signature, and
// must not import memory, tables or globals (AssemblyScript's env.abort/seed/trace would show up here).
// Contract methods (examples/, test/contracts/) are exports of type () -> (). The binary is parsed here
// rather than trusting WebAssembly.Module.imports, which reports names but not signatures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CatalogueParam { name: string; type: 'i32' | 'i64' }
interface CatalogueFunction { name: string; params: CatalogueParam[]; result: 'i32' | 'i64' | null }
interface Catalogue { module: string; functions: CatalogueFunction[] }

interface FuncType { params: string[]; results: string[] }
interface Import { module: string; name: string; kind: 'func' | 'table' | 'memory' | 'global' | 'tag'; type?: FuncType }
interface Export { name: string; kind: 'func' | 'table' | 'memory' | 'global' | 'tag'; type?: FuncType }

/** The repository root: the nearest ancestor holding protocol/host-functions.json (works from dist/ too). */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'protocol', 'host-functions.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return dir;
}

const ROOT = findRoot();
const catalogue = JSON.parse(readFileSync(join(ROOT, 'protocol', 'host-functions.json'), 'utf8')) as Catalogue;
const byName = new Map(catalogue.functions.map((f) => [f.name, f]));

const VALTYPES: Record<number, string> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128', 0x70: 'funcref', 0x6f: 'externref' };
const KINDS = ['func', 'table', 'memory', 'global', 'tag'] as const;

/** Just enough of the binary format to read the type, import, function and export sections. */
function parseModule(bytes: Uint8Array): { imports: Import[]; exports: Export[] } {
  let at = 8;
  const u32 = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[at++];
      if (b === undefined) throw new Error('truncated LEB128');
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  };
  const name = (): string => {
    const n = u32();
    const s = Buffer.from(bytes.subarray(at, at + n)).toString('utf8');
    at += n;
    return s;
  };
  const valtype = (): string => {
    const b = bytes[at++] ?? -1;
    const t = VALTYPES[b];
    if (t === undefined) throw new Error(`unknown value type 0x${b.toString(16)}`);
    return t;
  };
  const limits = (): void => {
    const flags = u32();
    u32();
    if (flags & 1) u32();
  };
  const types: FuncType[] = [];
  const imports: Import[] = [];
  const funcTypes: number[] = []; // type index of every function, imports first
  const rawExports: { name: string; kind: number; index: number }[] = [];
  assert.deepEqual([...bytes.subarray(0, 8)], [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0], 'wasm magic and version 1');
  while (at < bytes.length) {
    const id = bytes[at++];
    const size = u32();
    const end = at + size;
    if (id === 1) {
      for (let n = u32(); n > 0; n--) {
        assert.equal(bytes[at++], 0x60, 'function type form');
        const params = Array.from({ length: u32() }, valtype);
        const results = Array.from({ length: u32() }, valtype);
        types.push({ params, results });
      }
    } else if (id === 2) {
      for (let n = u32(); n > 0; n--) {
        const module = name();
        const field = name();
        const kind = KINDS[bytes[at++] ?? 99];
        if (kind === undefined) throw new Error('unknown import kind');
        const imp: Import = { module, name: field, kind };
        if (kind === 'func') {
          const t = u32();
          imp.type = types[t];
          funcTypes.push(t);
        } else if (kind === 'table') {
          at++;
          limits();
        } else if (kind === 'memory') {
          limits();
        } else if (kind === 'global') {
          valtype();
          at++;
        } else {
          at++;
          u32();
        }
        imports.push(imp);
      }
    } else if (id === 3) {
      for (let n = u32(); n > 0; n--) funcTypes.push(u32());
    } else if (id === 7) {
      for (let n = u32(); n > 0; n--) {
        const field = name();
        const kind = bytes[at++] ?? 99;
        rawExports.push({ name: field, kind, index: u32() });
      }
    }
    at = end;
  }
  const exports = rawExports.map((e): Export => {
    const kind = KINDS[e.kind];
    if (kind === undefined) throw new Error('unknown export kind');
    const typeIndex = funcTypes[e.index];
    return kind === 'func' && typeIndex !== undefined ? { name: e.name, kind, type: types[typeIndex] } : { name: e.name, kind };
  });
  return { imports, exports };
}

/** Built contracts: <parent>/<name>/build/<name>.wasm for every folder with assembly/index.ts. */
function builtContracts(): { name: string; source: string; wasm: string }[] {
  const out: { name: string; source: string; wasm: string }[] = [];
  // bench/contracts are raw-wasm kernels the metering bench instantiates itself, not VM contracts.
  for (const parent of ['examples', 'test/contracts']) {
    const base = join(ROOT, parent);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      if (!existsSync(join(base, name, 'assembly', 'index.ts'))) continue;
      out.push({ name: `${parent}/${name}`, source: join(base, name), wasm: join(base, name, 'build', `${name}.wasm`) });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

// Exports AssemblyScript adds with --exportRuntime: not contract methods.
const RUNTIME_EXPORTS = new Set(['__new', '__pin', '__unpin', '__collect', '__rtti_base', '__setArgumentsLength']);

const contracts = builtContracts();

test('the catalogue itself is well formed', () => {
  assert.equal(catalogue.module, 'env');
  assert.equal(byName.size, catalogue.functions.length, 'no duplicate names');
  for (const f of catalogue.functions) {
    for (const p of f.params) assert.ok(p.type === 'i32' || p.type === 'i64', `${f.name}.${p.name}`);
    assert.ok(f.result === null || f.result === 'i32' || f.result === 'i64', `${f.name} result`);
  }
});

test('there are built contracts to check', () => {
  const names = contracts.map((c) => c.name);
  for (const expected of ['examples/kv-store', 'test/contracts/misbehave']) assert.ok(names.includes(expected), `${expected} exists`);
  for (const c of contracts) assert.ok(existsSync(c.wasm), `${c.wasm} is built (run node scripts/build.mjs)`);
});

for (const c of contracts) {
  test(`${c.name} imports only catalogue functions with their exact signatures`, () => {
    const { imports } = parseModule(new Uint8Array(readFileSync(c.wasm)));
    for (const imp of imports) {
      const what = `${c.name}: import ${imp.module}.${imp.name}`;
      assert.equal(imp.module, catalogue.module, `${what}: module`);
      assert.equal(imp.kind, 'func', `${what}: only functions may be imported`);
      const f = byName.get(imp.name);
      assert.ok(f, `${what}: not in protocol/host-functions.json`);
      assert.deepEqual(imp.type, { params: f.params.map((p) => p.type), results: f.result === null ? [] : [f.result] }, `${what}: signature`);
    }
  });

  test(`${c.name} exports memory and only () -> () methods`, () => {
    const { exports } = parseModule(new Uint8Array(readFileSync(c.wasm)));
    assert.ok(exports.some((e) => e.name === 'memory' && e.kind === 'memory'), 'exports "memory"');
    for (const e of exports) {
      if (e.kind !== 'func' || RUNTIME_EXPORTS.has(e.name)) continue;
      assert.deepEqual(e.type, { params: [], results: [] }, `${c.name}: method ${e.name} must be () -> ()`);
      assert.match(e.name, /^[A-Za-z0-9_]{1,256}$/, `${c.name}: method name ${e.name}`);
    }
  });
}

test('the SDK wraps every catalogue function (each is imported from ./env by a module other than env.ts)', () => {
  const dir = join(ROOT, 'sdk', 'assemblyscript', 'assembly');
  const wrapped = new Set<string>();
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.ts') || file === 'env.ts') continue;
    const text = readFileSync(join(dir, file), 'utf8');
    for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"\.\/env"/g)) {
      for (const item of (m[1] ?? '').split(',')) {
        const name = item.trim().split(/\s+as\s+/)[0];
        if (name) wrapped.add(name);
      }
    }
  }
  assert.deepEqual(catalogue.functions.map((f) => f.name).filter((n) => !wrapped.has(n)), [], 'host functions without an SDK wrapper');
});

test('together, the built contracts import every catalogue function (each can be exercised end to end)', () => {
  const used = new Set<string>();
  for (const c of contracts) {
    if (!existsSync(c.wasm)) continue;
    for (const imp of parseModule(new Uint8Array(readFileSync(c.wasm))).imports) used.add(imp.name);
  }
  assert.deepEqual(catalogue.functions.map((f) => f.name).filter((n) => !used.has(n)), [], 'host functions no contract imports');
});
