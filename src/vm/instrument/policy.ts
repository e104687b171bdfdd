export type NumType = 'i32' | 'i64' | 'f32' | 'f64';

/** What the VM allows a module to be. prepareModule's output depends on it: cache per policy. */
export interface ModulePolicy {
  maxModuleBytes: number;
  /** Imported plus defined functions. */
  maxFunctions: number;
  /** Parameters plus declared locals of one function. */
  maxLocalsPerFunction: number;
  maxTableSize: number;
  /** Sum of the sizes of all data segments. */
  maxDataBytes: number;
  /** Memory maximum is clamped to this; an initial size above it is rejected. */
  maxMemoryPages: number;
  /** Deterministic stack-height limit, in slots (see stack.ts and docs/determinism.md). */
  maxStackHeight: number;
  floats: 'canonicalize' | 'reject';
  /** undefined = allowed; otherwise the reason it is not (unknown import, wrong signature) */
  checkImport(module: string, name: string, type: { params: NumType[]; results: NumType[] }): string | undefined;
}
