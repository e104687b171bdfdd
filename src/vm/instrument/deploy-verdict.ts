/**
 * The verdict of the deploy-time checks on a module, shared by the host's deploy (src/host/module-check-worker.ts)
 * and `hostlink check`/`build` (src/contract/check.ts). Hostlink's own reader runs even when the engine refuses
 * the bytes: a module using a feature outside the whitelist (memory64, multi-memory, ...) is invalid to V8 too,
 * and the rule it breaks says far more than "not WebAssembly". A module that could never run (no memory exported
 * as "memory", which every execution needs) is refused here rather than failing every call.
 */
import { ModuleRejected } from './rejected.js';
import { exportsMemory, prepareModule } from './index.js';
import type { ModulePolicy } from './policy.js';

/** Undefined when the module passes; 'not_wasm' when it is not WebAssembly at all. */
export function deployVerdict(bytes: Uint8Array, policy: ModulePolicy, instrument = true): ModuleRejected | 'not_wasm' | undefined {
  const valid = WebAssembly.validate(bytes);
  if (!valid || instrument) {
    try {
      // As the VM prepares it (the memory imported), so that both reach the same verdict.
      const prepared = prepareModule(bytes, policy, { importMemory: true });
      if (!exportsMemory(prepared)) {
        return new ModuleRejected('no_memory_export', 'the module must export its memory as "memory"');
      }
    } catch (e) {
      if (!(e instanceof ModuleRejected)) throw e;
      // The engine's verdict on bytes our reader also finds malformed: not WebAssembly.
      if (valid || (e.rule !== 'malformed' && e.rule !== 'invalid_module')) return e;
    }
  }
  return valid ? undefined : 'not_wasm';
}
