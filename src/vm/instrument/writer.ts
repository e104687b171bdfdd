import { ByteWriter } from './bytes.js';
import { BT_EMPTY, type Instr } from './code.js';
import {
  OP, FC, IMM_NONE, IMM_BLOCKTYPE, IMM_LABEL, IMM_BR_TABLE, IMM_FUNC, IMM_CALL_INDIRECT, IMM_LOCAL, IMM_GLOBAL,
  IMM_MEMARG, IMM_MEMIDX, IMM_I32, IMM_I64, IMM_F32, IMM_F64, IMM_DATA_MEM, IMM_DATA, IMM_MEM_MEM, IMM_ELEM_TABLE,
  IMM_ELEM, IMM_TABLE_TABLE,
} from './opcodes.js';
import { SECTION_ORDER, type WasmModule, type Limits, type TableType, type GlobalType, type Element } from './module.js';

/**
 * Serialises a WasmModule. Integers are written in their shortest LEB128 form, the form every toolchain we
 * know emits, so reading then writing an unmodified module gives back the same bytes (the round-trip tests
 * check this). Custom sections are written where they were found.
 */
export function writeModule(m: WasmModule, sizeHint = 1024): Uint8Array {
  const out = new ByteWriter(sizeHint + 64);
  out.bytes(HEADER);
  const section = new ByteWriter(Math.max(1024, sizeHint));
  writeCustoms(out, m, 0);
  for (const id of SECTION_ORDER) {
    if (!m.present.has(id) && isEmpty(m, id)) continue;
    section.length = 0;
    writeSection(section, m, id);
    out.u8(id);
    out.sized(section);
    writeCustoms(out, m, id);
  }
  return out.finish();
}

const HEADER = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

function writeCustoms(out: ByteWriter, m: WasmModule, after: number): void {
  for (const c of m.customs) {
    if (c.after !== after) continue;
    const w = new ByteWriter(c.payload.length + 16);
    w.name(c.name);
    w.bytes(c.payload);
    out.u8(0);
    out.sized(w);
  }
}

function isEmpty(m: WasmModule, id: number): boolean {
  switch (id) {
    case 1: return m.types.length === 0;
    case 2: return m.imports.length === 0;
    case 3: return m.functions.length === 0;
    case 4: return m.tables.length === 0;
    case 5: return m.memories.length === 0;
    case 6: return m.globals.length === 0;
    case 7: return m.exports.length === 0;
    case 8: return m.start === undefined;
    case 9: return m.elements.length === 0;
    case 12: return m.dataCount === undefined;
    case 10: return m.codes.length === 0;
    case 11: return m.datas.length === 0;
    default: return true;
  }
}

function writeSection(w: ByteWriter, m: WasmModule, id: number): void {
  switch (id) {
    case 1:
      w.u32(m.types.length);
      for (const t of m.types) {
        w.u8(0x60);
        w.u32(t.params.length);
        for (const p of t.params) w.u8(p);
        w.u32(t.results.length);
        for (const r of t.results) w.u8(r);
      }
      return;
    case 2:
      w.u32(m.imports.length);
      for (const imp of m.imports) {
        w.name(imp.module);
        w.name(imp.name);
        w.u8(imp.kind);
        if (imp.kind === 0) w.u32(imp.typeIndex);
        else if (imp.kind === 1) tableType(w, imp.table!);
        else if (imp.kind === 2) limits(w, imp.memory!);
        else globalType(w, imp.global!);
      }
      return;
    case 3:
      w.u32(m.functions.length);
      for (const f of m.functions) w.u32(f);
      return;
    case 4:
      w.u32(m.tables.length);
      for (const t of m.tables) tableType(w, t);
      return;
    case 5:
      w.u32(m.memories.length);
      for (const l of m.memories) limits(w, l);
      return;
    case 6:
      w.u32(m.globals.length);
      for (const g of m.globals) {
        globalType(w, g.type);
        w.bytes(g.init);
      }
      return;
    case 7:
      w.u32(m.exports.length);
      for (const e of m.exports) {
        w.name(e.name);
        w.u8(e.kind);
        w.u32(e.index);
      }
      return;
    case 8:
      w.u32(m.start!);
      return;
    case 9:
      w.u32(m.elements.length);
      for (const e of m.elements) element(w, e);
      return;
    case 12:
      w.u32(m.dataCount!);
      return;
    case 10: {
      if (m.codeSection) {
        w.bytes(m.codeSection);
        return;
      }
      w.u32(m.codes.length);
      const body = new ByteWriter(4096);
      for (const c of m.codes) {
        body.length = 0;
        body.u32(c.locals.length);
        for (const l of c.locals) {
          body.u32(l.count);
          body.u8(l.type);
        }
        body.bytes(c.code);
        w.sized(body);
      }
      return;
    }
    case 11:
      w.u32(m.datas.length);
      for (const d of m.datas) {
        w.u32(d.flags);
        if (d.flags === 2) w.u32(0);
        if (d.offsetExpr) w.bytes(d.offsetExpr);
        w.sized(d.bytes);
      }
      return;
  }
}

