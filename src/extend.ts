/**
 * `{ ...base, ...extra }` for code that runs per call, request or execution.
 *
 * Why not the literal: in Node 20's optimized code, an object literal that starts with a spread and then defines
 * a property the spread did not copy (`{ ...info, vmPid }`) is given a new hidden class every time it runs. Each
 * one is allocated in V8's old generation, and every property read of such an object misses its inline cache and
 * allocates a handler there too: on a busy host that was about three hidden classes and ten handlers per call
 * (docs/performance.md, "Hidden classes made per call").
 * `Object.assign` onto a fresh object reuses one hidden class per shape. test/perf/object-shapes.test.ts keeps such
 * literals out of the modules a call runs through.
 */
export function extend<A extends object, B extends object>(base: A, extra: B): Omit<A, keyof B> & B {
  return Object.assign({}, base, extra);
}
