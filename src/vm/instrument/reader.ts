import { ByteReader } from './bytes.js';
import {
  emptyModule, SECTION_ORDER, I32, I64, F32, F64, FUNCREF,
  type WasmModule, type Limits, type TableType, type GlobalType, type Element, type LocalGroup,
} from './module.js';
import { ModuleRejected } from './rejected.js';

/**
 * Decodes the sections of a WebAssembly binary into a WasmModule. Function bodies stay as views into the input;
 * the rewriter decodes their instructions. Encodings of features outside the whitelist are rejected here, with
 * the feature's rule and the byte offset, because the reader cannot represent them.
 */
export function readModule(bytes: Uint8Array): WasmModule {
  const r = new ByteReader(bytes);
  if (bytes.length < 8) r.fail('not a WebAssembly module', 0);
  const magic = r.bytes(4);
  if (magic[0] !== 0 || magic[1] !== 0x61 || magic[2] !== 0x73 || magic[3] !== 0x6d) r.fail('bad magic number', 0);
  const version = r.bytes(4);
  if (version[0] !== 1 || version[1] !== 0 || version[2] !== 0 || version[3] !== 0) r.fail('unsupported version', 4);

  const m = emptyModule();
  let lastRank = -1;
  let lastId = 0;
  let functionCount: number | undefined;
  while (!r.eof()) {
    const idAt = r.pos;
    const id = r.u8();
    const size = r.u32();
    const start = r.pos;
    if (size > r.end - start) r.fail('section extends past the end', idAt);
    const s = new ByteReader(bytes, start, start + size);
    if (id === 0) {
      const name = s.name();
      m.customs.push({ name, payload: s.bytes(s.end - s.pos), after: lastId });
    } else {
      if (id === 13) throw new ModuleRejected('feature_exceptions', 'tag section', undefined, idAt);
      const rank = (SECTION_ORDER as readonly number[]).indexOf(id);
      if (rank < 0) r.fail(`unknown section ${id}`, idAt);
      if (rank <= lastRank) r.fail(`section ${id} out of order or repeated`, idAt);
      lastRank = rank;
      lastId = id;
      m.present.add(id);
      readSection(s, id, m);
      if (id === 3) functionCount = m.functions.length;
      if (id === 10 && m.codes.length !== (functionCount ?? 0)) r.fail('function and code section sizes differ', idAt);
      if (s.pos !== s.end) s.fail('section size mismatch');
    }
    r.pos = start + size;
  }
  if (m.functions.length !== m.codes.length) r.fail('function and code section sizes differ', bytes.length);
  return m;
}

function readSection(s: ByteReader, id: number, m: WasmModule): void {
  switch (id) {
    case 1: return vec(s, () => {
      const at = s.pos;
      const form = s.u8();
      if (form !== 0x60) {
        if ([0x5e, 0x5f, 0x50, 0x4f, 0x4e].includes(form)) throw new ModuleRejected('feature_gc', 'type form', undefined, at);
        s.fail('bad type form', at);
      }
      const params = valTypes(s);
      const results = valTypes(s);
      m.types.push({ params, results });
    });
    case 2: return vec(s, () => {
      const offset = s.pos;
      const module = s.name();
      const name = s.name();
      const kindAt = s.pos;
      const kind = s.u8();
      const imp = { module, name, kind, typeIndex: 0, offset } as WasmModule['imports'][number];
      switch (kind) {
        case 0: imp.typeIndex = s.u32(); break;
        case 1: imp.table = tableType(s); break;
        case 2: imp.memory = limits(s, true); break;
        case 3: imp.global = globalType(s); break;
        case 4: throw new ModuleRejected('feature_exceptions', 'tag import', undefined, kindAt);
        default: s.fail('bad import kind', kindAt);
      }
      m.imports.push(imp);
    });
    case 3: return vec(s, () => { m.functions.push(s.u32()); });
    case 4: return vec(s, () => {
      if (m.tables.length === 1) throw new ModuleRejected('feature_reference_types', 'more than one table', undefined, s.pos);
      m.tables.push(tableType(s));
    });
    case 5: return vec(s, () => {
      if (m.memories.length === 1) throw new ModuleRejected('feature_multi_memory', undefined, undefined, s.pos);
      m.memories.push(limits(s, true));
    });
    case 6: return vec(s, () => {
      const offset = s.pos;
      const type = globalType(s);
      m.globals.push({ type, init: constExpr(s), offset });
    });
    case 7: return vec(s, () => {
      const offset = s.pos;
      const name = s.name();
      const kindAt = s.pos;
      const kind = s.u8();
      if (kind === 4) throw new ModuleRejected('feature_exceptions', 'tag export', undefined, kindAt);
      if (kind > 3) s.fail('bad export kind', kindAt);
      m.exports.push({ name, kind, index: s.u32(), offset });
    });
    case 8: m.start = s.u32(); return;
    case 9: return vec(s, () => { m.elements.push(element(s)); });
    case 12: m.dataCount = s.u32(); return;
    case 10: return vec(s, () => {
      const size = s.u32();
      const bodyStart = s.pos;
      if (size > s.end - bodyStart) s.fail('function body extends past the section');
      const b = new ByteReader(s.buf, bodyStart, bodyStart + size);
      const locals: LocalGroup[] = [];
      vec(b, () => {
        const count = b.u32();
        locals.push({ count, type: valType(b) });
      });
      if (b.pos >= b.end) b.fail('empty function body');
      const codeOffset = b.pos;
      m.codes.push({ locals, code: b.bytes(b.end - b.pos), codeOffset });
      s.pos = bodyStart + size;
    });
    case 11: return vec(s, () => {
      const offset = s.pos;
      const flagsAt = s.pos;
      const flags = s.u32();
      if (flags > 2) s.fail('bad data segment flags', flagsAt);
      let offsetExpr: Uint8Array | undefined;
      if (flags === 2) {
        const memAt = s.pos;
        if (s.u32() !== 0) throw new ModuleRejected('feature_multi_memory', undefined, undefined, memAt);
      }
      if (flags !== 1) offsetExpr = constExpr(s);
      const len = s.u32();
      m.datas.push({ flags, offsetExpr, bytes: s.bytes(len), offset });
    });
  }
}

