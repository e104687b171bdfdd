/** The decoded shape of a WebAssembly module: what reader.ts produces and writer.ts serialises. */

export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const FUNCREF = 0x70;

/** Section ids in the order the binary format requires them (tags, 13, are rejected earlier). */
export const SECTION_ORDER = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 10, 11] as const;

export const KIND_FUNC = 0;
export const KIND_TABLE = 1;
export const KIND_MEMORY = 2;
export const KIND_GLOBAL = 3;

export interface FuncType {
  params: number[];
  results: number[];
}

export interface Limits {
  min: number;
  max: number | undefined;
}

export interface TableType {
  refType: number;
  limits: Limits;
}

export interface GlobalType {
  valType: number;
  mutable: boolean;
}

export interface Import {
  module: string;
  name: string;
  kind: number;
  /** KIND_FUNC: type index. */
  typeIndex: number;
  table?: TableType;
  memory?: Limits;
  global?: GlobalType;
  offset: number;
}

export interface Global {
  type: GlobalType;
  /** Constant expression bytes, including the final `end`. */
  init: Uint8Array;
  offset: number;
}

export interface Export {
  name: string;
  kind: number;
  index: number;
  offset: number;
}

export interface Element {
  /** Binary encoding flags 0..7 (bit 0 passive/declarative, bit 1 explicit table or declarative, bit 2 expressions). */
  flags: number;
  table: number;
  /** Active segments: offset expression bytes including `end`. */
  offsetExpr?: Uint8Array;
  /** elemkind (0x00) for flags 1..3, reftype for 5..7. */
  kind: number;
  /** Function indices (flags 0..3) */
  funcs?: number[];
  /** Element expressions (flags 4..7), each including `end`. */
  exprs?: Uint8Array[];
  offset: number;
}

export interface LocalGroup {
  count: number;
  type: number;
}

export interface FunctionBody {
  locals: LocalGroup[];
  /** Instructions, including the final `end`. A view into the original bytes. */
  code: Uint8Array;
  /** Offset of `code` in the original module, for error messages. */
  codeOffset: number;
}

export interface DataSegment {
  flags: number;
  offsetExpr?: Uint8Array;
  bytes: Uint8Array;
  offset: number;
}

export interface CustomSection {
  name: string;
  /** Section content after the name. */
  payload: Uint8Array;
  /** Id of the last standard section before it (0 if none). */
  after: number;
}

export interface WasmModule {
  types: FuncType[];
  imports: Import[];
  /** Type index of each defined function. */
  functions: number[];
  tables: TableType[];
  memories: Limits[];
  globals: Global[];
  exports: Export[];
  start: number | undefined;
  elements: Element[];
  dataCount: number | undefined;
  codes: FunctionBody[];
  datas: DataSegment[];
  customs: CustomSection[];
  /** Pre-encoded content of the code section; when set the writer uses it instead of `codes`. */
  codeSection?: Uint8Array;
  /** Standard sections present in the binary, even if empty (the writer keeps them for a faithful round trip). */
  present: Set<number>;
}

export function emptyModule(): WasmModule {
  return {
    types: [], imports: [], functions: [], tables: [], memories: [], globals: [], exports: [], start: undefined,
    elements: [], dataCount: undefined, codes: [], datas: [], customs: [], present: new Set(),
  };
}

export function valTypeName(t: number): 'i32' | 'i64' | 'f32' | 'f64' {
  switch (t) {
    case I32: return 'i32';
    case I64: return 'i64';
    case F32: return 'f32';
    case F64: return 'f64';
    default: throw new Error(`not a number type: 0x${t.toString(16)}`);
  }
}
