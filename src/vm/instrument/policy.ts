/** Nesting depth allowed when a policy does not say (about 6 MB of V8 compile state at most). */
export const DEFAULT_MAX_NESTING_DEPTH = 4096;

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
  /**
   * Deepest nesting of block/loop/if in one function (default DEFAULT_MAX_NESTING_DEPTH): V8 needs memory per
   * open block while compiling, so depth, not size, is what makes a small module expensive to compile.
   */
  maxNestingDepth?: number;
  /** undefined = allowed; otherwise the reason it is not (unknown import, wrong signature) */
  checkImport(module: string, name: string, type: { params: NumType[]; results: NumType[] }): string | undefined;
}
