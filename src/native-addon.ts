/**
 * Hostlink's compiled addons (native/build/Release/*.node): where they are, and loading one once with the reason
 * it is unavailable. Every addon is optional at this level; its user decides what a missing one means (the VM's
 * channel and the state tree's SHA-256 fall back to JavaScript; a required sandbox refuses to start VMs).
 *
 * `process.dlopen` is what `require` ends in for a .node file; calling it directly skips the CommonJS resolver
 * (path lookups, package.json reads, a dozen loader functions compiled in every fresh VM process: ~2-4 ms of a
 * one-shot call's VM start-up).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** From dist/src/ (compiled) to <repo>/native/build/Release/. */
const RELEASE = new URL('../../native/build/Release/', import.meta.url);

/** What to tell a user whose addon is missing or broken. */
export const NATIVE_BUILD_HINT = '`node scripts/build-native.mjs` builds it (needs a C compiler: apt-get install build-essential)';

/** The absolute path of a file the native build produces (an addon or the sandbox launcher). */
export function nativeArtifact(file: string): string {
  return fileURLToPath(new URL(file, RELEASE));
}

/** An addon's exports, or why it cannot be used. */
export type AddonStatus<T> = { addon: T; reason?: undefined } | { addon?: undefined; reason: string };

const loaded = new Map<string, AddonStatus<unknown>>();

/** Loads the addon at `path` once (later calls return the same status); `what` names it in the reason. */
export function addonStatus<T>(path: string, what: string): AddonStatus<T> {
  let status = loaded.get(path);
  if (status === undefined) {
    if (!existsSync(path)) {
      status = { reason: `the ${what} addon is not built (${path} is missing); ${NATIVE_BUILD_HINT}` };
    } else {
      try {
        const module = { exports: {} };
        process.dlopen(module, path);
        status = { addon: module.exports };
      } catch (e) {
        status = { reason: `the ${what} addon failed to load (${e instanceof Error ? e.message : String(e)}); \`node scripts/build-native.mjs\` rebuilds it` };
      }
    }
    loaded.set(path, status);
  }
  return status as AddonStatus<T>;
}