function limits(w: ByteWriter, l: Limits): void {
  w.u8(l.max === undefined ? 0 : 1);
  w.u32(l.min);
  if (l.max !== undefined) w.u32(l.max);
}

function tableType(w: ByteWriter, t: TableType): void {
  w.u8(t.refType);
  limits(w, t.limits);
}

function globalType(w: ByteWriter, g: GlobalType): void {
  w.u8(g.valType);
  w.u8(g.mutable ? 1 : 0);
}

function element(w: ByteWriter, e: Element): void {
  w.u32(e.flags);
  if ((e.flags & 1) === 0) {
    if (e.flags & 2) w.u32(e.table);
    w.bytes(e.offsetExpr!);
  }
  if (e.flags & 3) w.u8(e.kind);
  if (e.flags & 4) {
    w.u32(e.exprs!.length);
    for (const x of e.exprs!) w.bytes(x);
  } else {
    w.u32(e.funcs!.length);
    for (const f of e.funcs!) w.u32(f);
  }
}

/**
 * Encodes one decoded instruction from its fields (used by the round-trip tests to check that the decoder
 * understood every immediate; the rewriter copies original bytes instead).
 */
export function writeInstr(w: ByteWriter, ins: Instr, original: Uint8Array): void {
  w.u8(ins.op);
  let imm: number;
  if (ins.op === 0xfc) {
    w.u32(ins.sub);
    imm = FC.imm[ins.sub]!;
  } else {
    imm = OP.imm[ins.op]!;
  }
  switch (imm) {
    case IMM_NONE: return;
    case IMM_BLOCKTYPE:
      if (ins.a === BT_EMPTY) w.u8(0x40);
      else if (ins.a < 0) w.u8(0x80 + ins.a);
      else w.sleb(ins.a);
      return;
    case IMM_LABEL: case IMM_FUNC: case IMM_LOCAL: case IMM_GLOBAL: case IMM_DATA: case IMM_ELEM: case IMM_MEMIDX:
      w.u32(ins.a);
      return;
    case IMM_BR_TABLE:
      w.u32(ins.count);
      for (let i = 0; i <= ins.count; i++) w.u32(ins.targets[i]!);
      return;
    case IMM_CALL_INDIRECT: case IMM_MEMARG: case IMM_DATA_MEM: case IMM_MEM_MEM: case IMM_ELEM_TABLE: case IMM_TABLE_TABLE:
      w.u32(ins.a);
      w.u32(ins.b);
      return;
    case IMM_I32: w.sleb(ins.a); return;
    case IMM_I64: writeS64(w, ins.i64); return;
    case IMM_F32: w.bytes(original.subarray(ins.end - 4, ins.end)); return;
    case IMM_F64: w.bytes(original.subarray(ins.end - 8, ins.end)); return;
  }
}

export function writeS64(w: ByteWriter, v: bigint): void {
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
      w.u8(b);
      return;
    }
    w.u8(b | 0x80);
  }
}
