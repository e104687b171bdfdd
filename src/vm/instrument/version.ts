/**
 * Bump whenever the output for some input changes: the VM caches prepared modules by (code hash, version), and
 * messages carry it (src/protocol/vm-semantics.ts) so that a VM of another release refuses them.
 */
export const INSTRUMENTATION_VERSION = 10; // 2: gas schedule and nesting depth; 3: type and function-size budgets, memory bounds above 65536 pages invalid; 4: engine-runtime instructions priced by their measured cost; 5: the same against the plain WebAssembly median; 6: VMs import the memory (hostlink.memory) instead of the module defining it; 7: max_exports and max_instrumented_growth refuse modules 6 accepted, and a sandbox continues its caller's random_bytes stream; 8: a refusal quotes at most 64 characters of a name and 256 of its detail; 9: too_complex_to_compile (max_compile_state_slots); 10: memory.grow pays for the pages of the memory it leaves
