/**
 * Where the sandbox's native parts live and how to load them: the addon that installs no_new_privs, the
 * lifeline thread and the seccomp filter inside the VM (native/hostlink_sandbox.c), and the launcher that
 * prepares the process before Node starts (native/hostlink_launch.c). Both are optional builds; callers decide
 * what a missing part means (sandbox 'required' refuses, 'best-effort' warns).
 */
import { accessSync, constants } from 'node:fs';
import { NATIVE_BUILD_HINT, addonStatus, nativeArtifact, type AddonStatus } from '../native-addon.js';

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

export const SANDBOX_ADDON_PATH = nativeArtifact('hostlink_sandbox.node');
export const LAUNCHER_PATH = nativeArtifact('hostlink-launch');

export function sandboxAddon(): AddonStatus<SandboxAddon> {
  if (process.platform !== 'linux') return { reason: `seccomp exists on Linux only (this is ${process.platform})` };
  return addonStatus<SandboxAddon>(SANDBOX_ADDON_PATH, 'sandbox');
}

/** The launcher's path, or why it cannot be used. */
export function launcherStatus(): { path: string; reason?: string } {
  if (process.platform !== 'linux') return { path: LAUNCHER_PATH, reason: `the launcher exists on Linux only (this is ${process.platform})` };
  try {
    accessSync(LAUNCHER_PATH, constants.X_OK);
    return { path: LAUNCHER_PATH };
  } catch {
    return { path: LAUNCHER_PATH, reason: `the sandbox launcher is not built (${LAUNCHER_PATH} is missing); ${NATIVE_BUILD_HINT}` };
  }
}
