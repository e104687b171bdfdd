/** Generators of large WebAssembly modules for the deploy-bound tests (binary built directly: wat is too slow). */
/** Unsigned LEB128, as the binary format writes sizes and counts. */
export const leb = (n: number): number[] => {
  const o: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    o.push(b);
  } while (n);
  return o;
};
const section = (id: number, body: number[] | Uint8Array): Uint8Array => Buffer.concat([Uint8Array.from([id, ...leb(body.length)]), Uint8Array.from(body)]);
const HEADER = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0];

/**
 * `types` distinct function types (no results) and `functions` functions cycling through them, each body `ops` x
 * (i32.const 1; drop), and a memory exported as "memory" (which every deployable module needs).
 */
export function manyTypesAndFunctions(types: number, functions: number, ops: number): Uint8Array {
  const t: number[] = [...leb(types)];
  for (let i = 0; i < types; i++) {
    const params: number[] = [];
    for (let x = i + 1; x; x >>= 1) params.push(x & 1 ? 0x7e : 0x7f);
    t.push(0x60, ...leb(params.length), ...params, 0);
  }
  const f: number[] = [...leb(functions)];
  for (let i = 0; i < functions; i++) f.push(...leb(i % types));
  const one: number[] = [];
  for (let k = 0; k < ops; k++) one.push(0x41, 0x01, 0x1a);
  one.push(0x0b);
  const body = Uint8Array.from([...leb(one.length + 1), 0, ...one]);
  const code = Buffer.concat([Uint8Array.from(leb(functions)), ...Array<Uint8Array>(functions).fill(body)]);
  const exp = [1, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  return Uint8Array.from(Buffer.concat([Uint8Array.from(HEADER), section(1, t), section(3, f), section(5, [1, 0, 1]), section(7, exp), section(10, code)]));
}

/** One exported function `run` (() -> ()) whose body is `bytes` bytes of (i32.const 1; drop), and a memory. */
export function oneHugeFunction(bytes: number): Uint8Array {
  const ops = Math.floor(bytes / 3);
  const inner = Buffer.alloc(ops * 3 + 2);
  inner[0] = 0; // no locals
  for (let k = 0; k < ops; k++) inner.set([0x41, 0x01, 0x1a], 1 + k * 3);
  inner[inner.length - 1] = 0x0b;
  const body = Buffer.concat([Uint8Array.from(leb(inner.length)), inner]);
  const exp = [2, 3, 0x72, 0x75, 0x6e, 0, 0, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  return Uint8Array.from(
    Buffer.concat([Uint8Array.from(HEADER), section(1, [1, 0x60, 0, 0]), section(3, [1, 0]), section(5, [1, 0, 1]), section(7, exp), section(10, Buffer.concat([Uint8Array.of(1), body]))]),
  );
}

/** A module exporting a function under `name` (UTF-8) and a memory with the given limits (pages). */
export function namedExportAndMemory(name: string, memMin: number, memMax?: number): Uint8Array {
  const n = [...Buffer.from(name, 'utf8')];
  const mem = memMax === undefined ? [1, 0, ...leb(memMin)] : [1, 1, ...leb(memMin), ...leb(memMax)];
  const exp = [2, ...leb(n.length), ...n, 0, 0, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  return Uint8Array.from(Buffer.concat([Uint8Array.from(HEADER), section(1, [1, 0x60, 0, 0]), section(3, [1, 0]), section(5, mem), section(7, exp), section(10, [1, 2, 0, 0x0b])]));
}

/**
 * One exported function `run` of about `bytes` bytes: a local f64 through `f64.sqrt` over and over. Each sqrt is
 * one byte that NaN canonicalisation follows with 17, so the function grows ~18x when instrumented.
 */
export function sqrtChain(bytes: number): Uint8Array {
  const n = Math.max(1, bytes - 8);
  const inner = Buffer.alloc(n + 7);
  inner.set([1, 1, 0x7c, 0x20, 0x00], 0); // one local f64; local.get 0
  inner.fill(0x9f, 5, 5 + n); // f64.sqrt
  inner.set([0x1a, 0x0b], 5 + n); // drop; end
  const body = Buffer.concat([Uint8Array.from(leb(inner.length)), inner]);
  const exp = [2, 3, 0x72, 0x75, 0x6e, 0, 0, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  return Uint8Array.from(
    Buffer.concat([Uint8Array.from(HEADER), section(1, [1, 0x60, 0, 0]), section(3, [1, 0]), section(5, [1, 0, 1]), section(7, exp), section(10, Buffer.concat([Uint8Array.of(1), body]))]),
  );
}

/**
 * An exported function `run` that does nothing, `functions` more of `bytes` bytes each of `f64.sqrt` over a local
 * (~18x once instrumented: large compiled code from a small module), a memory, and a data segment holding `tag`,
 * so that modules with different tags are different code; then a custom section of `pad` bytes (kept out of the
 * instrumented module), which makes the module large enough for its code's growth (max_instrumented_growth).
 */
export function sqrtChains(functions: number, bytes: number, tag: number, pad = 0): Uint8Array {
  const inner = Buffer.alloc(bytes + 7);
  inner.set([1, 1, 0x7c, 0x20, 0x00], 0); // one local f64; local.get 0
  inner.fill(0x9f, 5, 5 + bytes); // f64.sqrt
  inner.set([0x1a, 0x0b], 5 + bytes); // drop; end
  const body = Buffer.concat([Uint8Array.from(leb(inner.length)), inner]);
  const code = Buffer.concat([Uint8Array.from(leb(functions + 1)), Uint8Array.of(2, 0, 0x0b), ...Array<Buffer>(functions).fill(body)]);
  const exp = [2, 3, 0x72, 0x75, 0x6e, 0, 0, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  const data = [1, 0, 0x41, 0, 0x0b, 4, ...Buffer.from(Uint32Array.of(tag).buffer)];
  return Uint8Array.from(
    Buffer.concat([
      Uint8Array.from(HEADER),
      section(1, [1, 0x60, 0, 0]),
      section(3, [...leb(functions + 1), ...Array<number>(functions + 1).fill(0)]),
      section(5, [1, 0, 1]),
      section(7, exp),
      section(10, code),
      section(11, data),
      ...(pad > 0 ? [section(0, Buffer.concat([Uint8Array.of(3), Buffer.from('pad'), Buffer.alloc(pad)]))] : []),
    ]),
  );
}

/**
 * One exported function `run` and a memory, `globals` mutable i32 globals, and a 65,536-entry table that two
 * active element segments fill with `entries` references to `run` between them.
 */
export function globalsAndElements(globals: number, entries: number): Uint8Array {
  const g: number[] = [...leb(globals)];
  for (let i = 0; i < globals; i++) g.push(0x7f, 1, 0x41, 0, 0x0b);
  const halves = [Math.ceil(entries / 2), Math.floor(entries / 2)];
  const segment = (n: number): number[] => [0, 0x41, 0, 0x0b, ...leb(n), ...new Array<number>(n).fill(0)];
  const exp = [2, 3, 0x72, 0x75, 0x6e, 0, 0, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  return Uint8Array.from(
    Buffer.concat([
      Uint8Array.from(HEADER), section(1, [1, 0x60, 0, 0]), section(3, [1, 0]), section(4, [1, 0x70, 0, ...leb(65536)]),
      section(5, [1, 0, 1]), section(6, g), section(7, exp), section(9, [2, ...segment(halves[0]!), ...segment(halves[1]!)]),
      section(10, [1, 2, 0, 0x0b]),
    ]),
  );
}

/** A module whose one empty function is exported `count - 1` times (`run`, `e1`, `e2`, ...), beside its memory. */
export function manyExports(count: number): Uint8Array {
  const names = ['run', ...Array.from({ length: count - 2 }, (_, i) => `e${i + 1}`)];
  const exp: number[] = [...leb(count)];
  for (const name of names) exp.push(...leb(name.length), ...Buffer.from(name), 0, 0);
  exp.push(6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0);
  return Uint8Array.from(
    Buffer.concat([Uint8Array.from(HEADER), section(1, [1, 0x60, 0, 0]), section(3, [1, 0]), section(5, [1, 0, 1]), section(7, exp), section(10, [1, 2, 0, 0x0b])]),
  );
}

/** A module of the given sections (id, body), in order: for modules the engine itself refuses. */
export function moduleOf(sections: [number, number[]][]): Uint8Array {
  return Uint8Array.from(Buffer.concat([Uint8Array.from(HEADER), ...sections.map(([id, body]) => section(id, body))]));
}

/**
 * One exported function `run` (() -> ()) with `locals` i32 locals whose body is `ifs` x (local.get 0; if; end),
 * and a memory: each `if` is a control point at which V8's baseline compiler copies every local.
 */
export function ifsWithLocals(locals: number, ifs: number): Uint8Array {
  const body: number[] = [1, ...leb(locals), 0x7f];
  for (let i = 0; i < ifs; i++) body.push(0x20, 0x00, 0x04, 0x40, 0x0b);
  body.push(0x0b);
  const exp = [2, 3, 0x72, 0x75, 0x6e, 0, 0, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  return moduleOf([[1, [1, 0x60, 0, 0]], [3, [1, 0]], [5, [1, 0, 1]], [7, exp], [10, [1, ...leb(body.length), ...body]]]);
}

/** `imports` imports of env.panic ((i64) -> ()) and one exported function `run` of its own, and a memory. */
export function manyImports(imports: number): Uint8Array {
  const one = [3, 0x65, 0x6e, 0x76, 5, 0x70, 0x61, 0x6e, 0x69, 0x63, 0, 1];
  const imp: number[] = [...leb(imports)];
  for (let i = 0; i < imports; i++) imp.push(...one);
  const exp = [2, 3, 0x72, 0x75, 0x6e, 0, ...leb(imports), 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  return moduleOf([[1, [2, 0x60, 0, 0, 0x60, 1, 0x7e, 0]], [2, imp], [3, [1, 0]], [5, [1, 0, 1]], [7, exp], [10, [1, 2, 0, 0x0b]]]);
}

/**
 * `run` calls `functions` functions, each of `locals` i32 locals and `ifs` x (local.get 0; if; end), in turn: its
 * first call compiles them all.
 */
export function manyFunctionsWithIfs(functions: number, locals: number, ifs: number): Uint8Array {
  const run: number[] = [0];
  for (let f = 1; f <= functions; f++) run.push(0x10, ...leb(f));
  run.push(0x0b);
  const one: number[] = [1, ...leb(locals), 0x7f];
  for (let i = 0; i < ifs; i++) one.push(0x20, 0x00, 0x04, 0x40, 0x0b);
  one.push(0x0b);
  const code: number[] = [...leb(functions + 1), ...leb(run.length), ...run];
  for (let f = 0; f < functions; f++) code.push(...leb(one.length), ...one);
  const exp = [2, 3, 0x72, 0x75, 0x6e, 0, 0, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  return moduleOf([[1, [1, 0x60, 0, 0]], [3, [...leb(functions + 1), ...Array<number>(functions + 1).fill(0)]], [5, [1, 0, 1]], [7, exp], [10, code]]);
}

/**
 * `run` (no locals) calls one function of `locals` i32 locals: `loops` nested loops whose innermost body adds 1 to
 * every local, then counts 200 times around a loop holding an `if` arm of `arm` instructions that is never taken
 * (machine code that counts toward V8's tier-up budget, not toward gas). Under V8's optimizing compiler every
 * loop header needs a value per local written inside it: loops x locals from loops + locals bytes.
 */
export function tierUpLoops(locals: number, loops: number, arm: number): Uint8Array {
  const s32 = (n: number): number[] => {
    const o: number[] = [];
    for (;;) {
      const b = n & 0x7f;
      n >>= 7;
      if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...o, b];
      o.push(b | 0x80);
    }
  };
  const body: number[] = [1, ...leb(locals), 0x7f];
  for (let i = 0; i < loops; i++) body.push(0x03, 0x40);
  for (let j = 1; j < locals; j++) body.push(0x20, ...leb(j), 0x41, 1, 0x6a, 0x21, ...leb(j)); // local j += 1
  body.push(0x41, ...s32(200), 0x21, 0x00, 0x03, 0x40, 0x41, 0x00, 0x04, 0x40); // local 0 = 200; loop; if (0)
  for (let i = 0; i < arm; i++) body.push(0x20, 0x00, 0x41, 0x01, 0x6a, 0x21, 0x00);
  body.push(0x0b, 0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, 0x0d, 0x00, 0x0b); // end if; br_if --local 0; end loop
  for (let i = 0; i < loops; i++) body.push(0x0b);
  body.push(0x0b);
  const run = [0, 0x10, 1, 0x0b];
  const exp = [2, 3, 0x72, 0x75, 0x6e, 0, 0, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  const code = [2, ...leb(run.length), ...run, ...leb(body.length), ...body];
  return moduleOf([[1, [1, 0x60, 0, 0]], [3, [2, 0, 0]], [5, [1, 0, 1]], [7, exp], [10, code]]);
}

/**
 * `run` with `locals` i32 locals whose body is `calls` calls of an empty function inside an `if` never taken: a
 * few gas, but V8 compiles the whole body on the first call, and at each call it walks every local.
 */
export function callsWithLocals(locals: number, calls: number): Uint8Array {
  const body: number[] = [1, ...leb(locals), 0x7f, 0x41, 0x00, 0x04, 0x40];
  for (let i = 0; i < calls; i++) body.push(0x10, 0x01);
  body.push(0x0b, 0x0b);
  const exp = [2, 3, 0x72, 0x75, 0x6e, 0, 0, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  const nop = [0, 0x0b];
  const code = [2, ...leb(body.length), ...body, ...leb(nop.length), ...nop];
  return moduleOf([[1, [1, 0x60, 0, 0]], [3, [2, 0, 0]], [5, [1, 0, 1]], [7, exp], [10, code]]);
}

/**
 * `run` (() -> (), empty) and a function of `arity` values whose body is unreachable code: `unreachable`, then
 * `n` points at which V8's validator checks `arity` values the stack does not hold:
 *   return  the function returns `arity` i32 results; each `return` checks them
 *   br      a block of `arity` results; each `br 0` checks them
 *   call    a function of `arity` i32 parameters (at most 998, the node's limit); each `call` checks them
 * V8 validates every function when the module is compiled, whether or not it is ever called.
 */
export function unreachableArity(shape: 'return' | 'br' | 'call', arity: number, n: number): Uint8Array {
  const i32s = (k: number): number[] => [...leb(k), ...Array<number>(k).fill(0x7f)];
  // Types: 0 () -> (), 1 () -> (arity x i32), 2 (arity x i32) -> ().
  const types = [3, 0x60, 0, 0, 0x60, 0, ...i32s(arity), 0x60, ...i32s(Math.min(arity, 998)), 0];
  const body: number[] = [0];
  if (shape === 'br') body.push(0x02, 1); // block (type 1)
  body.push(0x00);
  for (let i = 0; i < n; i++) {
    if (shape === 'return') body.push(0x0f);
    else if (shape === 'br') body.push(0x0c, 0x00);
    else body.push(0x10, 0x02);
  }
  if (shape === 'br') body.push(0x0b);
  body.push(0x0b);
  const run = [0, 0x0b];
  const sink = [0, 0x0b];
  // Functions: 0 run (type 0), 1 the unreachable code (type 1, or type 0 for calls), 2 the callee (type 2).
  const funcs = [3, 0, shape === 'call' ? 0 : 1, 2];
  const exp = [2, 3, 0x72, 0x75, 0x6e, 0, 0, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  const code = [3, ...leb(run.length), ...run, ...leb(body.length), ...body, ...leb(sink.length), ...sink];
  return moduleOf([[1, types], [3, funcs], [5, [1, 0, 1]], [7, exp], [10, code]]);
}

/** `run` (() -> (), calling the first `called` of the others) and `functions - 1` empty functions of type () -> (). */
export function manyEmptyFunctions(functions: number, called = 0): Uint8Array {
  const run = [0];
  for (let i = 1; i <= called; i++) run.push(0x10, ...leb(i));
  run.push(0x0b);
  const code = [...leb(functions), ...leb(run.length), ...run];
  for (let i = 1; i < functions; i++) code.push(2, 0, 0x0b);
  const exp = [2, 3, 0x72, 0x75, 0x6e, 0, 0, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0];
  return moduleOf([[1, [1, 0x60, 0, 0]], [3, [...leb(functions), ...Array<number>(functions).fill(0)]], [5, [1, 0, 1]], [7, exp], [10, code]]);
}