function vec(s: ByteReader, item: () => void): void {
  const at = s.pos;
  const n = s.u32();
  // Every item takes at least one byte: a count larger than what is left is malformed, not a big loop.
  if (n > s.end - s.pos) s.fail('vector count exceeds section', at);
  for (let i = 0; i < n; i++) item();
}

/** A value type allowed in the whitelist (numbers only); v128 and references name their feature. */
export function valType(s: ByteReader): number {
  const at = s.pos;
  const t = s.u8();
  if (t === I32 || t === I64 || t === F32 || t === F64) return t;
  if (t === 0x7b) throw new ModuleRejected('feature_simd', 'v128', undefined, at);
  if (t === 0x70 || t === 0x6f) throw new ModuleRejected('feature_reference_types', 'reference value type', undefined, at);
  if (t >= 0x63 && t <= 0x6e) throw new ModuleRejected('feature_gc', 'reference value type', undefined, at);
  return s.fail('bad value type', at);
}

function valTypes(s: ByteReader): number[] {
  const out: number[] = [];
  vec(s, () => { out.push(valType(s)); });
  return out;
}

/** Pages of 64 KiB a 32-bit memory can address (4 GiB). */
const MAX_MEMORY32_PAGES = 65536;

function limits(s: ByteReader, memory: boolean): Limits {
  const at = s.pos;
  const flags = s.u8();
  // The 64-bit index flag: memory64, which also brings 64-bit tables.
  if (flags & 0x04) throw new ModuleRejected('feature_memory64', memory ? undefined : '64-bit table', undefined, at);
  if (memory && (flags & 0x02)) throw new ModuleRejected('feature_threads', 'shared memory', undefined, at);
  if (flags > 1) s.fail('bad limits flags', at);
  const min = s.u32();
  const max = flags === 1 ? s.u32() : undefined;
  // A 32-bit memory has at most 65536 pages: larger bounds make the module invalid (V8 refuses it), never clamped.
  if (memory && (min > MAX_MEMORY32_PAGES || (max !== undefined && max > MAX_MEMORY32_PAGES))) {
    throw new ModuleRejected('invalid_module', `memory size must be at most ${MAX_MEMORY32_PAGES} pages`, undefined, at);
  }
  if (max !== undefined && max < min) throw new ModuleRejected('invalid_module', 'size minimum must not be greater than maximum', undefined, at);
  return { min, max };
}

function tableType(s: ByteReader): TableType {
  const at = s.pos;
  const refType = s.u8();
  if (refType !== FUNCREF) {
    if (refType === 0x6f) throw new ModuleRejected('feature_reference_types', 'externref table', undefined, at);
    if (refType >= 0x63 && refType <= 0x6e) throw new ModuleRejected('feature_gc', 'table type', undefined, at);
    s.fail('bad table element type', at);
  }
  return { refType, limits: limits(s, false) };
}

function globalType(s: ByteReader): GlobalType {
  const valT = valType(s);
  const at = s.pos;
  const mut = s.u8();
  if (mut > 1) s.fail('bad global mutability', at);
  return { valType: valT, mutable: mut === 1 };
}

/**
 * A constant expression: one of the MVP constant instructions (or ref.func / ref.null in element segments)
 * followed by `end`. Anything longer is extended-const or GC, both outside the whitelist.
 */
export function constExpr(s: ByteReader): Uint8Array {
  const start = s.pos;
  const op = s.u8();
  switch (op) {
    case 0x41: s.skipLeb(5); break;
    case 0x42: s.skipLeb(10); break;
    case 0x43: s.skip(4); break;
    case 0x44: s.skip(8); break;
    case 0x23: s.u32(); break; // global.get
    case 0xd2: s.u32(); break; // ref.func
    case 0xd0: s.u8(); break; // ref.null
    case 0xfd: throw new ModuleRejected('feature_simd', 'constant expression', undefined, start);
    default: throw new ModuleRejected('invalid_const_expr', undefined, undefined, start);
  }
  const endAt = s.pos;
  if (s.u8() !== 0x0b) throw new ModuleRejected('invalid_const_expr', 'more than one instruction', undefined, endAt);
  return s.buf.subarray(start, s.pos);
}

function element(s: ByteReader): Element {
  const offset = s.pos;
  const flags = s.u32();
  if (flags > 7) s.fail('bad element segment flags', offset);
  const el: Element = { flags, table: 0, kind: 0, offset };
  if ((flags & 1) === 0) {
    if (flags & 2) el.table = s.u32();
    el.offsetExpr = constExpr(s);
  }
  if (flags & 3) el.kind = s.u8();
  if (flags & 4) {
    const exprs: Uint8Array[] = [];
    vec(s, () => { exprs.push(constExpr(s)); });
    el.exprs = exprs;
  } else {
    const funcs: number[] = [];
    vec(s, () => { funcs.push(s.u32()); });
    el.funcs = funcs;
  }
  return el;
}
