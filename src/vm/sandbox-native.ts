/**
 * Where the sandbox's native parts live and how to load them: the addon that installs no_new_privs, the
 * lifeline thread and the seccomp filter inside the VM (native/hostlink_sandbox.c), and the launcher that
 * prepares the process before Node starts (native/hostlink_launch.c). Both are optional builds; callers decide
 * what a missing part means (sandbox 'required' refuses, 'best-effort' warns).
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadAddon } from '../native-addon.js';

/** The addon's exports. */
export interface SandboxAddon {
  /** no_new_privs, a lifeline thread on `lifelineFd` (-1: none), then the filter on every thread (TSYNC). */
  install(lifelineFd: number): void;
  /** The filter's rules on this architecture, by action. */
  rules(): SeccompRules;
  /** One raw system call JavaScript has no API for (self-test): 0 when it succeeded, else the errno. */
  attempt(name: 'ptrace' | 'raise_nofile' | 'setuid_root' | 'unshare_net' | 'fork' | 'execve', pid?: number): number;
}

export interface SeccompRules {
  allow: string[];
  eacces: string[];
  eperm: string[];
  kill: string[];
  conditional: string[];
  otherwise: string;
}

const RELEASE = new URL('../../../native/build/Release/', import.meta.url);
export const SANDBOX_ADDON_PATH = fileURLToPath(new URL('hostlink_sandbox.node', RELEASE));
export const LAUNCHER_PATH = fileURLToPath(new URL('hostlink-launch', RELEASE));
const BUILD_HINT = 'build it with `node scripts/build-native.mjs` (needs a C compiler: apt-get install build-essential)';

type Loaded = { addon: SandboxAddon; reason?: undefined } | { addon?: undefined; reason: string };
let loaded: Loaded | undefined;

export function sandboxAddon(): Loaded {
  if (loaded) return loaded;
  if (process.platform !== 'linux') loaded = { reason: `seccomp exists on Linux only (this is ${process.platform})` };
  else if (!existsSync(SANDBOX_ADDON_PATH)) loaded = { reason: `the sandbox addon is not built (${SANDBOX_ADDON_PATH} is missing); ${BUILD_HINT}` };
  else {
    try {
      loaded = { addon: loadAddon<SandboxAddon>(SANDBOX_ADDON_PATH) };
    } catch (e) {
      loaded = { reason: `the sandbox addon failed to load (${(e as Error).message}); rebuild it: ${BUILD_HINT}` };
    }
  }
  return loaded;
}

/** The launcher's path, or why it cannot be used. */
export function launcherStatus(): { path: string; reason?: string } {
  if (process.platform !== 'linux') return { path: LAUNCHER_PATH, reason: `the launcher exists on Linux only (this is ${process.platform})` };
  try {
    accessSync(LAUNCHER_PATH, constants.X_OK);
    return { path: LAUNCHER_PATH };
  } catch {
    return { path: LAUNCHER_PATH, reason: `the sandbox launcher is not built (${LAUNCHER_PATH} is missing); ${BUILD_HINT}` };
  }
}
