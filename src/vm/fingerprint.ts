/**
 * Error fingerprint (docs/results.md): the WebAssembly backtrace at the point of failure, as ORIGINAL function
 * indices, innermost first, and a SHA-256 of each linear memory.
 *
 * Deterministic by construction:
 * - the failure happens at the same instruction on every run (gas and stack height are counted by the
 *   instrumented code itself, traps are precise in WebAssembly), so the chain of active calls is the same;
 * - V8 never inlines WebAssembly functions in Node 20 and reports every wasm frame, whichever tier compiled
 *   it; createMeter raises Error.stackTraceLimit above the deepest possible wasm stack, so the list is never a
 *   truncated prefix;
 * - frames of the instrumentation (entry thunks, helpers) are dropped and the others mapped back to the
 *   original module's index space, so the frames do not depend on INSTRUMENTATION_VERSION;
 * - memory contents at a trap are the result of the same instructions (a trapping store writes nothing).
 * JS frames (host functions, the runner) are ignored: they are not part of the contract's execution.
 */
import { createHash } from 'node:crypto';
import type { PreparedModule } from './instrument/index.js';

export interface Fingerprint {
  frames: number[];
  memoryHashes: Uint8Array[];
}

// The location at the end of a frame line: "at wasm://wasm/<hash>:wasm-function[N]:0x<offset>", possibly in
// parentheses after a function name. Names cannot be spoofed: the instrumented module has no name section.
const WASM_FRAME = /:wasm-function\[(\d+)\]:0x[0-9a-f]+\)?$/;

export function captureFingerprint(err: unknown, memories: WebAssembly.Memory[], prepared: PreparedModule): Fingerprint {
  return { frames: wasmFrames(err, prepared), memoryHashes: memories.map(hashMemory) };
}

/** Original function indices of the wasm frames in err.stack, innermost first. */
export function wasmFrames(err: unknown, prepared: PreparedModule): number[] {
  const stack = typeof err === 'object' && err !== null ? (err as { stack?: unknown }).stack : undefined;
  if (typeof stack !== 'string') return [];
  const frames: number[] = [];
  for (const line of stack.split('\n')) {
    if (!line.startsWith('    at ')) continue;
    const m = WASM_FRAME.exec(line);
    if (!m) continue;
    const original = originalFunctionIndex(Number(m[1]), prepared);
    if (original !== undefined) frames.push(original);
  }
  return frames;
}

/** Instrumented function index -> original one, or undefined for functions the instrumentation added. */
export function originalFunctionIndex(index: number, prepared: PreparedModule): number | undefined {
  const imported = prepared.importedFunctionCount;
  if (index < imported) return index;
  if (index < imported + prepared.addedImports) return undefined;
  const original = index - prepared.addedImports;
  return original < prepared.functionCount ? original : undefined;
}

export function hashMemory(memory: WebAssembly.Memory): Uint8Array {
  return new Uint8Array(createHash('sha256').update(new Uint8Array(memory.buffer)).digest());
}
