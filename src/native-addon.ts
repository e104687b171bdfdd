/**
 * Loads one of Hostlink's compiled addons (native/build/Release/*.node) by its absolute path. `process.dlopen`
 * is what `require` ends in for a .node file; calling it directly skips the CommonJS resolver (path lookups,
 * package.json reads, a dozen loader functions compiled in every fresh VM process: ~2-4 ms of a one-shot
 * call's VM start-up). Throws what dlopen throws (missing file, wrong architecture, unresolved symbol).
 */
export function loadAddon<T>(path: string): T {
  const module = { exports: {} as T };
  process.dlopen(module, path);
  return module.exports;
}
